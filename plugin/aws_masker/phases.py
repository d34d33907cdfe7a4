"""What the plugin does in each Kong phase, written against the PDK object Kong hands to a phase.

Every PDK call is one IPC round trip between Kong and this plugin server (docs/kong-protocol.md),
paid by the request that makes it, so each one is justified in a comment next to it. The budget:

``access`` (on the request's path, before the upstream sees it):
    1. ``kong.ctx.shared.get("aws_masker_request")``: the request's target, headers and body, read
       in Lua by aws-masker-collect (kong/plugins/aws-masker-collect, priority 772, just before
       this plugin), where reading costs no round trip. Without that plugin (or for a body it did
       not hand over: spilled to disk, or over its ``max_inline_body_bytes``) the same values come
       from the calls Kong would otherwise need, one round trip each:
       ``kong.request.get_headers(1000)`` (every request header in one call: Content-Length,
       Transfer-Encoding, Content-Type, Content-Encoding, and the values masked by channels.py),
       ``kong.request.get_path_with_query()`` (the raw request target, for channels.py) and
       ``kong.request.get_raw_body(0)`` (the body, whole: see the comment at the call).
    2. ``kong.service.request.set_raw_body(masked)``: when something was masked in the body, and
       always for a body aws-masker-collect handed over (so what goes upstream is what was masked).
       (+1 ``kong.service.request.clear_header("Content-Encoding")`` when that body came compressed:
       it goes upstream decoded.)
    3. ``kong.ctx.shared.set("aws_masker", state)``: always; the token map for the restore plugin,
       the counts for the monitoring events, and the mark the fail-closed guard checks.
    (+1 ``kong.service.request.set_headers`` when a header value was masked, +1
    ``kong.service.request.set_raw_query`` when a query argument was, +1 ``kong.log.notice`` when the
    operator turned ``log_masked_requests`` on.)
    So 3 calls for a JSON request, with identifiers or without, as kong.yml configures the plugins;
    without aws-masker-collect 6 for one with identifiers in its body and 5 for one with nothing to
    mask (the ``kong.ctx.shared.get`` finds nothing, then the three reads). The upstream must answer
    uncompressed for the restore to work as it streams: the restore plugin's own ``access`` (Lua,
    after this one) sets ``Accept-Encoding: identity``, which costs no round trip.

``log`` (after the response has gone to the client; Kong runs it from a timer, after every Lua
plugin's log phase):
    none when monitoring is off or the request is not sampled;
    1. ``kong.ctx.shared.get("aws_masker_event")``: the small JSON string the restore plugin's log
       phase left: Kong's request id, route, service and both sides' counts (the events are built
       from it after the phase has answered Kong, when the plugin server is idle);
    2. ``kong.log.warn``/``notice``: only when the publisher has a line for Kong's log (a Redis
       error, or its counters every ``event_stats_interval_s``).
    Without the restore plugin (not installed) call 1 finds nothing, and the events come from
    ``kong.log.serialize()`` and our own state instead: 3 calls, and no line.

Kong's own cost per request for this plugin's ``log`` phase, paid even when no event is sampled:
a ``kong.log.serialize()`` and a copy of ``ngx.ctx`` in nginx's log phase, one timer, one
``HandleEvent`` round trip and one run of the handler (README, "How it runs in Kong").

Restoring the response is not here: Kong gives external plugins no body filter, and a ``response``
handler would make Kong buffer the whole answer. The Lua plugin ``aws-masker-restore`` restores
it chunk by chunk from the state ``access`` leaves in ``kong.ctx.shared``.

Failures are closed: any exception ends the request with an error response via
``kong.response.exit`` (so the request never reaches the upstream unmasked), and nothing a client
sent is ever echoed in the error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .body import mask_request, media_type
from .channels import mask_channels
from .engine import Masker, MaskResult
from .errors import (
    BodyTooLargeError,
    BodyUnavailableError,
    MaskerError,
    TooManyHeadersError,
    UnsupportedMediaTypeError,
)
from .events import Monitor, RequestInfo
from .forwarded import check_forwarded
from .pdkserver import offload, when_idle
from .requestcoding import IDENTITY, coding_of, decode
from .restore import token_kind
from .schema import DEFAULT_MAX_BODY_SIZE
from .tokens import KIND_CATEGORIES

# what aws-masker-collect (kong/plugins/aws-masker-collect) leaves in kong.ctx.shared, and its version
COLLECT_KEY = "aws_masker_request"
COLLECT_VERSION = 2
# kong.ctx.shared key. The fail-closed guard in kong.yml (a post-function) refuses any request on which
# this key is missing, so it must only be set once the body sent upstream is the masked one.
CTX_KEY = "aws_masker"
STATE_VERSION = 2
# what the restore plugin's log phase leaves for the events (see its handler.lua)
EVENT_KEY = "aws_masker_event"
# the most headers kong.request.get_headers() hands over (Kong's MAX_HEADERS); its default is 100
MAX_HEADERS = 1000
# bodies over this size are masked off the plugin server's loop (about 2 ms of masking)
OFFLOAD_BYTES = 64 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_body_size: int
    log_masked_requests: bool

    @classmethod
    def from_mapping(cls, conf: Mapping[str, Any]) -> Limits:
        return cls(
            max_body_size=int(conf.get("max_body_size") or DEFAULT_MAX_BODY_SIZE),
            log_masked_requests=bool(conf.get("log_masked_requests", False)),
        )


def error_body(code: str, message: str) -> dict[str, str]:
    """The original system's error shape."""
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


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """One value of a header from ``get_headers()`` (lower-case names, values str or [str])."""
    value = headers.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _is_json(content_type: str | None) -> bool:
    """The Messages API takes JSON only: ``application/json`` or any ``*/*+json``."""
    mtype = media_type(content_type)
    return mtype == "application/json" or (mtype.endswith("+json") and "/" in mtype)


@dataclass(frozen=True)
class Collected:
    """The request as aws-masker-collect left it in ``kong.ctx.shared`` (its handler.lua)."""

    target: str
    headers: dict[str, Any]
    body: bytes | None  # None: not handed over (spilled to disk, or over its size limit)

    @classmethod
    def parse(cls, raw: Any) -> Collected | None:
        """``None`` when there is nothing usable (the plugin is not installed, or an unknown
        version): aws-masker then reads the request with its own calls. ``raw`` is the Lua table
        as msgpack hands it over; its body has each byte as the character with that code."""
        if not isinstance(raw, dict) or raw.get("v") != COLLECT_VERSION:
            return None
        target, headers, body = raw.get("target"), raw.get("headers"), raw.get("body")
        if headers == []:  # an empty Lua table crosses as an array
            headers = {}
        if not isinstance(target, str) or not isinstance(headers, dict):
            return None
        if not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            for v in headers.values()
        ):
            return None
        if body is not None and not isinstance(body, str):
            return None
        try:
            data = None if body is None else body.encode("latin-1")
        except UnicodeEncodeError:  # a character over 255: not what the plugin writes
            return None
        return cls(target, headers, data)


def access(kong: Any, masker: Masker, limits: Limits, events: bool = False) -> None:
    """Mask the request; ``events``: monitoring is on (the restore plugin then leaves the counts)."""
    # PDK: the request as aws-masker-collect read it in Lua (one call instead of the next three).
    collected = Collected.parse(kong.ctx.shared.get(COLLECT_KEY))
    if collected is not None:
        headers: dict[str, Any] = collected.headers
    else:
        # PDK: all request headers in one call (length, type and coding checks, and channels.py).
        # Kong hands over the first 100 by default and at most 1000, but sends every header upstream.
        headers = kong.request.get_headers(MAX_HEADERS) or {}
    if sum(len(v) if isinstance(v, list) else 1 for v in headers.values()) >= MAX_HEADERS:
        raise TooManyHeadersError(
            f"a request with {MAX_HEADERS} or more headers cannot be checked; it was not forwarded"
        )
    length = _header(headers, "content-length")
    if length is not None and length.isdigit() and int(length) > limits.max_body_size:
        raise BodyTooLargeError(
            f"request body of {length} bytes exceeds max_body_size ({limits.max_body_size}); "
            "it was not forwarded"
        )
    encoding = headers.get("content-encoding")
    coding = coding_of(encoding if isinstance(encoding, list) else [encoding] if encoding else [])
    # PDK (without aws-masker-collect): the raw request target (path and query), masked or refused
    # by channels.py below.
    target = collected.target if collected is not None else kong.request.get_path_with_query() or "/"
    # PDK (without aws-masker-collect, or a body it did not hand over): the body itself. 0 means "no
    # limit" to Kong 3.8+, which then reads a body spilled to disk past client_body_buffer_size
    # whatever its size: with a limit, a larger (chunked) body comes back nil, which Kong's bridge
    # cannot pack, a Lua error (500) this plugin never sees. A declared length over max_body_size
    # was refused above; a chunked one is measured below (bound it in nginx with
    # nginx_http_client_max_body_size). Older Kong ignores the argument.
    body = collected.body if collected is not None else None
    handed_over = body is not None
    if body is None:
        body = kong.request.get_raw_body(0)
    if body is None:  # what a fake or an older bridge may hand over: never forward it
        raise BodyTooLargeError(
            "request body could not be read (larger than max_body_size, or spilled to disk on a Kong "
            "that cannot read it back); it was not forwarded"
        )
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body:
        # An empty body for a request that has one would pass the guard unmasked if nginx still
        # forwarded the real body (e.g. unbuffered or HTTP/2 edge cases): refuse it instead.
        chunked = length is None and _header(headers, "transfer-encoding")
        if (length is not None and length.strip() not in ("", "0")) or chunked:
            raise BodyUnavailableError("the request body could not be read; it was not forwarded")
    if len(body) > limits.max_body_size:
        raise BodyTooLargeError(
            f"request body exceeds max_body_size ({limits.max_body_size}); it was not forwarded"
        )
    if body and not _is_json(_header(headers, "content-type")):
        raise UnsupportedMediaTypeError(
            "request bodies must be JSON (Content-Type application/json); it was not forwarded"
        )
    compressed = coding != IDENTITY and bool(body)
    raw = body
    started = time.perf_counter()

    def mask_body() -> tuple[bytes, bytes, MaskResult]:
        plain = decode(raw, coding, limits.max_body_size) if compressed else raw
        return (plain, *mask_request(plain, masker))

    # a large (or compressed) body is masked on a worker thread, so that the plugin server's one
    # loop goes on serving the other requests' PDK calls meanwhile (pdkserver.py)
    body, masked, result = offload(mask_body) if compressed or len(raw) > OFFLOAD_BYTES else mask_body()
    # after the body: a name its scan found by context is masked in headers and query too
    channels = mask_channels(masker, headers, target, result.tokens)
    # the proxy headers Kong passes on as the client sent them: addresses only (forwarded.py)
    check_forwarded(masker, headers, result.tokens)
    tokens: dict[str, str] = {**channels.result.tokens, **result.tokens}
    counts: dict[str, int] = dict(channels.result.counts)
    for category, n in result.counts.items():
        counts[category] = counts.get(category, 0) + n
    if channels.headers:
        # PDK: the masked header values (only when a header carried an identifier).
        kong.service.request.set_headers(channels.headers)
    if channels.raw_query is not None:
        # PDK: the masked query string (only when a query argument carried an identifier).
        kong.service.request.set_raw_query(channels.raw_query)
    if body:
        if result.total or compressed or handed_over:
            # PDK: replace the body sent upstream (Kong sets Content-Length). Always for a body
            # aws-masker-collect handed over: the body sent is the one masked, even if a plugin of
            # the same priority changed the request in between (see its handler.lua).
            kong.service.request.set_raw_body(masked if result.total else body)
        if compressed:
            # PDK: the body goes upstream decoded (only for a compressed request body).
            kong.service.request.clear_header("Content-Encoding")
    total = sum(counts.values())
    if limits.log_masked_requests and (body or total):
        summary = " ".join(f"{cat}={n}" for cat, n in sorted(counts.items()))
        # PDK: an operator-requested summary line: counts per category only, never values.
        kong.log.notice(f"aws-masker: masked {total} identifiers {summary}".rstrip())
    state = {
        "v": STATE_VERSION,
        "events": events,
        "tokens": tokens,
        "cat": {kind: KIND_CATEGORIES[kind] for kind in {token_kind(t) for t in tokens}},
        "masked": {
            "count": total,
            "categories": counts,
            "processing_time_ms": round((time.perf_counter() - started) * 1000, 3),
            "body_size": len(body),
            "at": int(time.time() * 1000),
        },
    }
    # PDK: this request's state for the restore plugin and the log phase, and the mark the guard
    # checks. ctx.shared values must survive msgpack -> Lua -> msgpack: a UTF-8 JSON string.
    kong.ctx.shared.set(CTX_KEY, json.dumps(state, separators=(",", ":")))


def log_phase(kong: Any, monitor: Monitor) -> None:
    if not monitor.sampled():
        return  # monitoring off, or not this request: no PDK call at all
    # PDK: Kong's request id, route, service and both sides' counts, left by the restore plugin.
    raw = kong.ctx.shared.get(EVENT_KEY)
    if raw:
        _report_when_idle(monitor, lambda: _from_summary(raw))
        line = monitor.take_line()
        if line is not None:
            level, text = line
            # PDK: the publisher's news for Kong's log (a Redis error once it starts and then at
            # most every 30 s, or its counters every event_stats_interval_s), sampled requests only.
            (kong.log.warn if level == "warn" else kong.log.notice)(text)
        return
    # PDK: the restore plugin did not run: request id, route and service from Kong's serializer.
    serialized = kong.log.serialize()
    # PDK: and the masking counts from our own state.
    raw_state = kong.ctx.shared.get(CTX_KEY)
    if not raw_state:
        return  # aws-masker did not mask this request (it was refused): nothing to report
    _report_when_idle(
        monitor,
        lambda: (
            RequestInfo.from_serialized(json.loads(serialized)),
            json.loads(raw_state).get("masked") or {},
            None,
        ),
    )


Report = tuple[RequestInfo, Mapping[str, Any], Mapping[str, Any] | None]


def _report_when_idle(monitor: Monitor, read: Callable[[], Report]) -> None:
    """The request's events, built from what ``read`` returns and queued once this phase has
    answered Kong and the plugin server has no request waiting (pdkserver.when_idle): they never
    delay a request. A failure loses the events, never the request."""

    def report() -> None:
        try:
            monitor.report(*read())
        except Exception as exc:
            monitor.failed(exc)

    when_idle(report)


def _from_summary(raw: str | bytes) -> Report:
    """Request, masked and restored counts from the restore plugin's summary."""
    summary = json.loads(raw)
    request = RequestInfo.from_values(summary.get("request_id"), summary.get("route"), summary.get("service"))
    return request, summary.get("masked") or {}, summary.get("restored")
