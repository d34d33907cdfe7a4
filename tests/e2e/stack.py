"""Real processes for end-to-end tests: the Claude stub, the local gateway and, started by the
gateway, the aws-masker plugin server. Loopback only, free ports, everything stopped at teardown."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_masker_stack.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "aws_masker.cli"]
SECRET = "e2e-token-secret-0123456789"
LOG_LINE = re.compile(
    r"route=(?P<route>\S+) status=(?P<status>\d+).* pdk_calls=(?P<pdk>\d+) pdk_phases=(?P<phases>\S+) "
    r"request_id=(?P<id>\w+)"
)


class Proc:
    def __init__(
        self, argv: list[str], env: dict[str, str], marker: str, timeout: float = 60, cwd: Path = ROOT
    ) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=cwd
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._marker = marker
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("process did not start:\n" + "\n".join(self.lines[-30:]))

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self._marker in line:
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def plugin_config(text: str, **fields: Any) -> str:
    """``text`` (a kong.yml) with these aws-masker config fields set (each must be in it once)."""
    for name, value in fields.items():
        line = f"      {name}: {json.dumps(value)}"
        text, n = re.subn(rf"(?m)^      {name}: .*$", lambda _m, line=line: line, text, count=1)
        assert n == 1, f"{name} is not in kong.yml"
    return text


def stub_config(stub_url: str, extra: str = "", **fields: Any) -> str:
    """The shipped kong.yml pointed at the stub, plus a route to the stub's test endpoints; monitoring
    off unless ``fields`` turn it on."""
    text = (ROOT / "kong.yml").read_text().replace("https://api.anthropic.com", stub_url)
    text = plugin_config(text, **{"enable_event_monitoring": False, **fields})
    routes = (
        "\n  - name: stub-test\n"
        f"    url: {stub_url}\n"
        "    routes:\n"
        "      - name: stub-test\n"
        '        paths: ["/test/"]\n'
        "        strip_path: false\n"
    )
    return text.replace("\nplugins:\n", routes + extra + "\nplugins:\n", 1)


class Stack:
    def __init__(
        self,
        tmp: Path,
        *,
        start_cmd: str | None = None,
        config_text: str | None = None,
        config_factory: Callable[[str], str] | None = None,
        log_level: str = "notice",
    ) -> None:
        self.tmp = tmp
        self.stub_port, self.port = free_ports(2)
        self.stub_url = f"http://127.0.0.1:{self.stub_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "AWS_MASKER_TOKEN_SECRET": SECRET,
            "PYTHONUNBUFFERED": "1",
            "KONG_LUA_PACKAGE_PATH": f"{ROOT}/?.lua;;",
        }
        prefix = tmp / "prefix"
        prefix.mkdir(exist_ok=True)
        if start_cmd:
            server = str(Path(sys.executable).with_name("aws-masker-server"))
            env["KONG_PLUGINSERVER_NAMES"] = "aws-masker"
            env["KONG_PLUGINSERVER_AWS_MASKER_SOCKET"] = str(prefix / "aws-masker.sock")
            env["KONG_PLUGINSERVER_AWS_MASKER_START_CMD"] = start_cmd.format(prefix=prefix)
            env["KONG_PLUGINSERVER_AWS_MASKER_QUERY_CMD"] = f"{server} --dump"
        self.env = env
        self.stub = Proc([*CLI, "stub", "--listen", f"127.0.0.1:{self.stub_port}"], env, "listening on")
        config = tmp / "kong.yml"
        if config_factory is not None:
            config_text = config_factory(self.stub_url)
        self.config_text = config_text or stub_config(self.stub_url)
        config.write_text(self.config_text)
        try:
            self.gateway = Proc(
                [
                    *CLI,
                    "gateway",
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--prefix",
                    str(prefix),
                    "--log-level",
                    log_level,
                ],
                env,
                "ready on",
            )
        except Exception:
            self.stub.stop()
            raise

    def stop(self) -> None:
        self.gateway.stop()
        self.stub.stop()

    # -- helpers -----------------------------------------------------------------------------------
    def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        h = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "test-key"}
        return http("POST", self.url + path, body, {**h, **(headers or {})})

    def stub_stats(self) -> dict[str, Any]:
        return json.loads(http("GET", self.stub_url + "/stats")[2])

    def stub_last_text(self) -> str:
        return json.loads(http("GET", self.stub_url + "/last-request")[2])["user_text"]

    def log_record(self, request_id: str, timeout: float = 5.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.gateway.lines):
                m = LOG_LINE.search(line)
                if m and m["id"] == request_id:
                    return m.groupdict()
            time.sleep(0.05)
        raise AssertionError(f"no log line for request {request_id}")

    def plugin_server_pid(self) -> int:
        """The gateway's child process: the plugin server (Kong keeps it as a direct child)."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.gateway.proc.pid:
                    return int(stat.parent.name)
        raise AssertionError("plugin server is not running")


@contextlib.contextmanager
def running(tmp: Path, **kwargs: Any):
    stack = Stack(tmp, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()
