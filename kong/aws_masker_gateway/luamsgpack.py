"""MessagePack as Kong writes and reads it (lua-MessagePack 0.5.x with ``mp_rpc.lua``'s tweaks).

Kong packs every Lua string as **str** (fixstr/str16/str32, never str8), integral numbers as
integers in "unsigned" mode, other numbers as float64, empty tables as an empty **array**, and the
results of the three ``get_raw_body`` methods as **bin**. Nil map values do not exist in Lua, so
they are omitted. Replies are decoded with ``raw=True``: Lua does not distinguish str from bin, so
both arrive here as ``bytes`` ("Lua strings").

Values on this side ("Lua values") are ``None``, ``bool``, ``int``, ``float``, ``bytes`` (a Lua
string; ``str`` is accepted and UTF-8 encoded), ``list``, ``dict``, plus the markers :class:`Bin`
and :data:`EMPTY_MAP`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack


class Bin(bytes):
    """A Lua string that Kong packs as msgpack **bin** (``fix_raw``)."""


class _EmptyMap:
    """The empty multimap produced by ``fix_mmap`` (packed as map ``80``, not array ``90``)."""

    _instance: _EmptyMap | None = None

    def __new__(cls) -> _EmptyMap:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EMPTY_MAP"


EMPTY_MAP = _EmptyMap()


class PackError(TypeError):
    """A value Kong could not pack (the Lua side raises "pack '<type>' is unimplemented")."""


def _pack_int(out: bytearray, n: int) -> None:
    if n >= 0:
        if n < 0x80:
            out.append(n)
        elif n < 0x100:
            out += b"\xcc" + struct.pack(">B", n)
        elif n < 0x10000:
            out += b"\xcd" + struct.pack(">H", n)
        elif n < 0x100000000:
            out += b"\xce" + struct.pack(">I", n)
        else:
            out += b"\xcf" + struct.pack(">Q", n)
    elif n >= -32:
        out += struct.pack(">b", n)
    elif n >= -0x80:
        out += b"\xd0" + struct.pack(">b", n)
    elif n >= -0x8000:
        out += b"\xd1" + struct.pack(">h", n)
    elif n >= -0x80000000:
        out += b"\xd2" + struct.pack(">i", n)
    else:
        out += b"\xd3" + struct.pack(">q", n)


def _pack_str(out: bytearray, data: bytes) -> None:
    n = len(data)
    if n < 32:
        out.append(0xA0 | n)
    elif n < 0x10000:
        out += b"\xda" + struct.pack(">H", n)
    else:
        out += b"\xdb" + struct.pack(">I", n)
    out += data


def _pack_bin(out: bytearray, data: bytes) -> None:
    n = len(data)
    if n < 0x100:
        out += b"\xc4" + struct.pack(">B", n)
    elif n < 0x10000:
        out += b"\xc5" + struct.pack(">H", n)
    else:
        out += b"\xc6" + struct.pack(">I", n)
    out += data


def _pack_container_header(out: bytearray, n: int, fix: int, c16: bytes, c32: bytes) -> None:
    if n < 16:
        out.append(fix | n)
    elif n < 0x10000:
        out += c16 + struct.pack(">H", n)
    else:
        out += c32 + struct.pack(">I", n)


def _is_lua_array(table: dict[Any, Any]) -> bool:
    """lua-MessagePack ``without_hole``: keys are exactly the integers 1..n."""
    n = len(table)
    return all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= n for k in table)


def _pack(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xC0)
    elif value is True:
        out.append(0xC3)
    elif value is False:
        out.append(0xC2)
    elif isinstance(value, Bin):
        _pack_bin(out, value)
    elif isinstance(value, bytes | bytearray | memoryview):
        _pack_str(out, bytes(value))
    elif isinstance(value, str):
        _pack_str(out, value.encode("utf-8"))
    elif isinstance(value, int):
        _pack_int(out, value)
    elif isinstance(value, float):
        if math.isfinite(value) and value == math.floor(value) and abs(value) < 2**63:
            _pack_int(out, int(value))
        else:
            out += b"\xcb" + struct.pack(">d", value)
    elif value is EMPTY_MAP:
        out.append(0x80)
    elif isinstance(value, list | tuple):
        _pack_container_header(out, len(value), 0x90, b"\xdc", b"\xdd")
        for item in value:
            _pack(out, item)
    elif isinstance(value, dict):
        table = {k: v for k, v in value.items() if v is not None}
        if not table:
            out.append(0x90)  # an empty Lua table packs as an empty array
        elif _is_lua_array(table):
            _pack_container_header(out, len(table), 0x90, b"\xdc", b"\xdd")
            for i in range(1, len(table) + 1):
                _pack(out, table[i])
        else:
            _pack_container_header(out, len(table), 0x80, b"\xde", b"\xdf")
            for k, v in table.items():
                _pack(out, k)
                _pack(out, v)
    else:
        raise PackError(f"pack '{type(value).__name__}' is unimplemented")


def pack(value: Any) -> bytes:
    """Pack ``value`` with Kong's (Lua) encoding rules."""
    out = bytearray()
    _pack(out, value)
    return bytes(out)


def new_unpacker() -> msgpack.Unpacker:
    """A streaming decoder with Lua semantics: str and bin both become ``bytes``."""
    return msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=0)


def to_text(value: Any) -> str:
    """A Lua string (or number) as Python ``str`` for logging and header handling."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
