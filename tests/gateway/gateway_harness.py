"""Test harness for the local gateway: a loopback upstream, the fixture plugin server and the gateway.

The gateway and the upstream run on an asyncio loop in a background thread; tests talk to them with
a blocking ``http.client`` helper (:meth:`GatewayHarness.request`). The fixture plugin server
(``fixtures/echo_plugin.py``) is started by the gateway itself, as Kong would, from
``KONG_PLUGINSERVER_ECHO_*`` settings, so it is a direct child of the test process.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from aws_masker_gateway.app import Gateway, create_gateway, run_site, shutdown_site
from aws_masker_gateway.context import RequestRecord
from aws_masker_gateway.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures"
_ROOT = Path(__file__).resolve().parents[2]
_SERVER = Path(sys.executable).with_name("aws-masker-server")
AWS_MASKER_ENV = {
    "KONG_PLUGINS": "bundled,aws-masker,aws-masker-restore,aws-masker-collect",
    "KONG_PLUGINSERVER_NAMES": "aws-masker",
    "KONG_PLUGINSERVER_AWS_MASKER_SOCKET": "{prefix}/aws-masker.sock",
    "KONG_PLUGINSERVER_AWS_MASKER_START_CMD": f"{_SERVER} --kong-prefix {{prefix}}",
    "KONG_PLUGINSERVER_AWS_MASKER_QUERY_CMD": f"{_SERVER} --dump",
    "KONG_LUA_PACKAGE_PATH": f"{_ROOT}/?.lua;;",
}
"""The gateway's settings for the real aws-masker plugin server and this repository's Lua plugins."""
ECHO_PLUGIN = FIXTURES / "echo_plugin.py"
T = TypeVar("T")

GUARD_LUA = """
if kong.ctx.shared.echo_ok ~= "1" then
  kong.log.err("guard: echo did not mark the request; refusing it")
  return kong.response.exit(503, { message = "masking unavailable" })
end
"""


@dataclass
class HttpResult:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        return self.headers["X-Kong-Request-Id"]


@dataclass
class SeenRequest:
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Upstream:
    """A loopback HTTP service that records requests and echoes the body back.

    Request headers steer it: ``X-Test-Status`` (status), ``X-Test-Sleep`` (seconds before
    answering), ``X-Test-Gzip`` (gzip the echoed body), ``X-Test-Content-Type``.
    """

    requests: list[SeenRequest] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path, _, query = request.raw_path.partition("?")
        self.requests.append(SeenRequest(request.method, path, query, CIMultiDict(request.headers), body))
        sleep = float(request.headers.get("X-Test-Sleep", "0"))
        if sleep:
            await asyncio.sleep(sleep)
        content_type = request.headers.get("X-Test-Content-Type", "text/plain")
        headers = {"Content-Type": content_type, "X-Upstream-Path": path, "Server": "test-upstream"}
        if request.headers.get("X-Test-Gzip"):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(
            status=int(request.headers.get("X-Test-Status", "200")), body=body, headers=headers
        )


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gateway-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class GatewayHarness:
    """A running gateway + upstream + fixture plugin server, driven from synchronous test code."""

    def __init__(
        self,
        kong_yml: str,
        *,
        rpc_timeout: float = 10.0,
        respawn: bool = True,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
    ) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="kgw-", dir="/tmp"))
        self.loop = LoopThread()
        self.upstream = Upstream()
        self._gateway: Gateway | None = None
        self._runner: web.AppRunner | None = None
        try:
            self._create(kong_yml, rpc_timeout, respawn, env or {}, wait_ready)
        except BaseException:
            self.stop()  # never leave a plugin server or the loop thread behind
            raise

    def _create(
        self, kong_yml: str, rpc_timeout: float, respawn: bool, env: dict[str, str], wait_ready: bool
    ) -> None:
        self.loop.run(self.upstream.start())
        base_env = {
            "KONG_PLUGINS": "bundled,echo",
            "KONG_PLUGINSERVER_NAMES": "echo",
            "KONG_PLUGINSERVER_ECHO_SOCKET": f"{self.prefix}/echo.sock",
            "KONG_PLUGINSERVER_ECHO_START_CMD": f"{sys.executable} {ECHO_PLUGIN} --no-lua-style "
            f"--kong-prefix {self.prefix}",
            "KONG_PLUGINSERVER_ECHO_QUERY_CMD": f"{sys.executable} {ECHO_PLUGIN} --dump",
        }
        base_env.update({k: v.replace("{prefix}", str(self.prefix)) for k, v in env.items()})
        self.settings = load_settings(env=base_env, prefix=str(self.prefix))
        text = kong_yml.replace("{upstream}", self.upstream.url)
        self._gateway = create_gateway(self.settings, text, rpc_timeout=rpc_timeout, respawn=respawn)
        self.port = self.loop.run(self._start(wait_ready))

    @property
    def gateway(self) -> Gateway:
        assert self._gateway is not None
        return self._gateway

    async def _start(self, wait_ready: bool) -> int:
        await self.gateway.start()
        if wait_ready:
            await self.gateway.wait_ready(30)
        self._runner, port = await run_site(self.gateway.make_app(), "127.0.0.1", 0)
        return port

    # -- client ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: bytes | str = b"",
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        timeout: float = 30.0,
    ) -> HttpResult:
        """One HTTP/1.1 request to the gateway (``headers`` may repeat names when given as pairs)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body.encode() if isinstance(body, str) else body
            pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            has_host = any(name.lower() == "host" for name, _ in pairs)
            conn.putrequest(method, path, skip_host=has_host, skip_accept_encoding=True)
            for name, value in pairs:
                conn.putheader(name, value)
            if data or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data or None)
            response = conn.getresponse()
            return HttpResult(response.status, response.headers, response.read())
        finally:
            conn.close()

    def record(self, request_id: str, timeout: float = 15.0) -> RequestRecord:
        return self.loop.run(self.gateway.wait_record(request_id, timeout), timeout + 1)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.loop.run(coro, timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.loop.run(wrapper())

    @property
    def process(self) -> Any:
        return self.gateway.processes["echo"]

    @property
    def echo(self) -> Any:
        return self.gateway.externals["echo"]

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.loop.run(self.process.wait_ready(timeout), timeout + 1)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._runner is not None:
                await shutdown_site(self._runner)
            if self._gateway is not None:
                await self._gateway.stop()
            await self.upstream.stop()

        try:
            self.loop.run(shutdown(), 20)
        finally:
            self.loop.close()
            shutil.rmtree(self.prefix, ignore_errors=True)


def route(name: str, path: str, *plugins: str, extra: str = "") -> str:
    """A YAML route with nested plugins (each plugin given as a YAML flow mapping)."""
    lines = [f"      - name: {name}", f'        paths: ["{path}"]']
    if extra:
        lines.append(f"        {extra}")
    if plugins:
        lines.append("        plugins:")
        lines.extend(f"          - {p}" for p in plugins)
    return "\n".join(lines)


def guard_plugin() -> str:
    return json.dumps({"name": "post-function", "config": {"access": [GUARD_LUA]}})


def kong_yml(*routes: str, service_url: str = "{upstream}/svc") -> str:
    header = [
        '_format_version: "3.0"',
        "services:",
        "  - name: echo-service",
        f"    url: {service_url}",
        "    routes:",
    ]
    return "\n".join([*header, *routes])


SHARED_YML = kong_yml(
    route("upper", "/upper", '{name: echo, config: {tag: "t1"}}'),
    route("restore", "/restore", "{name: echo, config: {restore: true}}"),
    route("exit-access", "/exit-access", "{name: echo, config: {action: exit_access}}"),
    route("none-hole", "/none-hole", "{name: echo, config: {action: none_hole}}"),
    route("wrong-phase", "/wrong-phase", "{name: echo, config: {action: wrong_phase}}"),
    route(
        "set-body-in-response",
        "/set-body-in-response",
        "{name: echo, config: {action: set_body_in_response}}",
    ),
    route("resp-raw-body", "/resp-raw-body", "{name: echo, config: {action: response_get_raw_body}}"),
    route("inspect", "/inspect", "{name: echo, config: {action: inspect}}"),
    route("ctx-types", "/ctx-types", "{name: echo, config: {action: ctx_types}}"),
    route("unknown-method", "/unknown-method", "{name: echo, config: {action: unknown_method}}"),
    route("large-zero", "/large-zero", "{name: echo, config: {max_body: 0}}"),
    route("large-limited", "/large-limited", "{name: echo, config: {max_body: 100}}"),
    route("guarded", "/guarded", "{name: echo}", guard_plugin()),
    route("guard-only", "/guard-only", guard_plugin()),
    route("plain", "/plain"),
    route(
        "lua-filters",
        "/lua-filters",
        json.dumps(
            {
                "name": "post-function",
                "config": {
                    # a filter that changes the body's length must clear Content-Length (Kong's rule)
                    "header_filter": [
                        "kong.response.set_header('X-Lua-Status', kong.response.get_status()) "
                        "kong.response.clear_header('Content-Length')"
                    ],
                    # nginx hands the body over in chunks and ends with an empty call (ngx.arg[2])
                    "body_filter": [
                        "local c = kong.ctx.plugin "
                        "if not c.open then c.open = true ngx.arg[1] = '[' .. ngx.arg[1] end "
                        "if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. ']' end"
                    ],
                },
            }
        ),
    ),
)
SHARED_YML += """
  - name: anthropic-like
    url: {upstream}/v1/messages
    routes:
      - {name: claude-proxy, paths: ["/claude-proxy/v1/messages"], methods: [POST]}
      - {name: transparent, paths: ["/v1/messages"], strip_path: false, methods: [POST]}
  - name: dead-upstream
    url: http://127.0.0.1:1/
    retries: 0
    routes: [{name: dead, paths: ["/dead"]}]
  - name: slow-upstream
    url: {upstream}/slow
    read_timeout: 300
    routes: [{name: slow, paths: ["/slow"]}]
"""
