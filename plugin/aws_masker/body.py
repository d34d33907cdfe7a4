"""Body entry points: mask a whole request body; choose the restorer for a streamed response body.

They know HTTP content types, nothing about Kong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .engine import Masker, MaskResult
from .errors import InvalidEncodingError
from .jsonbody import dumps, mask_document
from .restore import StreamRestorer, TokenMap
from .sse import SSERestorer
from .tokens import KIND_CATEGORIES

DEFAULT_MAX_HELD = 1024 * 1024


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
