"""Whole-body entry points: mask a request body, restore a response body.

Kong buffers both bodies for a Python plugin, so these take and return whole ``bytes``. They know
HTTP content types and encodings, nothing about Kong.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import brotli

from .engine import Masker, MaskResult
from .errors import InvalidEncodingError, RestoreError
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
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            pass  # not JSON after all (or absurdly deep): mask it as text below
        else:
            masked_doc, result = mask_document(doc, masker)
            try:
                return dumps(masked_doc).encode("utf-8"), result
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


def decode_content(body: bytes, content_encoding: str | None) -> tuple[bytes, bool]:
    """Undo gzip/deflate/br, also stacked (``gzip, br``). Returns the bytes and whether any was undone."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    try:
        for coding in reversed(codings):
            if coding in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
            elif coding == "deflate":
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
            elif coding == "br":
                body = brotli.decompress(body)
            else:
                raise RestoreError(f"unsupported upstream Content-Encoding: {coding}")
    except (OSError, EOFError, zlib.error, brotli.error) as exc:
        raise RestoreError("upstream body could not be decompressed") from exc
    return body, bool(codings)


def restore_response(
    body: bytes,
    tokens: Mapping[str, str],
    content_type: str | None,
    content_encoding: str | None = None,
) -> Restored:
    """Restore this request's tokens in an upstream response body (JSON, SSE or text)."""
    body, decoded = decode_content(body, content_encoding)
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
