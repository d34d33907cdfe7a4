"""Body entry points: mask a whole request body; choose the restorer for a streamed response body.

They know HTTP content types, nothing about Kong.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import jsontext
from .engine import Masker, MaskResult
from .errors import InvalidEncodingError
from .jsonbody import mask_document
from .restore import StreamRestorer, TokenMap
from .sse import SSERestorer
from .tokens import KIND_CATEGORIES

DEFAULT_MAX_HELD = 1024 * 1024


def mask_request(body: bytes, masker: Masker) -> tuple[bytes, MaskResult]:
    """Mask a request body. JSON (an object or a list, as leniently as Python's ``json`` reads it) is
    masked literal by literal and keeps every other byte (jsonbody.py); anything else is masked as
    text. A body that is not UTF-8, or holds NUL bytes (UTF-16/32 without a BOM), is refused."""
    if not body:
        return body, MaskResult()
    text = decode_body(body)
    start = len(text) - len(text.lstrip("\ufeff"))  # BOMs (PowerShell writes one) are not JSON
    doc = jsontext.parse(text, start)
    if doc is not None:
        masked, result = mask_document(text, doc, masker, masker.config.refuse_binary_documents)
        return masked.encode("utf-8"), result
    masked, result = masker.mask_text(text)
    return masked.encode("utf-8"), result


def decode_body(body: bytes) -> str:
    """The text of a request body; refused unless it is UTF-8 without NUL bytes. ASCII in UTF-16 or
    UTF-32 without a byte order mark is valid UTF-8 with NULs between the letters: an upstream that
    sniffs the encoding would read what the scan saw as NULs."""
    nul = body.find(b"\x00")
    if nul >= 0:
        raise InvalidEncodingError(
            f"request body has a NUL byte (at {nul}): UTF-16 or UTF-32 text, or binary data, cannot "
            "be masked; send UTF-8. It was not forwarded"
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncodingError(
            f"request body is not valid UTF-8 (byte {exc.start}); it was not forwarded"
        ) from exc


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def response_restorer(
    tokens: Mapping[str, str],
    categories: Mapping[str, str] = KIND_CATEGORIES,
    content_type: str | None = None,
    max_held: int = DEFAULT_MAX_HELD,
) -> StreamRestorer | SSERestorer:
    """The restorer for a response of ``content_type``: an event stream is restored event by event,
    JSON with JSON-escaped originals, anything else as text (the Lua restore plugin chooses alike)."""
    mtype = media_type(content_type)
    is_sse = mtype == "text/event-stream"
    escaped = is_sse or mtype == "application/json" or mtype.endswith("+json")
    token_map = TokenMap(tokens, categories, escaped=escaped)
    return SSERestorer(token_map, max_held) if is_sse else StreamRestorer(token_map)


def restore_body(
    body: bytes, tokens: Mapping[str, str], content_type: str | None, max_held: int = DEFAULT_MAX_HELD
) -> bytes:
    """Restore a whole response body (``aws-masker unmask``; Kong restores chunk by chunk)."""
    restorer = response_restorer(tokens, KIND_CATEGORIES, content_type, max_held)
    return restorer.feed(body) + restorer.finish()
