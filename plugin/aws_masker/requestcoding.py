"""A request body's Content-Encoding: gzip, deflate and br are decoded, bounded on the decoded size.

Kong hands a plugin the body as the client sent it, compressed. Masking compressed bytes finds
nothing (a deflate body made of stored blocks is even valid UTF-8), so the body is decoded here, and
the caller forwards it masked and uncompressed. Decoding streams with an output limit, so a
decompression bomb costs at most ``limit`` bytes before it is refused. Knows nothing about Kong.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import brotli

from .errors import BodyTooLargeError, InvalidEncodingError, UnsupportedEncodingError

IDENTITY = "identity"
GZIP = frozenset({"gzip", "x-gzip"})
DEFLATE = "deflate"
BROTLI = "br"
# what a decoder is fed per step: the output of one step is bounded by the limit anyway
_STEP = 64 * 1024


def coding_of(values: Iterable[str]) -> str:
    """The one content coding of ``Content-Encoding`` header values (``identity`` when none).
    Stacked codings (``gzip, br``) and unknown ones are refused."""
    codings = [c.strip().lower() for value in values for c in value.split(",") if c.strip()]
    codings = [c for c in codings if c != IDENTITY]
    if not codings:
        return IDENTITY
    if len(codings) > 1:
        raise UnsupportedEncodingError(
            "request bodies with more than one Content-Encoding are not supported; it was not forwarded"
        )
    coding = codings[0]
    if coding not in GZIP and coding not in (DEFLATE, BROTLI):
        raise UnsupportedEncodingError(
            "request Content-Encoding is not supported (use gzip, deflate, br or none); it was not forwarded"
        )
    return coding


def _too_large(limit: int) -> BodyTooLargeError:
    return BodyTooLargeError(f"decoded request body exceeds max_body_size ({limit}); it was not forwarded")


def _corrupt(coding: str) -> InvalidEncodingError:
    return InvalidEncodingError(f"request body is not valid {coding} data; it was not forwarded")


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    """zlib/gzip/raw deflate with at most ``limit`` bytes of output; gzip members may follow each other."""
    out = bytearray()
    data = body
    while True:
        decoder = zlib.decompressobj(wbits)
        try:
            while data:
                out += decoder.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_large(limit)
                data = decoder.unconsumed_tail
                if decoder.eof:
                    break
        except zlib.error as exc:
            raise _corrupt(coding) from exc
        if not decoder.eof:
            raise _corrupt(coding)  # truncated
        data = decoder.unused_data
        if not data or wbits != 16 + zlib.MAX_WBITS:
            break  # only gzip has members; trailing bytes after a deflate stream are refused below
    if data:
        raise _corrupt(coding)
    return bytes(out)


def _unbrotli(body: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    try:
        for start in range(0, len(body), _STEP):
            out += decoder.process(body[start : start + _STEP], output_buffer_limit=limit + 1 - len(out))
            while len(out) <= limit and not decoder.can_accept_more_data():
                out += decoder.process(b"", output_buffer_limit=limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(limit)
    except brotli.error as exc:
        raise _corrupt("br") from exc
    if not decoder.is_finished():
        raise _corrupt("br")
    return bytes(out)


def is_zlib(body: bytes) -> bool:
    """RFC 9110's deflate is a zlib stream; some clients send raw deflate: a zlib header tells them apart."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def decode(body: bytes, coding: str, limit: int) -> bytes:
    """``body`` decoded from ``coding`` (from :func:`coding_of`), refused past ``limit`` decoded bytes."""
    if coding == IDENTITY:
        return body
    if coding in GZIP:
        return _inflate(body, 16 + zlib.MAX_WBITS, limit, coding)
    if coding == DEFLATE:
        return _inflate(body, zlib.MAX_WBITS if is_zlib(body) else -zlib.MAX_WBITS, limit, coding)
    return _unbrotli(body, limit)
