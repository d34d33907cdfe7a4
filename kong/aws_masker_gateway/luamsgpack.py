"""MessagePack as Kong writes and reads it (lua-MessagePack 0.5.x with ``mp_rpc.lua``'s tweaks).

Kong packs every Lua string as **str** (fixstr/str16/str32, never str8), integral numbers as
integers in "unsigned" mode, other numbers as float64, empty tables as an empty **array**, and the
results of the three ``get_raw_body`` methods as **bin**. Nil map values do not exist in Lua, so
they are omitted. Replies are decoded with ``raw=True``: Lua does not distinguish str from bin, so
both arrive here as ``bytes`` ("Lua strings").

Values on this side ("Lua values") are ``None``, ``bool``, ``int``, ``float``, ``bytes`` (a Lua
string; ``str`` is accepted and UTF-8 encoded), ``list``, ``dict``, plus the markers :class:`Bin`
and :data:`EMPTY_MAP`.

Packing is the ``msgpack`` package's, with ``use_bin_type=False``: that packs ``str`` and ``bytes``
alike as raw **str** and never uses str8 (the pre-2013 spec lua-MessagePack follows), and its
integer, float64, array and map formats are lua-MessagePack's. Two things are Kong's own and done
here: :func:`_lua` first rewrites a value by Lua's table rules (nil map values dropped, ``{}`` and
a sequence-keyed map become arrays, integral floats become integers, :data:`EMPTY_MAP` becomes
map ``80``); and :class:`Bin` strings, which that packer cannot write as **bin**, are spliced in
between msgpack-packed segments (:func:`_emit`).
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


class _BinList(list[Any]):
    """A normalised array with a :class:`Bin` somewhere inside (packed piecewise)."""


class _BinDict(dict[Any, Any]):
    """A normalised map with a :class:`Bin` somewhere inside (packed piecewise)."""


_PLAIN = frozenset({str, bytes, int, bool, type(None)})  # packed by msgpack as they are
_WITH_BIN = frozenset({Bin, _BinList, _BinDict})
_PACKER = msgpack.Packer(use_bin_type=False)  # str/bytes -> fixstr/str16/str32, never str8


def _is_lua_array(table: dict[Any, Any]) -> bool:
    """lua-MessagePack ``without_hole``: keys are exactly the integers 1..n."""
    n = len(table)
    return all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= n for k in table)


def _lua(value: Any) -> Any:
    """``value`` as lua-MessagePack sees the Lua value (see the module docstring); Bin kept."""
    kind = type(value)
    if kind in _PLAIN or kind is Bin:
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == math.floor(value) and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, bytes | bytearray | memoryview | str | int):  # subclasses
        return value
    if value is EMPTY_MAP:
        return {}
    if isinstance(value, list | tuple):
        items: list[Any] = []
        bins = False
        for item in value:
            if type(item) not in _PLAIN:
                item = _lua(item)
                bins = bins or type(item) in _WITH_BIN
            items.append(item)
        return _BinList(items) if bins else items
    if isinstance(value, dict):
        table: dict[Any, Any] = {}
        bins = False
        for k, v in value.items():
            if v is None:
                continue  # nil values do not exist in a Lua table
            if type(v) not in _PLAIN:
                v = _lua(v)
                bins = bins or type(v) in _WITH_BIN
            if type(k) not in _PLAIN:
                k = _lua(k)
                bins = bins or type(k) in _WITH_BIN
            table[k] = v
        if not table:
            return []  # an empty Lua table packs as an empty array
        first = next(iter(table))
        if isinstance(first, int) and not isinstance(first, bool) and _is_lua_array(table):
            items = [table[i] for i in range(1, len(table) + 1)]
            return _BinList(items) if bins else items
        return _BinDict(table) if bins else table
    raise PackError(f"pack '{type(value).__name__}' is unimplemented")


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + struct.pack(">B", n)
    if n < 0x10000:
        return b"\xc5" + struct.pack(">H", n)
    return b"\xc6" + struct.pack(">I", n)


def _emit(value: Any, chunks: list[bytes]) -> None:
    """Pack a normalised value holding :class:`Bin` strings into ``chunks``: msgpack packs every
    Bin-free part and the headers of the containers on the way to a Bin; each Bin is written as
    msgpack **bin** (bin8/bin16/bin32, Kong's ``fix_raw``) between those segments."""
    kind = type(value)
    if kind is Bin:
        chunks.append(_bin_header(len(value)))
        chunks.append(value)
    elif kind is _BinList:
        chunks.append(_PACKER.pack_array_header(len(value)))
        for item in value:
            _emit(item, chunks)
    elif kind is _BinDict:
        chunks.append(_PACKER.pack_map_header(len(value)))
        for k, item in value.items():
            _emit(k, chunks)
            _emit(item, chunks)
    else:
        chunks.append(_PACKER.pack(value))


def pack(value: Any) -> bytes:
    """Pack ``value`` with Kong's (Lua) encoding rules."""
    normalised = _lua(value)
    try:
        if type(normalised) not in _WITH_BIN:
            return _PACKER.pack(normalised)
        chunks: list[bytes] = []
        _emit(normalised, chunks)
        return b"".join(chunks)
    except (OverflowError, ValueError) as exc:  # an integer beyond 64 bits, nesting beyond 511
        raise PackError(f"pack: {exc}") from exc


def pack_call(msg_id: int, method: str, param: Any) -> bytes:
    """``pack([0, msg_id, method, [param]])``, the same bytes, for the call frames the gateway sends
    on every PDK round trip: the frame around ``param`` and the keys of a ``{"EventId": .., "Data":
    ..}`` param already are what lua-MessagePack writes, so only the values are normalised (the
    whole-frame walk took several times as long as the packing itself)."""
    if type(param) is dict:
        values: dict[Any, Any] = {}
        for key, value in param.items():
            if value is None:
                continue  # nil values do not exist in a Lua table
            if type(key) is not str:
                break  # a key to normalise: the general path below
            if type(value) not in _PLAIN:
                value = _lua(value)
                if type(value) in _WITH_BIN:
                    break
            values[key] = value
        else:
            if values:
                return _PACKER.pack([0, msg_id, method, [values]])
    return pack([0, msg_id, method, [param]])


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
