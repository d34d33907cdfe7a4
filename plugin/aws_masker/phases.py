"""What the plugin does in each Kong phase, written against the PDK object Kong hands to a phase.

Every PDK call is one IPC round trip to Kong (kong-protocol.md §5.3), so each one is justified in a
comment. A JSON request that gets tokens costs 5 calls in ``access`` and 5 in ``response``; a request
with nothing to restore costs 5 + 1.

Failures are closed: any exception ends the request with an error response via ``kong.response.exit``
(so the request never reaches the upstream unmasked), and nothing a client sent is ever echoed in
the error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .body import mask_request, restore_response
from .engine import Masker
from .errors import BodyTooLargeError, BodyUnavailableError, MaskerError, ResponseTooLargeError
from .schema import DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_RESPONSE_SIZE

# kong.ctx.shared key. The fail-closed guard in kong.yml (a post-function) refuses any request on which
# this key is missing, so it must only be set once the body sent upstream is the masked one.
CTX_KEY = "aws_masker"
STATE_VERSION = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_body_size: int
    max_response_size: int
    log_masked_requests: bool

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> Limits:
        return cls(
            max_body_size=int(conf.get("max_body_size") or DEFAULT_MAX_BODY_SIZE),
            max_response_size=int(conf.get("max_response_size") or DEFAULT_MAX_RESPONSE_SIZE),
            log_masked_requests=bool(conf.get("log_masked_requests", False)),
        )


def error_body(code: str, message: str) -> dict[str, str]:
    """The original system's error shape (original.md §2.8)."""
    return {"error": f"AWS_MASKER_{code}", "message": message}


def fail(kong: Any, exc: BaseException) -> None:
    """End the request with an error. Logs the error's class and our own message, never its input."""
    if isinstance(exc, MaskerError):
        status, code, message = exc.status, exc.code, exc.message
    else:
        status, code, message = 503, "2001", "masking failed; the request was not forwarded"
    try:
        # PDK: log line through Kong's logger (visible at Kong's default log level).
        kong.log.err(f"aws-masker: {type(exc).__name__}: AWS_MASKER_{code}: {message}")
        # PDK: terminal; Kong sends this response and never replies to this call.
        kong.response.exit(status, error_body(code, message), {"Content-Type": "application/json"})
    except Exception:  # the connection to Kong is gone; nothing more can be done
        log.exception("aws-masker: could not send the error response")


def access(kong: Any, masker: Masker, limits: Limits) -> None:
    # PDK: Content-Length lets an oversized body be refused with 413 before it is read at all.
    length = kong.request.get_header("content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_body_size:
        raise BodyTooLargeError(
            f"request body of {length} bytes exceeds max_body_size ({limits.max_body_size}); "
            "it was not forwarded"
        )
    # PDK: the body itself. The argument lets Kong 3.8+ read a body spilled to disk past
    # client_body_buffer_size (older Kong ignores it). A body Kong cannot hand over arrives as None.
    body = kong.request.get_raw_body(limits.max_body_size)
    if body is None:
        raise BodyTooLargeError(
            "request body could not be read (larger than max_body_size, or spilled to disk on a Kong "
            "that cannot read it back); it was not forwarded"
        )
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body:
        # An empty body for a request that has one would pass the guard unmasked if nginx still
        # forwarded the real body (e.g. unbuffered or HTTP/2 edge cases): refuse it instead.
        # PDK: only for empty bodies without Content-Length, to spot a chunked one.
        chunked = length is None and kong.request.get_header("transfer-encoding")
        if (length is not None and length.strip() not in ("", "0")) or chunked:
            raise BodyUnavailableError("the request body could not be read; it was not forwarded")
    if len(body) > limits.max_body_size:
        raise BodyTooLargeError(
            f"request body exceeds max_body_size ({limits.max_body_size}); it was not forwarded"
        )
    tokens: dict[str, str] = {}
    if body:
        masked, result = mask_request(body, masker)
        tokens = result.tokens
        if result.total:
            # PDK: replace the body sent upstream (Kong sets Content-Length).
            kong.service.request.set_raw_body(masked)
            # PDK: the response must come back uncompressed so its tokens can be restored cheaply.
            kong.service.request.set_header("Accept-Encoding", "identity")
        if limits.log_masked_requests:
            counts = " ".join(f"{cat}={n}" for cat, n in sorted(result.counts.items()))
            # PDK: an operator-requested summary line: counts per category only, never values.
            kong.log.notice(f"aws-masker: masked {result.total} identifiers {counts}".rstrip())
    # PDK: this request's token map for the response phase, and the mark the guard checks.
    # ctx.shared values must survive msgpack -> Lua -> msgpack, so it is a UTF-8 JSON string.
    kong.ctx.shared.set(CTX_KEY, json.dumps({"v": STATE_VERSION, "tokens": tokens}, separators=(",", ":")))


def response(kong: Any, limits: Limits) -> None:
    # PDK: this request's token map, set in access.
    raw_state = kong.ctx.shared.get(CTX_KEY)
    if not raw_state:
        return  # access did not mark this request; the guard in kong.yml has already refused it
    state = json.loads(raw_state)
    tokens: dict[str, str] = state.get("tokens") or {}
    if not tokens:
        return  # nothing was masked, so there is nothing to restore: Kong sends the upstream body
    # PDK: status to answer with (kong.response.exit needs it).
    status = kong.service.response.get_status()
    # PDK: one call for Content-Type and Content-Encoding (a multimap: name -> [values]).
    headers = kong.service.response.get_headers() or {}
    # PDK: the buffered upstream body (Kong buffers it because this plugin has a response handler).
    body = kong.service.response.get_raw_body() or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        restored = restore_response(
            body,
            tokens,
            _first(headers, "content-type"),
            _first(headers, "content-encoding"),
            limits.max_response_size,
        )
    except ResponseTooLargeError:
        # PDK: a warning; the client gets the upstream body with tokens (no identifier is exposed).
        kong.log.warn(f"aws-masker: response of {len(body)} bytes exceeds max_response_size; not restored")
        return
    if restored.decoded:
        # PDK: the body we send is no longer compressed (rare: we asked the upstream for identity).
        kong.response.clear_header("Content-Encoding")
    # PDK: terminal; the only way a Python plugin can replace the response body. Kong keeps the
    # upstream headers it already copied and sets Content-Length for the new body.
    kong.response.exit(status, restored.body)


def _first(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            if isinstance(value, list):
                return value[0] if value else None
            return value
    return None
