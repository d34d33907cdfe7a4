"""Whole-body entry points: mask a request body, restore a response body.

Kong buffers both bodies for a Python plugin, so these take and return whole ``bytes``. They know
HTTP content types and encodings, nothing about Kong.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import brotli

from .engine import Masker, MaskResult
from .errors import InvalidEncodingError, ResponseTooLargeError, RestoreError
from .jsonbody import dumps, mask_document
from .restore import restore_json_text, restore_text
from .sse import SSERestorer


def mask_request(body: bytes, masker: Masker) -> tuple[bytes, MaskResult]:
    """Mask a request body. JSON (object or array) is masked value by value and stays valid JSON;
    anything else, including JSON that does not parse, is masked as text. Non-UTF-8 is refused."""
    if not body:
        return body, MaskResult()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncodingError(
            f"request body is not valid UTF-8 (byte {exc.start}); it was not forwarded"
        ) from exc
    source = text.removeprefix("\ufeff")  # a BOM (PowerShell writes one) is not part of the JSON
    if source.lstrip()[:1] in ("{", "["):
        try:
            doc = json.loads(source)
        except (ValueError, RecursionError):
            pass  # not JSON after all (or absurdly deep): mask it as text below
        else:
            masked_doc, result = mask_document(doc, masker)
            try:
                return dumps(masked_doc), result
            except (ValueError, RecursionError):
                pass  # NaN/Infinity cannot be re-encoded as strict JSON: mask the text instead
    masked, result = masker.mask_text(text)
    return masked.encode("utf-8"), result


@dataclass(frozen=True)
class Restored:
    body: bytes
    restored: int
    decoded: bool
    """True if a Content-Encoding was removed (the caller must drop that header)."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_content(body: bytes, content_encoding: str | None, limit: int) -> tuple[bytes, bool]:
    """Undo gzip/deflate/br, also stacked (``gzip, br``), never producing more than ``limit`` bytes.
    Returns the bytes and whether any coding was undone."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit)
        elif coding == "deflate":
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit)
            except RestoreError:
                body = _inflate(body, -zlib.MAX_WBITS, limit)  # raw deflate, as some servers send
        elif coding == "br":
            body = _unbrotli(body, limit)
        else:
            raise RestoreError(f"unsupported upstream Content-Encoding: {coding}")
    return body, bool(codings)


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RestoreError("upstream body could not be decompressed") from exc
    if len(out) > limit:
        raise ResponseTooLargeError("decompressed upstream body exceeds max_response_size")
    if not d.eof:
        raise RestoreError("upstream body could not be decompressed (truncated)")
    return out


def _unbrotli(body: bytes, limit: int) -> bytes:
    d = brotli.Decompressor()
    try:
        out = d.process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise RestoreError("upstream body could not be decompressed") from exc
    if len(out) > limit:
        raise ResponseTooLargeError("decompressed upstream body exceeds max_response_size")
    if not d.is_finished():
        raise RestoreError("upstream body could not be decompressed (truncated)")
    return out


def restore_response(
    body: bytes,
    tokens: Mapping[str, str],
    content_type: str | None,
    content_encoding: str | None = None,
    max_size: int = 100 * 1024 * 1024,
) -> Restored:
    """Restore this request's tokens in an upstream response body (JSON, SSE or text).

    Raises ``ResponseTooLargeError`` if the body (decompressed) is larger than ``max_size``."""
    if len(body) > max_size:
        raise ResponseTooLargeError("upstream body exceeds max_response_size")
    body, decoded = decode_content(body, content_encoding, max_size)
    if not tokens or not body:
        return Restored(body, 0, decoded)
    mtype = media_type(content_type)
    if mtype == "text/event-stream":
        restorer = SSERestorer(tokens)
        out = restorer.feed(body) + restorer.finish()
        return Restored(out, restorer.restored, decoded)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RestoreError("upstream body is not valid UTF-8") from exc
    if mtype == "application/json" or mtype.endswith("+json"):
        restored, n = restore_json_text(text, tokens)
    else:
        restored, n = restore_text(text, tokens)
    return Restored(restored.encode("utf-8"), n, decoded)
