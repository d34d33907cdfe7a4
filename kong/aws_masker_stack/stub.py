"""``aws-masker stub``: a Claude stand-in upstream for ``make run``, end-to-end and load tests.

    aws-masker stub [--listen HOST:PORT]      # default 127.0.0.1:8081

It speaks just enough of the Anthropic Messages API for the gateway, the official SDK and Locust:

``POST /v1/messages``
    Minimal validation like the real API (JSON object with ``model`` str, ``max_tokens`` int >= 1,
    non-empty ``messages`` list), else 400 with Anthropic's error shape. No API key is required;
    the presence (never the value) of ``x-api-key``/``authorization`` and ``anthropic-version`` is
    counted. The answer is a Messages response (or, with ``"stream": true``, Anthropic's exact SSE
    event sequence) whose text quotes every masked token (``TOKEN_RE`` match) found in any string of
    the request, deduplicated, in order of first appearance. In a stream the text is split into
    ``text_delta`` events that deliberately cut tokens in the middle (at varying positions), so the
    gateway's restore of split tokens is exercised; the deltas concatenate to exactly the text.

    Echo mode: with ``"metadata": {"user_id": "echo"}`` the text is instead the concatenation of
    the ``text`` of the last ``user`` message (a string content, or its ``text`` blocks), so a test
    can see exactly what the upstream received.

    Pacing: a request header ``x-stub-event-delay-ms: N`` (0 to 10000) makes a stream wait N ms
    before each event after the first, like a model generating; ``stream_events_sent`` in
    ``/stats`` counts the events written so far, so a client can tell a stream that reaches it as
    it is generated from one that was held back until its end.

``POST /test/large-response[?mb=N]``
    A chunked (no Content-Length) JSON Messages response of about N MiB (default 10, at most 50)
    whose text repeats the tokens found in the request many times (none if the request had none).

``GET /stats`` / ``POST /stats/reset``
    Counters (see :class:`StubState`). ``leaks`` counts raw AWS identifiers received: every string of
    the request body (the whole text if it is not JSON) is scanned with the default masking config
    and each identifier it would mask counts once per occurrence. The opaque fields the gateway
    deliberately leaves alone (top-level ``model``, base64 ``data``, thinking ``signature``,
    redacted-thinking ``data``) are not scanned.

``GET /health``
    ``{"status": "ok"}``.

``GET /last-request``
    ``{"user_text": ..., "leaks": n}``: the last user message of the last valid request exactly as the
    upstream received it, for ``aws-masker up`` to show next to what the client got back.

Security: bodies and identifiers are never logged, and nothing returns them except echo mode (which
returns what the caller sent, by design). The per-request log line (stderr) holds the method, the
matched route (never a client-chosen unknown path), the status and the sizes; error messages name
the offending field, never its content.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.tokens import TOKEN_RE
from aws_masker_gateway.address import DEFAULT_HOST, parse_listen
from aws_masker_gateway.app import run_site, shutdown_site

log = logging.getLogger(__name__)

DEFAULT_PORT = 8081
ECHO_USER_ID = "echo"
MAX_REQUEST_BYTES = 64 * 1024 * 1024
LARGE_DEFAULT_MB = 10.0
LARGE_MAX_MB = 50.0
LARGE_CHUNK_BYTES = 256 * 1024
MIB = 1024 * 1024

# Fields that are opaque by contract and that the gateway never masks (see aws_masker.jsonbody).
_OPAQUE_BY_TYPE: dict[str, frozenset[str]] = {
    "base64": frozenset({"data"}),
    "thinking": frozenset({"signature"}),
    "redacted_thinking": frozenset({"data"}),
}
_TOP_LEVEL_OPAQUE = frozenset({"model"})
_WORD_GAP = re.compile(r" ")


# --------------------------------------------------------------------------------------------- state


@dataclass
class StubState:
    """What the stub has seen since start (or the last reset).

    Only ``last_user_text`` holds request content: exactly what the upstream was sent (so masked,
    unless the gateway leaked, which ``leaks`` would then count). ``aws-masker up`` shows it.
    """

    requests: int = 0
    """Requests to the API endpoints (/v1/messages, /test/*), valid or not."""
    messages: int = 0
    """Valid /v1/messages requests answered (streamed or not)."""
    streams: int = 0
    """Of those, the streamed ones."""
    leaks: int = 0
    leaks_by_category: Counter[str] = field(default_factory=Counter)
    last_request_leaks: int = 0
    with_api_key: int = 0
    with_anthropic_version: int = 0
    tokens_seen: int = 0
    """Masked-token occurrences received (TOKEN_RE matches)."""
    stream_events_sent: int = 0
    """SSE events written to clients (all streams)."""
    last_user_text: str = ""
    """The text of the last user message of the last valid /v1/messages request."""

    def reset(self) -> None:
        fresh = StubState()
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "messages": self.messages,
            "streams": self.streams,
            "leaks": self.leaks,
            "leaks_by_category": dict(sorted(self.leaks_by_category.items())),
            "last_request_leaks": self.last_request_leaks,
            "with_api_key": self.with_api_key,
            "with_anthropic_version": self.with_anthropic_version,
            "tokens_seen": self.tokens_seen,
            "stream_events_sent": self.stream_events_sent,
        }


STATE_KEY = web.AppKey("stub_state", StubState)
MASKER_KEY = web.AppKey("stub_masker", Masker)


def get_state(app: web.Application) -> StubState:
    return app[STATE_KEY]


# ------------------------------------------------------------------------------------ request reading


@dataclass
class Incoming:
    """One decoded API request: the parsed document (None if not JSON) and its scannable strings."""

    doc: Any
    strings: list[str]
    size: int


def iter_strings(doc: Any, skip_opaque: bool = False) -> Iterator[str]:
    """Every string of a JSON document (keys and values) in document order."""
    stack: list[tuple[Any, bool]] = [(doc, True)]
    while stack:
        node, top = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            skip = _opaque_keys(node, top) if skip_opaque else frozenset()
            children: list[tuple[Any, bool]] = []
            for key, value in node.items():
                children.append((key, False))
                if key not in skip:
                    children.append((value, False))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend((item, False) for item in reversed(node))


def _opaque_keys(node: dict[str, Any], top: bool) -> frozenset[str]:
    kind = node.get("type")
    skip = _OPAQUE_BY_TYPE.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
    return skip | _TOP_LEVEL_OPAQUE if top else skip


async def read_incoming(request: web.Request) -> Incoming:
    raw = await request.read()
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text) if raw else None
    except (ValueError, RecursionError):
        doc = None
    if doc is None:
        return Incoming(None, [text] if text else [], len(raw))
    return Incoming(doc, list(iter_strings(doc, skip_opaque=True)), len(raw))


def record_request(state: StubState, masker: Masker, request: web.Request, incoming: Incoming) -> None:
    """Count the request, its headers' presence, its masked tokens and its raw identifiers (leaks)."""
    state.requests += 1
    headers = request.headers
    if "x-api-key" in headers or "authorization" in headers:
        state.with_api_key += 1
    if "anthropic-version" in headers:
        state.with_anthropic_version += 1
    leaks: Counter[str] = Counter()
    for text in incoming.strings:
        state.tokens_seen += sum(1 for _ in TOKEN_RE.finditer(text))
        leaks.update(found.category for found in masker.find(text) if found.mask)
    total = sum(leaks.values())
    state.leaks += total
    state.leaks_by_category.update(leaks)
    state.last_request_leaks = total


def tokens_in(doc: Any, fallback: list[str]) -> list[str]:
    """Masked tokens in any string of the request, deduplicated, in order of first appearance."""
    strings = iter_strings(doc) if doc is not None else iter(fallback)
    seen: dict[str, None] = {}
    for text in strings:
        for match in TOKEN_RE.finditer(text):
            seen.setdefault(match.group(0), None)
    return list(seen)


# ------------------------------------------------------------------------------------------ validation


class InvalidRequest(Exception):
    """A 400; ``message`` names the offending field only, never its content."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def validate(doc: Any) -> dict[str, Any]:
    if doc is None:
        raise InvalidRequest("request body must be valid JSON")
    if not isinstance(doc, dict):
        raise InvalidRequest("request body must be a JSON object")
    if not isinstance(doc.get("model"), str):
        raise InvalidRequest("model: field required (string)")
    max_tokens = doc.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: field required (integer >= 1)")
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: field required (non-empty list)")
    return doc


def error_body(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 404: "not_found_error", 413: "request_too_large"}
    kind = kinds.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status, dumps=compact)


def compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ----------------------------------------------------------------------------------------- the answer


def answer_text(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") == ECHO_USER_ID:
        return echo_text(doc["messages"])
    return quote_tokens(tokens_in(doc, []))


def echo_text(messages: list[Any]) -> str:
    """All text content of the last user message, concatenated."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(_block_text(block) for block in content)
            return ""
    return ""


def _block_text(block: Any) -> str:
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return block["text"]
    return ""


def quote_tokens(tokens: list[str]) -> str:
    if not tokens:
        return "I looked at your request and found no masked identifiers."
    listed = tokens[0] if len(tokens) == 1 else ", ".join(tokens[:-1]) + " and " + tokens[-1]
    verb = "it looks" if len(tokens) == 1 else "they look"
    return f"I looked at {listed}: {verb} fine."


def split_deltas(text: str, word_every: int = 3) -> list[str]:
    """Split ``text`` into delta pieces that cut every token, at positions that vary per token.

    Token i is cut at: its middle (i % 4 == 0), right after ``AWS_`` (1), before its last hex digit
    (2), or at a third and two thirds (3, three pieces). Outside tokens the text is cut after every
    ``word_every``-th space. ``"".join(split_deltas(t)) == t`` always.
    """
    cuts: set[int] = set()
    spans: list[tuple[int, int]] = []
    for i, match in enumerate(TOKEN_RE.finditer(text)):
        start, end = match.span()
        spans.append((start, end))
        cuts.update(start + offset for offset in _token_cuts(i, end - start))
    inside = {pos for start, end in spans for pos in range(start + 1, end)}
    spaces = [m.end() for m in _WORD_GAP.finditer(text)]
    cuts.update(pos for n, pos in enumerate(spaces, 1) if n % word_every == 0 and pos not in inside)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _token_cuts(i: int, length: int) -> list[int]:
    variant = i % 4
    if variant == 0:
        return [length // 2]
    if variant == 1:
        return [len("AWS_")]
    if variant == 2:
        return [length - 1]
    return [length // 3, 2 * length // 3]


def output_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def input_tokens(incoming: Incoming) -> int:
    return max(1, incoming.size // 4)


def message_id() -> str:
    return f"msg_stub_{secrets.token_hex(12)}"


def message_body(doc: dict[str, Any], text: str, incoming: Incoming) -> dict[str, Any]:
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": doc["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens(incoming), "output_tokens": output_tokens(text)},
    }


def sse_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {compact(data)}\n\n".encode()


def stream_events(doc: dict[str, Any], text: str, incoming: Incoming) -> list[bytes]:
    """Anthropic's exact event sequence for a one-text-block answer."""
    start = {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": doc["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens(incoming), "output_tokens": 1},
    }
    events = [
        sse_event("message_start", {"type": "message_start", "message": start}),
        sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        sse_event("ping", {"type": "ping"}),
    ]
    events.extend(
        sse_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
        )
        for piece in split_deltas(text)
    )
    events.append(sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens(text)},
            },
        )
    )
    events.append(sse_event("message_stop", {"type": "message_stop"}))
    return events


# --------------------------------------------------------------------------------------------- handlers


async def handle_messages(request: web.Request) -> web.StreamResponse:
    state, incoming = await _take(request)
    try:
        doc = validate(incoming.doc)
    except InvalidRequest as exc:
        return error_response(400, exc.message)
    text = answer_text(doc)
    state.messages += 1
    state.last_user_text = echo_text(doc["messages"])
    request_id = {"request-id": f"req_stub_{secrets.token_hex(12)}"}
    if doc.get("stream") is not True:
        return web.json_response(message_body(doc, text, incoming), dumps=compact, headers=request_id)
    try:
        delay = event_delay(request.headers.get("x-stub-event-delay-ms"))
    except InvalidRequest as exc:
        return error_response(400, exc.message)
    state.streams += 1
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **request_id}

    def sent() -> None:
        state.stream_events_sent += 1

    return await _chunked(request, headers, stream_events(doc, text, incoming), delay, sent)


def event_delay(raw: str | None) -> float:
    if raw is None:
        return 0.0
    if not raw.isdigit() or int(raw) > 10_000:
        raise InvalidRequest("x-stub-event-delay-ms: must be an integer from 0 to 10000")
    return int(raw) / 1000


async def _chunked(
    request: web.Request,
    headers: dict[str, str],
    chunks: Iterable[bytes],
    delay: float = 0.0,
    on_chunk: Callable[[], None] | None = None,
) -> web.StreamResponse:
    """A 200 response sent with chunked transfer encoding, one write per chunk (``delay`` seconds
    between writes)."""
    response = web.StreamResponse(status=200, headers=headers)
    response.enable_chunked_encoding()
    await response.prepare(request)
    for n, chunk in enumerate(chunks):
        if n and delay:
            await asyncio.sleep(delay)
        await response.write(chunk)
        if on_chunk is not None:
            on_chunk()
    await response.write_eof()
    return response


async def handle_large_response(request: web.Request) -> web.StreamResponse:
    _state, incoming = await _take(request)
    try:
        size = large_size(request.query.get("mb"))
    except InvalidRequest as exc:
        return error_response(400, exc.message)
    tokens = tokens_in(incoming.doc, incoming.strings)
    model = "claude-stub"
    if isinstance(incoming.doc, dict) and isinstance(incoming.doc.get("model"), str):
        model = incoming.doc["model"]
    return await _chunked(
        request, {"Content-Type": "application/json"}, large_body_chunks(model, tokens, size)
    )


def large_size(raw: str | None) -> int:
    if raw is None:
        return int(LARGE_DEFAULT_MB * MIB)
    try:
        mb = float(raw)
    except ValueError:
        raise InvalidRequest("mb: must be a number") from None
    if not 0 < mb <= LARGE_MAX_MB:
        raise InvalidRequest(f"mb: must be > 0 and <= {LARGE_MAX_MB:g}")
    return int(mb * MIB)


def large_body_chunks(model: str, tokens: list[str], size: int) -> Iterator[bytes]:
    """A Messages JSON document of at least ``size`` bytes, in ``LARGE_CHUNK_BYTES`` pieces."""
    opening = compact({"id": message_id(), "type": "message", "role": "assistant", "model": model})
    head = (opening[:-1] + ',"content":[{"type":"text","text":"').encode()
    if tokens:
        unit = " ".join(f"Line {{n}}: {token} is referenced here." for token in tokens) + "\\n"
    else:
        unit = "Line {n}: nothing to restore in this line.\\n"
    text_bytes = max(0, size - len(head))
    written = 0
    buffer = bytearray(head)
    n = 0
    while written < text_bytes:
        piece = unit.replace("{n}", str(n)).encode()
        buffer += piece
        written += len(piece)
        n += 1
        if len(buffer) >= LARGE_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    tail = {
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": max(1, written // 4)},
    }
    buffer += b'"}],' + compact(tail)[1:].encode()
    yield bytes(buffer)


async def _take(request: web.Request) -> tuple[StubState, Incoming]:
    """Read and record an API request (before any validation: a leak is a leak)."""
    state = request.app[STATE_KEY]
    incoming = await read_incoming(request)
    record_request(state, request.app[MASKER_KEY], request, incoming)
    return state, incoming


async def handle_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot(), dumps=compact)


async def handle_stats_reset(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.reset()
    return web.json_response(state.snapshot(), dumps=compact)


async def handle_last_request(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    body = {"user_text": state.last_user_text, "leaks": state.last_request_leaks}
    return web.json_response(body, dumps=compact)


async def handle_health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, dumps=compact)


# ------------------------------------------------------------------------------------------ middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, route, status, sizes. Error pages get Anthropic's error shape."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = error_response(exc.status, exc.reason)
    body = response.body if isinstance(response, web.Response) else None
    sent = len(body) if isinstance(body, bytes) else response.body_length
    log.info(
        "claude stub: %s %s %d req=%dB resp=%dB",
        request.method,
        _route(request),
        response.status,
        request.content_length or 0,
        sent,
    )
    return response


def _route(request: web.Request) -> str:
    """The matched route's path; a client-chosen unknown path is never logged (it may hold an id)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(unmatched path)"


def build_app(state: StubState | None = None) -> web.Application:
    app = web.Application(middlewares=[access_log], client_max_size=MAX_REQUEST_BYTES)
    app[STATE_KEY] = state if state is not None else StubState()
    app[MASKER_KEY] = Masker(MaskerConfig(token_secret="stub"))
    app.router.add_post("/v1/messages", handle_messages)
    app.router.add_post("/test/large-response", handle_large_response)
    app.router.add_get("/stats", handle_stats)
    app.router.add_post("/stats/reset", handle_stats_reset)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/last-request", handle_last_request)
    return app


# ------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-masker stub",
        description="Run a Claude Messages API stand-in that counts leaked AWS identifiers.",
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=(DEFAULT_HOST, DEFAULT_PORT),
        help=f"HOST:PORT (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0 picks a free one)",
    )
    return parser


async def serve(host: str, port: int, app: web.Application | None = None) -> int:
    """Serve until SIGINT/SIGTERM; print the ready line once listening."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        runner, bound = await run_site(app or build_app(), host, port)
    except OSError as exc:
        _remove_signal_handlers(loop)
        print(f"aws-masker stub: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        shown = f"[{host}]" if ":" in host else host
        print(f"claude stub listening on http://{shown}:{bound}", flush=True)
        await stop.wait()
        return 0
    finally:
        _remove_signal_handlers(loop)
        await shutdown_site(runner)


def _remove_signal_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def stub_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging()
    host, port = args.listen
    return asyncio.run(serve(host, port))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(stub_main())
