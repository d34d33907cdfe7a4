"""JSON that Kong writes with lua-cjson, written here by the real lua-cjson in the Lua engine: table
bodies of ``kong.response.exit`` (from an external plugin's PDK call and from Lua), table messages
of ``kong.response.error`` and ``kong.service.request.set_body``."""

from __future__ import annotations

import time

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from aws_masker_gateway.context import (
    LuaError,
    PdkExit,
    RequestBody,
    RequestContext,
    UpstreamRequest,
)
from aws_masker_gateway.lua import JsonBody, LuaEngine
from aws_masker_gateway.pdk import PdkCall, build_exit, call_pdk


@pytest.fixture(scope="module")
def engine() -> LuaEngine:
    return LuaEngine(time.time)


def precision(engine: LuaEngine) -> int:
    """``encode_number_precision``: 16 with Kong's OpenResty lua-cjson, at most 14 with Debian's."""
    return int(engine.runtime.eval('require("cjson.safe").encode_number_precision()'))


def exit_body(engine: LuaEngine, body: object) -> bytes:
    return build_exit(200, body, None, engine).body


# Values as an external plugin's PDK call delivers them (msgpack, decoded with raw=True).
@pytest.mark.parametrize(
    ("body", "json"),
    [
        ({}, b"{}"),  # an empty table is an object, never []
        ([], b"{}"),
        ({b"k": None}, b"{}"),  # a nil value does not exist in a Lua table
        ({b"path": b"/v1/messages"}, b'{"path":"\\/v1\\/messages"}'),  # '/' is escaped
        ({b"n": 3.0}, b'{"n":3}'),  # integral numbers print without a fraction
        ({b"n": -0.5}, b'{"n":-0.5}'),
        ({b"a": {b"b": [1, b"two", True, {b"c": []}]}}, b'{"a":{"b":[1,"two",true,{"c":{}}]}}'),
        ({b"raw": b"\xff\xfe caf\xc3\xa9"}, b'{"raw":"\xff\xfe caf\xc3\xa9"}'),  # bytes copied through
        ({b"c": b'\x00\x1f\x7f"\\'}, b'{"c":"\\u0000\\u001f\\u007f\\"\\\\"}'),
        ({1: b"a", 2: b"b"}, b'["a","b"]'),  # a map keyed 1..n is a Lua sequence: an array
        ({3: b"c"}, b'[null,null,"c"]'),  # a hole-y sequence (not excessively sparse) too
        ([1, None, 3], b"[1,null,3]"),
        ([1, None], b"[1]"),  # a trailing nil is no element of a Lua table
        ({1.5: b"x"}, b'{"1.5":"x"}'),  # number keys become strings
    ],
)
def test_exit_table_bodies_are_lua_cjson(engine: LuaEngine, body: object, json: bytes) -> None:
    exit_ = build_exit(403, body, None, engine)
    assert exit_.body == json
    assert exit_.headers["Content-Type"] == "application/json; charset=utf-8"
    assert exit_.headers["Content-Length"] == str(len(json))


def test_number_precision_is_the_builds(engine: LuaEngine) -> None:
    """Kong sets 16 significant digits (kong/globalpatches.lua); Debian's lua-cjson allows 14."""
    digits = precision(engine)
    assert digits in (14, 16)
    encoded = [exit_body(engine, [n]) for n in (1 / 3, 2**53, 10**15, -0.0)]
    if digits == 16:  # what Kong sends
        assert encoded == [b"[0.3333333333333333]", b"[9007199254740992]", b"[1000000000000000]", b"[-0]"]
    else:  # integers from 10^14 on print with an exponent
        assert encoded == [b"[0.33333333333333]", b"[9.007199254741e+15]", b"[1e+15]", b"[-0]"]


def test_uint64_numbers_encode_as_lua_doubles(engine: LuaEngine) -> None:
    """msgpack uint64 beyond 2^63 is a double on Kong's side (lua-MessagePack)."""
    encoded = exit_body(engine, {b"n": 2**64 - 1})
    assert encoded in (b'{"n":1.844674407371e+19}', b'{"n":1.844674407370955e+19}')


def test_exit_headers_and_string_bodies(engine: LuaEngine) -> None:
    exit_ = build_exit(200, {b"a": 1}, {b"Content-Type": b"application/problem+json"}, engine)
    assert exit_.headers["Content-Type"] == "application/problem+json"
    plain = build_exit(200, b"{not json", None, engine)
    assert plain.body == b"{not json" and "Content-Type" not in plain.headers


def test_exit_body_that_cannot_be_encoded(engine: LuaEngine) -> None:
    with pytest.raises(LuaError) as info:
        build_exit(200, {b"n": float("nan")}, None, engine)
    assert str(info.value).startswith("body encoding failed while flushing response: Cannot serialise number")


# -- kong.response.exit from Lua: the Lua table is encoded as it is ---------------------------------
class Host:
    def __getattr__(self, name: str) -> object:
        return lambda *args: None


def lua_exit_body(engine: LuaEngine, body: str) -> bytes | None:
    state = engine.new_request(Host())  # type: ignore[arg-type]
    outcome = engine.run(state, "access", [engine.compile(f"kong.response.exit(200, {body})", "t")])
    assert outcome.kind == "exit", outcome.message
    lua_exit = state.take_exit()
    assert lua_exit is not None
    return lua_exit.body


@pytest.mark.parametrize(
    ("body", "json"),
    [
        ("{}", b"{}"),
        ('{ url = "https://x/y" }', b'{"url":"https:\\/\\/x\\/y"}'),
        ("{ n = 2.0, m = 1e300 }", None),  # checked below (key order is the table's)
        ('{ [1] = "a", [3] = "c" }', b'["a",null,"c"]'),
        ("{ list = { 1, 2, { x = {} } } }", b'{"list":[1,2,{"x":{}}]}'),
        ('{ raw = "\\255\\254" }', b'{"raw":"\xff\xfe"}'),
    ],
)
def test_lua_exit_tables_are_encoded_in_lua(engine: LuaEngine, body: str, json: bytes | None) -> None:
    encoded = lua_exit_body(engine, body)
    assert isinstance(encoded, JsonBody)
    if json is None:
        assert sorted(encoded[1:-1].split(b",")) == [b'"m":1e+300', b'"n":2']
    else:
        assert encoded == json


def test_lua_exit_string_body_is_not_json(engine: LuaEngine) -> None:
    body = lua_exit_body(engine, '"plain"')
    assert body == b"plain" and not isinstance(body, JsonBody)
    assert lua_exit_body(engine, "nil") is None


def test_lua_exit_body_that_cannot_be_encoded(engine: LuaEngine) -> None:
    with pytest.raises(LuaError) as info:
        lua_exit_body(engine, "{ f = tostring }")
    assert str(info.value) == (
        "body encoding failed while flushing response: Cannot serialise function: type not supported"
    )


# -- kong.response.error and kong.service.request.set_body from an external plugin --------------------
def pdk_ctx(engine: LuaEngine, accept: str = "text/plain") -> RequestContext:
    headers = CIMultiDictProxy(CIMultiDict({"Accept": accept, "Content-Type": "application/json"}))
    ctx = RequestContext(
        method="POST",
        raw_path="/",
        query_string="",
        headers=headers,
        body=RequestBody(b"{}", spilled=False),
        scheme="http",
        server_port=8000,
        client_ip="127.0.0.1",
    )
    ctx.lua = engine.new_request(ctx)
    ctx.phase = "access"
    ctx.upstream = UpstreamRequest("POST", "/", "", CIMultiDict(), "http", "upstream", 80)
    return ctx


def test_error_with_table_message(engine: LuaEngine) -> None:
    ctx = pdk_ctx(engine)
    with pytest.raises(PdkExit):
        call_pdk("kong.response.error", PdkCall(ctx, "p", "id", [403, {b"why": b"a/b"}], 0))
    assert ctx.exit is not None
    assert ctx.exit.body == f'{{"why":"a\\/b"}}\nrequest_id: {ctx.request_id}\n'.encode()
    with pytest.raises(LuaError) as info:
        call_pdk("kong.response.error", PdkCall(pdk_ctx(engine), "p", "id", [403, [float("inf")]], 0))
    assert str(info.value).startswith("could not JSON encode the error message: Cannot serialise number")


def test_set_body_json(engine: LuaEngine) -> None:
    ctx = pdk_ctx(engine)
    call_pdk("kong.service.request.set_body", PdkCall(ctx, "p", "id", [{b"model": b"x/y", b"n": 1.0}], 0))
    assert sorted(ctx.body.data[1:-1].split(b",")) == [b'"model":"x\\/y"', b'"n":1']
    with pytest.raises(LuaError, match=r"^args must be a table$"):
        call_pdk("kong.service.request.set_body", PdkCall(ctx, "p", "id", [b"text"], 0))
