"""``cjson.encode`` for Lua values (see :mod:`.luamsgpack`): the JSON Kong writes for table bodies.

lua-cjson specifics kept: an empty table encodes as ``{}``, ``/`` is escaped as ``\\/``, numbers use
Kong's precision of 16 significant digits and integral numbers print without a fraction. Strings
are raw Lua bytes; bytes >= 0x80 are copied through unchanged.
"""

from __future__ import annotations

import math
from typing import Any

_ESCAPES = {
    0x22: b'\\"',
    0x5C: b"\\\\",
    0x2F: b"\\/",
    0x08: b"\\b",
    0x0C: b"\\f",
    0x0A: b"\\n",
    0x0D: b"\\r",
    0x09: b"\\t",
}


class CjsonError(ValueError):
    """Kong's ``body encoding failed while flushing response``."""


def _string(data: bytes) -> bytes:
    out = bytearray(b'"')
    for byte in data:
        escaped = _ESCAPES.get(byte)
        if escaped is not None:
            out += escaped
        elif byte < 0x20 or byte == 0x7F:
            out += b"\\u%04x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _number(value: float) -> bytes:
    if not math.isfinite(value):
        raise CjsonError("Cannot serialise number: must not be NaN or Infinity")
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value)).encode()
    return (f"{value:.16g}").encode()


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out += b"null"
    elif value is True:
        out += b"true"
    elif value is False:
        out += b"false"
    elif isinstance(value, bytes | bytearray):
        out += _string(bytes(value))
    elif isinstance(value, str):
        out += _string(value.encode("utf-8"))
    elif isinstance(value, int | float):
        out += _number(value)
    elif isinstance(value, list | tuple):
        if not value:
            out += b"{}"
            return
        out += b"["
        for i, item in enumerate(value):
            if i:
                out += b","
            _encode(item, out)
        out += b"]"
    elif isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v is not None]
        if not items:
            out += b"{}"
            return
        out += b"{"
        for i, (k, v) in enumerate(items):
            if i:
                out += b","
            if isinstance(k, int | float) and not isinstance(k, bool):
                key = _number(k).decode()
            elif isinstance(k, bytes):
                key = k.decode("utf-8", "surrogateescape")
            elif isinstance(k, str):
                key = k
            else:
                raise CjsonError(f"Cannot serialise {type(k).__name__}: table key must be a number or string")
            out += _string(key.encode("utf-8", "surrogateescape"))
            out += b":"
            _encode(v, out)
        out += b"}"
    else:
        raise CjsonError(f"Cannot serialise {type(value).__name__}: type not supported")


def encode(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)
