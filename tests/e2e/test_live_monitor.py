"""``aws-masker monitor --once`` against a live local stack: gateway, plugin server, stub, a private
redis-server and the subscriber. Known requests go through the gateway; the snapshot must show
non-zero event rates, the right counts per category, Redis and the processes. Counts only: the
snapshot never carries an identifier or a token."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from redis_server import RedisServer

from aws_masker.tokens import TOKEN_RE
from aws_masker_stack.ports import free_port

from .stack import CLI, Stack, http
from .test_monitoring import ORIGINALS, request, wait_for

pytestmark = pytest.mark.e2e

REQUESTS = 3  # each PROMPT holds one ec2, s3, rds and private_ip identifier


def send_known_requests(stack: Stack, url: str) -> None:
    for _ in range(REQUESTS):
        assert stack.post("/claude-proxy/v1/messages", request())[0] == 200
    assert stack.post("/claude-proxy/v1/messages", request("nothing to mask here"))[0] == 200

    def arrived() -> bool:
        stats = json.loads(http("GET", url + "/stats")[2])
        return stats["events"]["by_type"]["data_unmasked"] == REQUESTS + 1 and bool(stats["publishers"])

    wait_for(arrived, what="the subscriber's totals and a publisher_stats")


def section(text: str, title: str) -> dict[str, str]:
    """The indented ``name value`` lines under ``title:`` in a ``--once`` snapshot."""
    lines = text.splitlines()
    start = lines.index(title + ":") + 1
    out = {}
    for line in lines[start:]:
        if not line.startswith("  "):
            break
        name, _, value = line.strip().rpartition(" ")
        out[name] = value
    return out


def monitor_once(url: str, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "monitor", "--once", "--subscriber", url, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in env.items() if k != "REDIS_URL"},
    )


def test_monitor_once_shows_rates_categories_redis_and_processes(
    live: tuple[Stack, str, RedisServer],
) -> None:
    stack, url, server = live
    send_known_requests(stack, url)
    result = monitor_once(url, env=stack.env)
    out = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    rates = {kind: float(v) for kind, v in section(out, "events/s (last 10 s)").items()}
    assert rates["data_masked"] > 0 and rates["data_unmasked"] > 0, rates
    assert section(out, "events total") == {"data_masked": "4", "data_unmasked": "4"}
    masked = {cat: int(n) for cat, n in section(out, "identifiers masked by category").items()}
    assert {cat: n for cat, n in masked.items() if n} == {
        cat: REQUESTS for cat in ("ec2", "s3", "rds", "private_ip")
    }
    # published vs dropped, from the plugin server's latest publisher_stats
    assert re.search(r"^publishers: 1, enqueued [1-8], published [1-8], dropped 0, errors 0$", out, re.M)
    # Redis INFO from the subscriber's (password-less) Redis
    assert re.search(rf"^redis: redis://127\.0\.0\.1:{server.port}: \d+ ops/s, [1-9]\d* clients", out, re.M)
    # every process of this stack, by exact pid
    roles = {line.split(" pid ")[0].strip() for line in out.splitlines() if " pid " in line}
    assert {"gateway", "plugin server", "subscriber", "redis"} <= roles
    assert f"gateway pid {stack.gateway.proc.pid} " in out
    assert f"plugin server pid {stack.plugin_server_pid()} " in out
    assert "subscriber: " + url + " ok" in out
    assert re.search(r"^errors: none$", out, re.M)
    assert not TOKEN_RE.search(out) and not any(o in out for o in ORIGINALS)


def test_monitor_once_fails_when_the_subscriber_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [*CLI, "monitor", "--once", "--subscriber", url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f"subscriber: {url} unreachable" in result.stdout
    assert "does not answer" in result.stdout


def _run_in_pty(argv: list[str], send: bytes, until: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """Run ``argv`` on a 120x60 pseudo-terminal; once ``until`` was drawn, type ``send``.
    Returns the exit code and the raw output."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    main, child_tty = pty.openpty()
    fcntl.ioctl(child_tty, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 120, 0, 0))

    def controlling_tty() -> None:  # so that Ctrl-C on it is SIGINT, as in a real terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # pytest sets them
    proc = subprocess.Popen(
        argv,
        stdin=child_tty,
        stdout=child_tty,
        stderr=child_tty,
        close_fds=True,
        env={**env, "TERM": "xterm-256color"},
        start_new_session=True,
        preexec_fn=controlling_tty,
    )
    os.close(child_tty)
    output, sent = b"", False
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.1)
            if ready:
                try:
                    output += os.read(main, 65536)
                except OSError:
                    break
            if not sent and until in output:
                os.write(main, send)
                sent = True
        return proc.wait(timeout=max(1.0, deadline - time.monotonic())), output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


def test_the_full_screen_view_draws_the_stack_and_q_leaves(live: tuple[Stack, str, RedisServer]) -> None:
    stack, url, _server = live
    send_known_requests(stack, url)
    code, output = _run_in_pty(
        [*CLI, "monitor", "--subscriber", url, "--interval", "0.5"], b"q", b"last errors"
    )
    assert code == 0
    raw = output.decode("utf-8", "replace")
    assert "\x1b[?1049h" in raw and "\x1b[?1049l" in raw  # entered and left the alternate screen
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert re.search(r"ec2 █+ +3 ", text) and re.search(r"private_ip █+ +3 ", text)
    assert "plugin server" in text and "published 8 · dropped 0" in text
    assert not TOKEN_RE.search(text) and not any(o in text for o in ORIGINALS)


def test_ctrl_c_leaves_the_full_screen_view_cleanly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, output = _run_in_pty(
        [*CLI, "monitor", "--subscriber", url, "--interval", "0.5"], b"\x03", b"last errors"
    )
    assert code == 0 and b"Traceback" not in output
    assert b"\x1b[?1049l" in output
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode("utf-8", "replace"))
    assert f"{url} unreachable" in text and "subscriber at" in text
