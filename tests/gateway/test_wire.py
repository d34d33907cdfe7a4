"""Kong's MessagePack encoding and the RPC client (golden frames from docs/kong-protocol.md §2)."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aws_masker_gateway import luamsgpack
from aws_masker_gateway.luamsgpack import EMPTY_MAP, Bin, pack
from aws_masker_gateway.pdk import fix_mmap, fix_raw
from aws_masker_gateway.rpc import ConnectionPool, RpcClient, RpcError, RpcProtocolError


def s(text: str) -> bytes:
    data = text.encode()
    return bytes([0xA0 | len(data)]) + data


def test_handle_event_frame_matches_kong() -> None:
    frame = pack([0, 2, "plugin.HandleEvent", [{"EventName": b"access", "InstanceId": 0}]])
    expected = bytes.fromhex("94 00 02") + s("plugin.HandleEvent") + b"\x91\x82"
    expected += s("EventName") + s("access") + s("InstanceId") + b"\x00"
    assert frame == expected


def test_step_with_raw_body_is_bin() -> None:
    frame = pack([0, 3, "plugin.Step", [{"EventId": 0, "Data": Bin(b"my secret body")}]])
    assert frame.endswith(s("Data") + b"\xc4\x0e" + b"my secret body")


def test_step_with_nil_result_has_no_data_key() -> None:
    frame = pack([0, 5, "plugin.Step", [{"EventId": 0, "Data": None}]])
    assert frame == bytes.fromhex("94 00 05") + s("plugin.Step") + b"\x91\x81" + s("EventId") + b"\x00"


def test_step_multimap_shapes() -> None:
    mmap = fix_mmap({"content-type": "application/json", "x-flag": True, "x-multi": ["a", "b"]})
    frame = pack({"Data": mmap})
    decoded = msgpack.unpackb(frame, raw=False)
    assert decoded == {"Data": {"content-type": ["application/json"], "x-flag": [], "x-multi": ["a", "b"]}}
    assert pack(fix_mmap({})) == b"\x80"  # empty multimap is an empty *map*


def test_close_instance_frame() -> None:
    assert pack([0, 9, "plugin.CloseInstance", [0]]) == bytes.fromhex("94 00 09") + s(
        "plugin.CloseInstance"
    ) + bytes.fromhex("91 00")


def test_lua_strings_never_use_str8() -> None:
    assert all(pack(b"x" * n)[:1] == b"\xda" and pack("x" * n)[:1] == b"\xda" for n in range(32, 256))
    assert pack(b"x" * 40)[:3] == bytes.fromhex("da 00 28")
    assert pack("é" * 20)[:3] == bytes.fromhex("da 00 28")
    assert pack(b"\xff\xfe")[:1] == b"\xa2"  # invalid UTF-8 still travels as str, like Lua strings


def test_numbers_like_lua_messagepack() -> None:
    assert pack(2**40) == bytes.fromhex("cf 00 00 01 00 00 00 00 00")  # unsigned mode: uint64
    assert pack(200) == bytes.fromhex("cc c8")
    assert pack(-1) == b"\xff"
    assert pack(3.0) == b"\x03"  # an integral Lua number packs as an integer
    assert pack(1.5)[:1] == b"\xcb"


def test_empty_tables_pack_as_empty_array() -> None:
    assert pack({}) == b"\x90"
    assert pack([]) == b"\x90"
    assert pack(EMPTY_MAP) == b"\x80"
    assert pack({"a": None, "b": 1}) == b"\x81" + s("b") + b"\x01"  # nil map values do not exist


@pytest.mark.parametrize(
    ("size", "header"),
    [(0, "c4 00"), (255, "c4 ff"), (256, "c5 01 00"), (65535, "c5 ff ff"), (65536, "c6 00 01 00 00")],
)
def test_raw_bodies_are_bin(size: int, header: str) -> None:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    assert pack(Bin(data)) == bytes.fromhex(header) + data


def test_bin_anywhere_in_a_frame() -> None:
    data = [Bin(b"a"), {"k": Bin(b"b" * 40), "n": None}, EMPTY_MAP, {}, {1: Bin(b"c"), 2: 2.0}, "s" * 40]
    frame = pack([0, 4, "plugin.Step", [{"EventId": 1.0, "Data": data}]])
    decoded = msgpack.unpackb(frame, raw=False)  # str -> str, bin -> bytes
    expected = [b"a", {"k": b"b" * 40}, {}, [], [b"c", 2], "s" * 40]
    assert decoded == [0, 4, "plugin.Step", [{"EventId": 1, "Data": expected}]]


def test_fix_raw_nil_is_a_lua_error() -> None:
    from aws_masker_gateway.context import LuaError

    with pytest.raises(LuaError, match="nil value"):
        fix_raw(None)
    assert isinstance(fix_raw(b""), Bin)


lua_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.binary(min_size=1, max_size=8), children)
    ),
    max_leaves=20,
)


def _lua_view(value: object) -> object:
    """What the Python server would decode (raw=True), given Lua's table rules."""
    if isinstance(value, dict):
        kept = {k: _lua_view(v) for k, v in value.items() if v is not None}
        return kept if kept else []
    if isinstance(value, list):
        return [_lua_view(v) for v in value]
    return value


@given(lua_values)
def test_pack_round_trips_through_msgpack(value: object) -> None:
    assert msgpack.unpackb(pack(value), raw=True, strict_map_key=False) == _lua_view(value)


lua_values_with_bins = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=300)
    | st.binary(max_size=300).map(Bin)
    | st.floats(allow_nan=False)
    | st.just(EMPTY_MAP),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(min_size=1, max_size=8) | st.integers(1, 4), children)
    ),
    max_leaves=20,
)


def _typed_view(value: object) -> object:
    """What ``unpackb(raw=False)`` gives: Lua strings as str, Bin as bytes, Lua table rules."""
    if isinstance(value, Bin):
        return bytes(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if value is EMPTY_MAP:
        return {}
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if v is not None}
        if not kept:
            return []
        if all(isinstance(k, int) for k in kept) and sorted(kept) == list(range(1, len(kept) + 1)):
            return [_typed_view(kept[i]) for i in range(1, len(kept) + 1)]
        return {_typed_view(k): _typed_view(v) for k, v in kept.items()}
    if isinstance(value, list):
        return [_typed_view(v) for v in value]
    return value


@given(lua_values_with_bins)
def test_bins_and_lua_rules_round_trip(value: object) -> None:
    decoded = msgpack.unpackb(pack(value), raw=False, strict_map_key=False, unicode_errors="surrogateescape")
    assert decoded == _typed_view(value)


@given(st.integers(0, 2**31), st.sampled_from(["plugin.Step", "plugin.HandleEvent"]), lua_values_with_bins)
def test_call_frames_pack_as_the_whole_frame_would(msg_id: int, method: str, data: object) -> None:
    """pack_call (every PDK round trip's frame) writes what pack() writes for the same frame, for a
    Step's param and for params with nil values, binary strings and tables to normalise."""
    for param in ({"EventId": msg_id % 7, "Data": data}, {"EventId": 1, "Data": None}, data):
        assert luamsgpack.pack_call(msg_id, method, param) == pack([0, msg_id, method, [param]])


# -- RPC client against scripted servers --------------------------------------------------------------
ScriptedHandler = Callable[[list[object], asyncio.StreamWriter], Awaitable[None]]


async def _with_server(
    handler: ScriptedHandler, body: Callable[[RpcClient], Awaitable[None]], timeout: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="kgw-rpc-", dir="/tmp") as tmp:
        path = str(Path(tmp) / "s.sock")

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(4096):
                    unpacker.feed(chunk)
                    for request in unpacker:
                        await handler(request, writer)
            writer.close()

        server = await asyncio.start_unix_server(serve, path)
        try:
            await body(RpcClient(ConnectionPool(path), timeout=timeout))
        finally:
            server.close()
            await server.wait_closed()


def test_rpc_skips_notifications_and_reuses_one_connection() -> None:
    seen: list[list[object]] = []

    async def handler(request: list[object], writer: asyncio.StreamWriter) -> None:
        seen.append(request)
        writer.write(msgpack.packb([2, "serverPid", 42]) + msgpack.packb([1, request[1], None, {"ok": True}]))

    async def body(client: RpcClient) -> None:
        assert await client.call("plugin.GetStatus", None) == {b"ok": True}
        assert await client.call("plugin.GetStatus", None) == {b"ok": True}
        assert client.pool.opened == 1

    asyncio.run(_with_server(handler, body, timeout=5))
    assert [r[1] for r in seen] == [1, 2]  # msgid counter starts at 1
    assert seen[0][2] == "plugin.GetStatus" and seen[0][3] == [None]


def test_rpc_error_string_and_wrong_msgid() -> None:
    async def handler(request: list[object], writer: asyncio.StreamWriter) -> None:
        msgid = request[1]
        if request[2] == "plugin.Bad":
            writer.write(msgpack.packb([1, msgid + 7, None, None]))
        else:
            writer.write(msgpack.packb([1, msgid, "no plugin instance #99", None]))

    async def body(client: RpcClient) -> None:
        with pytest.raises(RpcError, match="no plugin instance #99"):
            await client.call("plugin.HandleEvent", {"InstanceId": 99, "EventName": "access"})
        with pytest.raises(RpcProtocolError, match="unexpected RPC response ID"):
            await client.call("plugin.Bad", 1)

    asyncio.run(_with_server(handler, body, timeout=5))


def test_rpc_timeout_and_eof_are_no_data() -> None:
    async def handler(request: list[object], writer: asyncio.StreamWriter) -> None:
        if request[2] == "plugin.Close":
            writer.close()

    async def body(client: RpcClient) -> None:
        with pytest.raises(RpcError, match=r"^no data$"):
            await client.call("plugin.Silent", 1)
        with pytest.raises(RpcError, match=r"^no data$"):
            await client.call("plugin.Close", 1)

    asyncio.run(_with_server(handler, body, timeout=0.3))


def test_rpc_connect_failure() -> None:
    async def body() -> None:
        client = RpcClient(ConnectionPool("/tmp/kgw-does-not-exist.sock"), timeout=1)
        with pytest.raises(RpcError, match="no such file"):
            await client.call("plugin.GetStatus", None)

    asyncio.run(body())


def test_unpacker_decodes_str_and_bin_alike() -> None:
    unpacker = luamsgpack.new_unpacker()
    unpacker.feed(msgpack.packb(["ret", b"bin"], use_bin_type=True))
    assert next(unpacker) == [b"ret", b"bin"]
