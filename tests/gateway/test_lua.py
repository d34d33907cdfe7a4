"""The in-process Lua runtime: sandbox, ctx.shared semantics, exits and serverless chunk styles."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aws_masker_gateway.declarative import Route
from aws_masker_gateway.lua import LuaEngine, LuaRequestState

ROUTE = Route(id="r-1", name="claude-proxy", service_id="s-1", paths=("/claude-proxy",))


class Host:
    def __init__(self) -> None:
        self.logs: list[tuple[str, str]] = []
        self.response_headers: dict[str, list[str]] = {}

    def lua_request_header(self, name: str) -> str | None:
        return {"x-api-key": "k"}.get(name.lower())

    def lua_request_headers(self, max_headers: int) -> dict[str, Any]:
        return dict(list({"x-api-key": "k", "x-many": ["a", "b"]}.items())[:max_headers])

    def lua_request_target(self) -> str:
        return "/claude-proxy/v1/messages?q=1"

    def lua_request_body(self, max_allowed_file_size: Any) -> bytes | None:
        return b"\x00\xffbody" if max_allowed_file_size is None else None

    def lua_request_method(self) -> str:
        return "POST"

    def lua_request_path(self) -> str:
        return "/claude-proxy/v1/messages"

    def lua_ngx_var(self, name: str) -> str | None:
        return "0123456789abcdef0123456789abcdef" if name == "request_id" else None

    def lua_response_status(self) -> int | None:
        return 200

    def lua_response_header(self, name: str) -> str | None:
        values = self.response_headers.get(name)
        return values[0] if values else None

    def lua_set_response_header(self, name: str, values: list[str] | None, add: bool) -> None:
        self.response_headers[name] = values or []

    def lua_log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def route_entity(self) -> Route:
        return ROUTE

    def service_entity(self) -> None:
        return None


@pytest.fixture(scope="module")
def engine() -> LuaEngine:
    return LuaEngine(time.time)


def run(engine: LuaEngine, source: str, phase: str = "access") -> tuple[str, str, LuaRequestState, Host]:
    host = Host()
    state = engine.new_request(host)
    outcome = engine.run(state, phase, [engine.compile(source, "test")])
    return outcome.kind, outcome.message, state, host


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("io.open('/etc/passwd')", "attempt to index global 'io'"),
        ("os.execute('id')", "attempt to call field 'execute'"),
        ("loadstring('x=1')()", "attempt to call global 'loadstring'"),
        ("local r = require('ffi')", "require 'ffi' not allowed within sandbox"),
        ("local x = python.eval('1')", "attempt to index global 'python'"),
        ("setmetatable({}, {})", "attempt to call global 'setmetatable'"),
        ("local g = debug.getinfo(1)", "attempt to index global 'debug'"),
        ("string.rep = nil", "Can not modify string.rep. Protected by the sandbox."),
        ("local f = kong.request.get_header; local x = f.__globals__", "attempt to index local 'f'"),
    ],
)
def test_sandbox_denies_unsafe_access(engine: LuaEngine, source: str, error: str) -> None:
    kind, message, _, _ = run(engine, source)
    assert kind == "error" and error in message


def test_bytecode_is_rejected(engine: LuaEngine) -> None:
    with pytest.raises(SyntaxError, match="binary chunk"):
        engine.compile("\x1bLJ", "bin")


def test_exit_with_table_body_and_headers(engine: LuaEngine) -> None:
    kind, _, state, host = run(
        engine,
        "if kong.request.get_header('X-Api-Key') == 'k' then "
        "kong.log.err('refusing ', ngx.var.request_id) "
        "return kong.response.exit(503, { message = 'no' }, { ['X-Why'] = 'guard' }) end",
    )
    assert kind == "exit"
    lua_exit = state.take_exit()
    assert lua_exit is not None
    assert (lua_exit.status, lua_exit.body, lua_exit.headers) == (
        503,
        b'{"message":"no"}',  # the table body, encoded by lua-cjson in Lua (see test_cjson.py)
        {b"X-Why": b"guard"},
    )
    assert host.logs == [("err", "refusing 0123456789abcdef0123456789abcdef")]


def test_exit_stops_following_functions(engine: LuaEngine) -> None:
    host = Host()
    state = engine.new_request(host)
    first = engine.compile("kong.response.exit(401)", "a")
    second = engine.compile("kong.ctx.shared.reached = true", "b")
    assert engine.run(state, "access", [first, second]).kind == "exit"
    assert state.shared_get(b"reached") is None


def test_phases_after_an_exit_an_error_or_a_stray_yield_run_as_before(engine: LuaEngine) -> None:
    """Each phase runs in a coroutine (kong.response.exit yields out of it); the engine reuses the
    coroutines that ran to the end, and drops the others: what follows must not notice."""
    host = Host()
    state = engine.new_request(host)
    chunks = {
        "exit": engine.compile("kong.response.exit(401)", "exit"),
        "error": engine.compile("error('boom')", "error"),
        "yield": engine.compile("coroutine.yield('stray')", "yield"),
        "count": engine.compile("kong.ctx.shared.n = (kong.ctx.shared.n or 0) + 1", "count"),
        "running": engine.compile(
            "local co, main = coroutine.running() kong.ctx.shared.in_coroutine = co ~= nil and not main",
            "running",
        ),
    }
    expected = {"exit": "exit", "error": "error", "yield": "error", "count": "ok", "running": "ok"}
    order = ["count", "exit", "count", "error", "count", "yield", "count", "running", "count"] * 3
    for name in order:
        outcome = engine.run(state, "access", [chunks[name]])
        assert outcome.kind == expected[name], (name, outcome)
        if name == "exit":
            assert state.take_exit() is not None
        if name == "yield":
            assert outcome.message == "attempt to yield from a plugin"
        if name == "error":
            assert "boom" in outcome.message
    assert state.shared_get(b"n") == order.count("count")
    assert state.shared_get(b"in_coroutine") is True


def test_exit_outside_rewrite_access_is_an_error(engine: LuaEngine) -> None:
    kind, message, _, _ = run(engine, "kong.response.exit(200)", phase="log")
    assert kind == "error" and "function cannot be called in log phase" in message


def test_ctx_shared_values_follow_lua_rules(engine: LuaEngine) -> None:
    state = engine.new_request(Host())
    state.shared_set(b"empty", {})
    state.shared_set(b"holes", [1, None, 3])
    state.shared_set(b"text", "é")
    assert state.shared_get(b"empty") == []  # an empty table is an empty array on the way back
    assert state.shared_get(b"holes") == {1: 1, 3: 3}  # not a sequence any more: packs as a map
    assert state.shared_get(b"text") == "é".encode()
    kind, _, _, _ = run(engine, "kong.ctx.shared.x = 1")
    assert kind == "ok"


def test_python_and_lua_share_the_request_table(engine: LuaEngine) -> None:
    host = Host()
    state = engine.new_request(host)
    state.shared_set(b"aws_masker_ok", b"1")
    chunk = engine.compile(
        "if kong.ctx.shared.aws_masker_ok ~= '1' then return kong.response.exit(503) end "
        "kong.ctx.shared.seen_by_lua = { n = 1 }",
        "guard",
    )
    assert engine.run(state, "access", [chunk]).kind == "ok"
    assert state.shared_get(b"seen_by_lua") == {b"n": 1}
    other = engine.new_request(host)  # a different request does not see it
    assert engine.run(other, "access", [chunk]).kind == "exit"


def test_function_returning_closure_keeps_upvalues(engine: LuaEngine) -> None:
    """The 0.2.0+ style: the chunk runs once and the returned function runs on every request."""
    chunk = engine.compile("local n = 0 return function() n = n + 1 kong.ctx.shared.n = n end", "counter")
    host = Host()
    for expected in (1, 2, 3):
        state = engine.new_request(host)
        engine.run(state, "access", [chunk])
        assert state.shared_get(b"n") == expected


def test_response_header_functions_in_header_filter(engine: LuaEngine) -> None:
    kind, message, _, host = run(
        engine,
        "kong.response.set_header('X-A', kong.response.get_status()); kong.response.clear_header('X-B')",
        phase="header_filter",
    )
    assert (kind, message) == ("ok", "")
    assert host.response_headers == {"X-A": ["200"], "X-B": []}


@pytest.mark.parametrize(
    ("value", "pattern", "found"),
    [
        ("f(a(b)c)", "^%a%b()$", True),  # %b: balanced delimiters
        ("(a)(b", "^%b()$", False),
        ("deploy prod now", "%f[%w]prod%f[%W]", True),  # %f: frontier (whole word)
        ("production", "%f[%w]prod%f[%W]", False),
        ("ab-ab", "^(%a+)-%1$", True),  # back-reference
        ("ab-ba", "^(%a+)-%1$", False),
        ("1-2", "^(%d+)-(%d+)$", True),  # '-' after a capture is a literal, not a lazy '*'
        ("é", "^.$", False),  # a pattern item matches one byte
        ("a$b", "a$b", True),  # '$' not at the end is a literal
    ],
)
def test_lua_find_is_luajit_string_match(engine: LuaEngine, value: str, pattern: str, found: bool) -> None:
    assert engine.lua_find(value, pattern) is found


@pytest.mark.parametrize(
    ("value", "pattern", "message"),
    [
        ("a", "^a%", "malformed pattern (ends with '%')"),
        ("a", "[a", "malformed pattern (missing ']')"),
        ("a", "(a", "unfinished capture"),
        ("a)", "a)", "invalid pattern capture"),  # value:match raises; string.find would not
        ("a", "%f", "missing '[' after '%f' in pattern"),
    ],
)
def test_lua_find_malformed_pattern(engine: LuaEngine, value: str, pattern: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        engine.lua_find(value, pattern)
    assert str(info.value) == message


def test_the_request_as_kong_request_hands_it_to_lua(engine: LuaEngine) -> None:
    """kong.request.get_headers(max), get_path_with_query and get_raw_body (aws-masker-collect's
    calls), and ngx.encode_base64 / decode_base64, with Kong's shapes and errors."""
    host = Host()
    state = engine.new_request(host)
    chunk = engine.compile(
        "local h = kong.request.get_headers(1000) "
        "local one = kong.request.get_headers(1) "
        "local body = kong.request.get_raw_body() "
        "local spilled, err = kong.request.get_raw_body(0) "
        "kong.ctx.shared.out = { key = h['x-api-key'], many = h['x-many'], one = one['x-many'] or 'none', "
        "  target = kong.request.get_path_with_query(), body = ngx.encode_base64(body), "
        "  back = ngx.decode_base64(ngx.encode_base64(body)) == body, bad = ngx.decode_base64('!!') == nil, "
        "  bare = ngx.encode_base64('ab', true), spilled = spilled == nil and err or 'read' }",
        "collect",
    )
    assert engine.run(state, "access", [chunk]).kind == "ok"
    assert state.shared_get(b"out") == {
        b"key": b"k",
        b"many": [b"a", b"b"],
        b"one": b"none",
        b"target": b"/claude-proxy/v1/messages?q=1",
        b"body": b"AP9ib2R5",
        b"back": True,
        b"bad": True,
        b"bare": b"YWI",
        b"spilled": b"request body did not fit into client body buffer, consider raising "
        b"'client_body_buffer_size'",
    }
    for source, error in (
        ("kong.request.get_headers(0)", "max_headers must be >= 1"),
        ("kong.request.get_headers(1001)", "max_headers must be <= 1000"),
        ("kong.request.get_headers('x')", "max_headers must be a number"),
    ):
        kind, message, _, _ = run(engine, source)
        assert kind == "error" and error in message, source
    kind, message, _, _ = run(engine, "kong.request.get_raw_body()", phase="log")
    assert kind == "error" and "function cannot be called in log phase" in message


def test_router_entities_are_kongs_shape_and_one_table_per_entity(engine: LuaEngine) -> None:
    """kong.router.get_route() hands over the route's fields (unset ones absent) and, as Kong's
    router does, the same table to every request matched to it; no service here is nil."""
    source = (
        "local r = kong.router.get_route() "
        "kong.ctx.shared.out = { name = r.name, path = r.paths[1], ws = r.ws_id ~= nil, "
        "  same = r == kong.router.get_route(), service = kong.router.get_service() == nil } "
        "kong.ctx.shared.route = r"
    )
    kind, _, first, _ = run(engine, source)
    assert kind == "ok"
    assert first.shared_get(b"out") == {b"name": b"claude-proxy", b"path": b"/claude-proxy", b"ws": True,
                                         b"same": True, b"service": True}  # fmt: skip
    _, _, second, _ = run(engine, source)
    same = engine.runtime.globals()[b"rawequal"]
    assert same(engine.api.shared_get(first.table, b"route"), engine.api.shared_get(second.table, b"route"))


def test_aws_masker_collect_hands_over_every_byte_through_msgpack(engine: LuaEngine) -> None:
    """aws-masker-collect's table crosses to the plugin server as msgpack (its strings as str, which
    Python decodes as UTF-8): a body with every byte value, ASCII or not, arrives byte for byte."""
    import msgpack

    from aws_masker.phases import COLLECT_KEY, Collected
    from aws_masker_gateway.luamsgpack import pack

    plugin = engine.load_plugin("aws-masker-collect")
    assert plugin is not None
    conf = engine.conf_table(plugin, 1, {"max_inline_body_bytes": 1 << 20})

    class BodyHost(Host):
        def __init__(self, body: bytes) -> None:
            super().__init__()
            self.body = body

        def lua_request_body(self, max_allowed_file_size: Any) -> bytes | None:
            return self.body

    for body in (bytes(range(256)) * 4, b'{"ascii": "only"}', "caf\u00e9 \u2603 \U0001f600".encode(), b""):
        state = engine.new_request(BodyHost(body))
        assert engine.run_handler(state, plugin, "access", conf).kind == "ok"
        packed = pack(state.shared_get(COLLECT_KEY.encode()))
        handed = msgpack.unpackb(packed, raw=False, strict_map_key=False)
        collected = Collected.parse(handed)
        assert collected is not None
        assert collected.body == body
        assert collected.target == "/claude-proxy/v1/messages?q=1"
        assert collected.headers["x-many"] == ["a", "b"]
