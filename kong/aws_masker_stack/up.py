"""``aws-masker up`` (``make run``): the whole local stack in one command, without Docker or Kong.

    aws-masker up [--config kong.yml] [--listen 127.0.0.1:8000]

Starts, as child processes:
- the Claude stub (``aws-masker stub``) when ``ANTHROPIC_API_KEY`` is unset; kong.yml's
  ``https://api.anthropic.com`` services are then pointed at it (in a copy under ``.run/``);
- a private ``redis-server`` for the monitoring events, unless ``REDIS_URL`` names a Redis or one
  answers on 127.0.0.1:6379 (localredis.py); without any, the stack runs without events;
- the subscriber (``aws-masker subscriber``) on that Redis: the live page and ``/stats`` on
  127.0.0.1:8090 (the URL is printed);
- the local gateway (``aws-masker gateway``), which starts the aws-masker plugin server itself.

Then it sends the original test plan's complex request through the gateway and shows what the
client sent, what the upstream saw, what the client got back and the subscriber's lines for that
request, prints a curl command to try, and keeps running (forwarding the children's log lines)
until Ctrl-C.

The token secret comes from ``AWS_MASKER_TOKEN_SECRET``; if unset, one is generated once and kept in
``.run/token_secret`` so tokens stay the same across restarts of the local stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker_gateway.address import listen_address, parse_listen
from aws_masker_gateway.orphans import die_with_parent
from aws_masker_stack.localredis import (
    DEFAULT,
    RedisTarget,
    answers,
    parse_url,
    private_server_argv,
)
from aws_masker_stack.ports import free_port

ANTHROPIC_URL = "https://api.anthropic.com"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TEXT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
DEMO_MODEL = "claude-sonnet-5"
READY_TIMEOUT = 60.0
SUBSCRIBER_WAIT = 5.0  # kong.yml flushes a partial batch of events after 1 s


class Child:
    """A child process whose output is forwarded line by line, after its ready line was seen."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], ready_marker: str, quiet: bool = False
    ) -> None:
        self.name = name
        self.quiet = quiet  # collect the lines without printing them
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
            preexec_fn=die_with_parent,  # and they stop if we are killed
        )
        self.ready_line: str | None = None
        self.recent: deque[str] = deque(maxlen=200)  # the lines forwarded so far (the last 200)
        self._ready = threading.Event()
        self._marker = ready_marker
        self._backlog: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            line = line.rstrip("\n")
            if not self._ready.is_set():
                if self._marker in line:
                    self.ready_line = line
                    self._ready.set()
                else:
                    self._backlog.append(line)
                continue
            self.recent.append(line)
            if not self.quiet:
                print(f"[{self.name}] {line}", flush=True)
        self._ready.set()  # EOF: unblock a waiter

    def wait_ready(self, timeout: float) -> str:
        if not self._ready.wait(timeout) or self.ready_line is None:
            self.stop()
            output = "\n".join(self._backlog[-20:])
            raise RuntimeError(f"{self.name} did not start:\n{output}")
        return self.ready_line

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def token_secret(run_dir: Path) -> str:
    from_env = os.environ.get("AWS_MASKER_TOKEN_SECRET")
    if from_env:
        return from_env
    path = run_dir / "token_secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aws-masker up", description="Start the local stack (gateway + stub).")
    p.add_argument(
        "--config", type=Path, default=Path("kong.yml"), help="declarative config (default kong.yml)"
    )
    p.add_argument(
        "--listen",
        type=listen_address,
        default="127.0.0.1:8000",
        help="gateway address (default 127.0.0.1:8000)",
    )
    p.add_argument(
        "--stub-listen",
        type=listen_address,
        default="127.0.0.1:8081",
        help="stub address (default 127.0.0.1:8081)",
    )
    p.add_argument(
        "--subscriber-listen",
        type=listen_address,
        default="127.0.0.1:8090",
        help="the subscriber's /health, /stats and /metrics (default 127.0.0.1:8090)",
    )
    p.add_argument("--run-dir", type=Path, default=Path(".run"), help="working files (default .run)")
    p.add_argument("--no-demo", action="store_true", help="skip the demo request")
    p.add_argument("--exit-after-demo", action="store_true", help="stop after the demo (for scripts and CI)")
    return p


def listen_ports(args: argparse.Namespace) -> list[int]:
    """The ports of the stack's own servers (a private redis-server must not take one)."""
    return [parse_listen(a)[1] for a in (args.listen, args.stub_listen, args.subscriber_listen)]


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any], str | None]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), resp.headers.get("X-Kong-Request-Id")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}"), err.headers.get("X-Kong-Request-Id")


def demo(
    gateway_url: str, stub_url: str | None, api_key: str | None, secret: str, subscriber: Child | None
) -> bool:
    body = {"model": DEMO_MODEL, "max_tokens": 300, "messages": [{"role": "user", "content": DEMO_TEXT}]}
    headers = {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": api_key or "stub",
    }
    status, answer, request_id = _post(f"{gateway_url}/claude-proxy/v1/messages", body, headers)
    if stub_url:
        with urllib.request.urlopen(f"{stub_url}/last-request", timeout=10) as resp:
            seen = json.loads(resp.read())["user_text"]
        seen_label = "upstream saw (stub)"
    else:
        masked, _ = mask_request(json.dumps(body).encode(), Masker(MaskerConfig(token_secret=secret)))
        seen = json.loads(masked)["messages"][0]["content"]
        seen_label = "upstream saw (same secret, recomputed here)"
    got = " ".join(b.get("text", "") for b in answer.get("content", []) if isinstance(b, dict)) or json.dumps(
        answer
    )
    width = len(seen_label)
    print(f"\n{'client sent':<{width}} : {DEMO_TEXT}")
    print(f"{seen_label:<{width}} : {seen}")
    print(f"{'client got back':<{width}} : HTTP {status}: {got}\n", flush=True)
    if subscriber is not None and request_id:
        lines = _lines_about(subscriber, request_id, expected=2, timeout=SUBSCRIBER_WAIT)
        print(f"subscriber ({len(lines)} events for request {request_id}):")
        for line in lines:
            print(f"  {line}")
        print(flush=True)
    return status == 200


def _lines_about(child: Child, needle: str, expected: int, timeout: float) -> list[str]:
    """The child's lines that mention ``needle``, once ``expected`` of them came (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in list(child.recent) if needle in line]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def set_plugin_fields(text: str, **fields: Any) -> str:
    """``text`` (a kong.yml) with these aws-masker config fields set; each must be in it once."""
    for name, value in fields.items():
        line = f"      {name}: {json.dumps(value)}"
        text, n = re.subn(rf"(?m)^      {name}: .*$", lambda _m, line=line: line, text, count=1)
        if n != 1:
            raise RuntimeError(f"the aws-masker config in kong.yml has no {name} field")
    return text


def configures_masker(text: str) -> bool:
    """Whether ``text`` (a kong.yml) configures the aws-masker plugin. A config without it (``make
    bench``'s no-plugin baseline) runs as it is: there are no event settings to point at Redis."""
    return re.search(r"(?m)^\s*(?:-\s+)?name: aws-masker\s*$", text) is not None


def find_redis(
    run_dir: Path,
    env: dict[str, str],
    children: list[Child],
    default: tuple[str, int] = DEFAULT,
    avoid: Iterable[int] = (),
) -> RedisTarget | None:
    """REDIS_URL, else ``default`` (127.0.0.1:6379) if it answers, else a private redis-server
    on a free port not in ``avoid`` (the ports the stack's other servers are about to bind);
    says which."""
    url = os.environ.get("REDIS_URL")
    if url:
        try:
            target = parse_url(url)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problem = answers(target)
        if problem is None:
            print(f"aws-masker up: monitoring events go to {target.display} (REDIS_URL)", flush=True)
            return target
        print(
            f"aws-masker up: the Redis at REDIS_URL ({target.display}) does not answer ({problem}); "
            "running without monitoring events",
            flush=True,
        )
        return None
    target = RedisTarget(*default)
    if answers(target) is None:
        print(f"aws-masker up: monitoring events go to the Redis at {target.display}", flush=True)
        return target
    port = free_port(avoid)
    argv = private_server_argv(run_dir, port)
    if argv is None:
        print(
            "aws-masker up: no Redis (no REDIS_URL, nothing on 127.0.0.1:6379, no redis-server "
            "binary); running without monitoring events",
            flush=True,
        )
        return None
    server = Child("redis", argv, env, "Ready to accept connections", quiet=True)
    children.append(server)
    server.wait_ready(READY_TIMEOUT)
    target = RedisTarget("127.0.0.1", port, private=True)
    print(
        f"aws-masker up: started a private redis-server for monitoring events at {target.display}", flush=True
    )
    return target


class _Stop:
    """SIGTERM and SIGINT (Ctrl-C): leave, and stop the children in up_main's ``finally``, not in
    the handler (a handler that waits for a child can deadlock with the ``Popen.poll`` it
    interrupted: both take the child's wait lock).

    While the stack runs, the handler only sets a flag that the main loop waits on. Raising
    KeyboardInterrupt there could land inside ``Popen.poll`` between taking the child's wait lock and
    the ``try`` that releases it: the lock would stay taken, and stopping that child would then wait
    for it forever (seen once as a 30 s hang of ``make run`` on SIGTERM). During start-up, when no
    ``poll`` runs, the handler raises KeyboardInterrupt so a slow start is cut short; never during
    the cleanup (a second Ctrl-C must not cut it short). Later SIGTERMs are ignored: under
    ``timeout make run`` one comes from ``timeout`` and one from ``make``."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.running = False  # the main loop is waiting, or the cleanup runs: set the flag only

    def __call__(self, signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.requested.set()
        if not self.running:
            raise KeyboardInterrupt


def up_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.config.is_file():
        print(
            f"aws-masker up: {args.config} not found (run from the repository root or pass --config)",
            file=sys.stderr,
        )
        return 2
    run_dir: Path = args.run_dir
    prefix = run_dir / "kong"
    prefix.mkdir(parents=True, exist_ok=True)
    secret = token_secret(run_dir)
    api_key = os.environ.get("ANTHROPIC_API_KEY") or None
    env = {**os.environ, "AWS_MASKER_TOKEN_SECRET": secret, "PYTHONUNBUFFERED": "1"}
    # the Lua plugins (kong/plugins/aws-masker-restore and -collect) from this checkout, as Kong loads them
    env.setdefault("KONG_LUA_PACKAGE_PATH", f"{REPO_ROOT}/?.lua;;")
    cli = [sys.executable, "-m", "aws_masker.cli"]
    children: list[Child] = []

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            child.stop()

    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        config_text = args.config.read_text()
        stub_url = None
        if api_key is None:
            stub = Child("stub", [*cli, "stub", "--listen", args.stub_listen], env, "listening on")
            children.append(stub)
            stub_url = stub.wait_ready(READY_TIMEOUT).rsplit(" ", 1)[1]
            config_text = config_text.replace(ANTHROPIC_URL, stub_url)
            print(
                f"aws-masker up: ANTHROPIC_API_KEY is not set; using the Claude stub at {stub_url}",
                flush=True,
            )
        target = find_redis(run_dir, env, children, avoid=listen_ports(args))
        subscriber = None
        subscriber_url = None
        masker = configures_masker(config_text)
        if target is None:
            if masker:
                config_text = set_plugin_fields(config_text, enable_event_monitoring=False)
        else:
            if masker:
                config_text = set_plugin_fields(
                    config_text,
                    redis_host=target.host,
                    redis_port=target.port,
                    redis_db=target.db,
                    redis_ssl=target.tls,
                )
            if masker and target.username:
                config_text = set_plugin_fields(config_text, redis_username=target.username)
            # kong.yml reads the password from the environment ({vault://env/aws-masker-redis-password})
            env["AWS_MASKER_REDIS_PASSWORD"] = target.password or ""
            sub_env = {**env, "REDIS_URL": target.url, "AWS_MASKER_ENV": "development"}
            subscriber = Child(
                "subscriber",
                [*cli, "subscriber", "--listen", args.subscriber_listen],
                sub_env,
                "ready on",
                quiet=not args.no_demo,
            )
            children.append(subscriber)
            ready = subscriber.wait_ready(READY_TIMEOUT)
            match = re.search(r"ready on (http://\S+)", ready)
            subscriber_url = match.group(1) if match else f"http://{args.subscriber_listen}"
            print(
                f"aws-masker up: subscriber on {subscriber_url} (/stats, /health, /metrics), "
                f"events from {target.display}\n"
                f"aws-masker up: live page: {subscriber_url}/ (or run: aws-masker monitor)",
                flush=True,
            )
        config_path = run_dir / "kong.yml"
        config_path.write_text(config_text)
        gateway = Child(
            "gateway",
            [*cli, "gateway", "--config", str(config_path), "--listen", args.listen, "--prefix", str(prefix)],
            env,
            "ready on",
        )
        children.append(gateway)
        print(gateway.wait_ready(READY_TIMEOUT), flush=True)
        gateway_url = "http://" + args.listen
        ok = True
        if not args.no_demo:
            ok = demo(gateway_url, stub_url, api_key, secret, subscriber)
            if subscriber is not None:
                subscriber.quiet = False
        key_header = '-H "x-api-key: $ANTHROPIC_API_KEY" ' if api_key else ""
        print(
            "Try it:\n"
            f"  curl -s {gateway_url}/claude-proxy/v1/messages {key_header}\\\n"
            "    -H 'anthropic-version: 2023-06-01' \\\n"
            "    -H 'content-type: application/json' \\\n"
            f'    -d \'{{"model":"{DEMO_MODEL}","max_tokens":300,'
            f'"messages":[{{"role":"user","content":"{DEMO_TEXT}"}}]}}\'\n'
            f"  or point the Anthropic SDK at base_url={gateway_url} (routes /v1/*).\n"
            + (
                f"Watch masking live: {subscriber_url}/ in a browser, or aws-masker monitor.\n"
                if subscriber_url
                else ""
            )
            + "Ctrl-C stops everything.",
            flush=True,
        )
        if args.exit_after_demo:
            return 0 if ok else 1
        stop.running = True
        if stop.requested.is_set():  # a signal came just before: leave as it asked
            return 0
        while not stop.requested.wait(0.5):
            if any(c.proc.poll() is not None for c in children):
                break
        if stop.requested.is_set():
            return 0
        dead = next(c for c in children if c.proc.poll() is not None)
        print(f"aws-masker up: {dead.name} exited with {dead.proc.returncode}; stopping", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"aws-masker up: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.running = True
        stop_all()
