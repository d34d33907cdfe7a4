"""A real nginx (lua-nginx-module) running the aws-masker-restore Lua plugin, and an upstream whose
every write the test controls.

``Nginx`` renders ``nginx.conf.in`` into a temporary prefix and runs ``nginx -p PREFIX -c nginx.conf``
(no daemon, no master process, error log in the prefix) on a free port; ``kong_pdk_shim.lua``
stands in for the parts of Kong's PDK the handler calls. ``Upstream`` is an aiohttp server in a
thread: a ``Reply`` lists the writes (chunks) it makes, with a delay before each, optionally a gate
(an event the test sets) before a write, and the framing (chunked or Content-Length).

``Nginx.request`` sends one request with this request's aws-masker state (the token map), reads the
whole response and the record the log phase left: the serialized ``aws_masker`` values and every
``body_filter`` call as ``(bytes in, eof, bytes out)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from aws_masker.restore import token_kind
from aws_masker.tokens import KIND_CATEGORIES
from aws_masker_stack.ports import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REQUIRE_ENV = "AWS_MASKER_REQUIRE_NGINX"
STATE_VERSION = 2


# -- what this machine has -----------------------------------------------------------------------------


@dataclass
class NginxInstall:
    binary: str
    modules: list[str]  # load_module paths, in order
    cpath: list[str]  # lua_package_cpath entries (for cjson)


def find_nginx() -> tuple[NginxInstall | None, str]:
    """nginx and its Lua module, or None and why not."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    binary = shutil.which("nginx", path=path)
    if binary is None:
        return None, "no nginx binary (Debian: apt-get install nginx-light libnginx-mod-http-lua lua-cjson)"
    version = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stderr
    m = re.search(r"--modules-path=(\S+)", version)
    module_dirs = [m.group(1)] if m else []
    module_dirs += ["/usr/lib/nginx/modules", "/usr/lib64/nginx/modules", "/usr/share/nginx/modules"]
    for directory in module_dirs:
        lua = Path(directory, "ngx_http_lua_module.so")
        if lua.is_file():
            break
    else:
        return None, f"nginx at {binary} has no ngx_http_lua_module.so (Debian: libnginx-mod-http-lua)"
    ndk = lua.with_name("ndk_http_module.so")  # Debian builds the Lua module against NDK
    modules = [str(ndk)] if ndk.is_file() else []
    lua_dirs = glob.glob("/usr/lib/*/lua/5.1") + glob.glob("/usr/lib*/lua/5.1") + ["/usr/local/lib/lua/5.1"]
    cpath = [f"{d}/?.so" for d in sorted(lua_dirs) if Path(d, "cjson.so").is_file()]
    return NginxInstall(binary, [*modules, str(lua)], list(dict.fromkeys(cpath))), ""


# -- the upstream -----------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One upstream response: ``chunks`` are written one by one, ``delays[i]`` seconds before
    chunk i; when ``gates`` has an event for i, chunk i waits for it. ``truncate`` closes the
    connection after the last chunk, before the body is complete. ``started`` counts the writes
    begun, ``sent_at`` holds the ``time.monotonic()`` at which each write returned."""

    chunks: list[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    gates: dict[int, threading.Event] = field(default_factory=dict)
    content_length: bool = False
    truncate: bool = False
    status: int = 200
    started: int = 0
    sent_at: list[float] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Upstream:
    """An aiohttp server on its own event loop in a thread; it answers ``X-Test-Id: id`` with the
    ``Reply`` registered under that id."""

    GATE_TIMEOUT = 10.0

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-upstream", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        test_id = request.headers.get("X-Test-Id", "")
        reply = self.replies.pop(test_id, None)
        if reply is None:
            return web.Response(status=404, text="no reply registered")
        await request.read()
        response = web.StreamResponse(
            status=reply.status, headers={"Content-Type": reply.content_type, **reply.headers}
        )
        if reply.content_length:
            response.content_length = len(reply.body) + (100 if reply.truncate else 0)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        for i, chunk in enumerate(reply.chunks):
            gate = reply.gates.get(i)
            if gate is not None and not await loop.run_in_executor(None, gate.wait, self.GATE_TIMEOUT):
                raise RuntimeError(f"the test never opened the gate before write {i}")
            delay = reply.delays[i] if i < len(reply.delays) else 0.0
            if delay:
                await asyncio.sleep(delay)
            reply.started = i + 1
            if chunk:
                await response.write(chunk)
            reply.sent_at.append(time.monotonic())
        if reply.truncate and request.transport is not None:
            request.transport.close()
            return response
        await response.write_eof()
        return response


# -- nginx ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    record: dict[str, Any]  # what the log phase left: serialized, calls, source
    truncated: bool = False  # the response ended before its end (http.client.IncompleteRead)

    @property
    def aws_masker(self) -> dict[str, Any]:
        return self.record["serialized"]["aws_masker"]

    @property
    def calls(self) -> list[tuple[int, bool, int]]:
        calls = self.record["calls"]
        return [tuple(c) for c in calls] if isinstance(calls, list) else []  # cjson: {} when empty


def state_json(
    tokens: Mapping[str, str], masked: Mapping[str, Any] | None = None, events: bool = False
) -> str:
    """aws-masker's ``kong.ctx.shared.aws_masker``, built as ``aws_masker.phases.access`` builds it."""
    state = {
        "v": STATE_VERSION,
        "events": events,
        "tokens": dict(tokens),
        "cat": {kind: KIND_CATEGORIES[kind] for kind in {token_kind(t) for t in tokens}},
        "masked": dict(masked) if masked is not None else {"count": len(tokens), "categories": {}},
    }
    return json.dumps(state, separators=(",", ":"))


class Nginx:
    START_TIMEOUT = 10.0

    def __init__(self, install: NginxInstall, prefix: Path, upstream: Upstream) -> None:
        self.install = install
        self.prefix = prefix
        self.upstream = upstream
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def _render(self) -> Path:
        (self.prefix / "temp").mkdir(parents=True, exist_ok=True)
        values = {
            "LOAD_MODULES": "\n".join(f"load_module {m};" for m in self.install.modules),
            "PREFIX": str(self.prefix),
            "REPO": str(REPO),
            "HERE": str(HERE),
            "CPATH": ";".join(self.install.cpath),
            "PORT": str(self.port),
            "UPSTREAM_PORT": str(self.upstream.port),
        }
        text = (HERE / "nginx.conf.in").read_text()
        text = re.sub(r"@([A-Z_]+)@", lambda m: values[m.group(1)], text)
        conf = self.prefix / "nginx.conf"
        conf.write_text(text)
        return conf

    def start(self) -> None:
        for _ in range(3):  # a free port can be taken between the probe and nginx's bind
            self.port = free_port()
            conf = self._render()
            with open(self.prefix / "stderr.log", "ab") as stderr:
                self.process = subprocess.Popen(
                    [
                        self.install.binary,
                        "-p",
                        f"{self.prefix}/",
                        "-c",
                        str(conf),
                        "-e",
                        str(self.error_log),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                )
            if self._wait_listening():
                return
            self.stop()
            if "Address already in use" not in self.log_text():
                break
        raise RuntimeError(f"nginx did not start; its error log ends with:\n{self.log_text()[-3000:]}")

    def _wait_listening(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """QUIT (graceful), then KILL; nothing is left running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_text(self) -> str:
        logs = (self.error_log, self.prefix / "stderr.log")
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())

    # -- requests ---------------------------------------------------------------------------------------

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def send(
        self,
        reply: Reply | None,
        state: str | None,
        *,
        max_held: int | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> tuple[str, http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request (the upstream answers with ``reply``); returns its id, the connection and
        the response, whose body the caller reads."""
        test_id = f"t{next(self._ids)}"
        if reply is not None:
            self.upstream.replies[test_id] = reply
        sent = {"X-Test-Id": test_id, "Content-Type": "application/json", **(headers or {})}
        if state is not None:
            sent["X-Aws-Masker-State"] = base64.b64encode(state.encode()).decode()
        if max_held is not None:
            sent["X-Test-Max-Held-Bytes"] = str(max_held)
        conn = self.connection()
        body = b'{"model":"m"}' if method == "POST" else None
        conn.request(method, "/v1/messages", body=body, headers=sent)
        return test_id, conn, conn.getresponse()

    def record(self, test_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """What the log phase recorded for ``test_id`` (it runs just after the response is sent)."""
        deadline = time.monotonic() + timeout
        while True:
            conn = self.connection()
            try:
                conn.request("GET", f"/__results?id={test_id}")
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status == 200:
                return json.loads(body)
            if time.monotonic() > deadline:
                raise AssertionError(f"no log-phase record for {test_id}")
            time.sleep(0.005)

    def request(
        self,
        reply: Reply | None,
        tokens: Mapping[str, str] | None,
        *,
        state: str | None = None,
        max_held: int | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> Result:
        """One whole request: ``tokens`` become this request's aws-masker state (or pass ``state``
        as is); returns the response and the log phase's record."""
        if state is None and tokens is not None:
            state = state_json(tokens)
        test_id, conn, response = self.send(reply, state, max_held=max_held, headers=headers, method=method)
        truncated = False
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            body, truncated = exc.partial, True
        finally:
            conn.close()
        return Result(response.status, response.headers, body, self.record(test_id), truncated)
