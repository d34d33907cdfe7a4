"""Fuzz: catalogue samples in random encodings, through the real gateway and plugin server.

Each example is a Messages request built from the catalogue's own samples (``patterns.RULES``: text
that the engine masks, and the value it must mask in it), wrapped in one or more encodings a careless
or hostile client could use: escaped JSON (1-3 levels, ``\\/``), ``\\u`` escapes, an identifier split
across adjacent text blocks, duplicate keys, numbers and nesting that strict parsers refuse, account
IDs written as floats, base64 ``text/plain`` documents, exempt-looking shapes in a tool input,
compressed bodies, the query string and custom headers, form-urlencoded and UTF-16/32 bodies.

It goes to ``aws-masker gateway`` (which starts the real kong-pdk plugin server) in front of a
recording upstream. The promise checked for every example: either the gateway refuses the request
with a documented ``AWS_MASKER_<code>`` and the upstream sees nothing, or the upstream gets it and no
planted original appears, in any decoded form (tests/leaks.py), in what it recorded (request line,
headers, body), nor in any log line of the gateway or the plugin server.

Only samples the engine masks where they are planted are used (checked with the engine first), so a
finding is a real leak. Examples are derandomized (CI reproduces them);
``AWS_MASKER_FUZZ_EXAMPLES`` raises the count per family for longer runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import http.client
import json
import os
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import brotli
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from leaks import assert_no_leaks, find_leaks

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.patterns import RULES

from .stack import Stack, stub_config

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("AWS_MASKER_FUZZ_EXAMPLES", "6"))
MODEL = "claude-sonnet-5"
ROUTES = ("/v1/messages", "/claude-proxy/v1/messages", "/analyze-claude")
# The documented refusals (README "Failure behaviour", plugin/aws_masker/errors.py), and the codes
# issue #10 adds: 2006 refused binary document, 2007 unsupported content type, 2008 unknown
# Content-Encoding. A 4xx with any AWS_MASKER_ code is a refusal; a 5xx only with these.
REFUSAL_5XX = {503: {"2001", "2003", "1003"}}
CODE = re.compile(rb"AWS_MASKER_(\d{4})")


# -- the recording upstream ------------------------------------------------------------------------
@dataclass
class Seen:
    request_line: str
    headers: str
    body: bytes


@dataclass
class Recorder:
    """A loopback HTTP/1.1 server that records each request as it arrived and answers a Messages reply
    (for a request with ``X-Fuzz-Upstream: drop``, closes the connection without one; with ``slow``,
    answers after the slow route's read timeout)."""

    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                recorder.requests.append(Seen(self.requestline, str(self.headers), self._body()))
                how = self.headers.get("X-Fuzz-Upstream")
                if how == "drop":
                    self.close_connection = True  # no answer: the gateway has an upstream error
                    return
                if how == "slow":
                    time.sleep(1.0)  # past the slow route's read_timeout
                reply = json.dumps(
                    {
                        "id": "msg_fuzz",
                        "type": "message",
                        "role": "assistant",
                        "model": MODEL,
                        "content": [{"type": "text", "text": "ok"}],
                        "stop_reason": "end_turn",
                        "usage": {"input_tokens": 1, "output_tokens": 1},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                        if size == 0:
                            return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the samples -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    rule: str
    text: str
    value: str


@lru_cache(maxsize=1)
def engine() -> Masker:
    return Masker(MaskerConfig(token_secret="fuzz"))


def _request(messages: list[dict], **extra: object) -> dict:
    return {"model": MODEL, "max_tokens": 64, "messages": messages, **extra}


def _user(content: object) -> dict:
    return {"role": "user", "content": content}


def _tool_use(tool_input: object) -> dict:
    block = {"type": "tool_use", "id": "toolu_01", "name": "run", "input": tool_input}
    return {"role": "assistant", "content": [block]}


def masks_all(texts: list[str], values: list[str]) -> bool:
    """The engine masks every value when the texts stand as plain text, and as tool input strings."""
    masker = engine()
    forms = [
        _request([_user("\n".join(texts))]),
        _request([_tool_use({f"note{i}": t for i, t in enumerate(texts)})]),
    ]
    for doc in forms:
        masked, _ = mask_request(json.dumps(doc).encode(), masker)
        if find_leaks(values, {"masked": masked}):
            return False
    return True


@lru_cache(maxsize=1)
def samples() -> tuple[Sample, ...]:
    """Catalogue samples whose value the engine masks on its own, and that is distinctive enough that
    finding it is not chance (no bare English words, nothing shorter than 7 characters)."""
    out = []
    for rule in RULES:
        for text, value in rule.must_match:
            if len(value) < 7 or value.replace("-", "").isalpha():
                continue
            if masks_all([text], [value]):
                out.append(Sample(rule.name, text, value))
    return tuple(out)


@lru_cache(maxsize=1)
def header_samples() -> tuple[Sample, ...]:
    """The samples that can stand on one line of a header (and are masked there)."""
    return tuple(s for s in samples() if header_safe(s))


def header_safe(sample: Sample) -> bool:
    text = sample.text.strip()
    if not text.isprintable() or not text.isascii():
        return False
    masked, _ = engine().mask_text(text)
    return sample.value not in masked


# -- building a case -------------------------------------------------------------------------------
@dataclass
class Case:
    family: str
    originals: tuple[str, ...]
    body: bytes
    path: str = "/v1/messages"
    headers: list[tuple[str, str]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    raw: bytes | None = None
    """The whole request as sent on the wire, when it is not a well-formed HTTP request."""
    accept: tuple[int, ...] = ()
    """Statuses without an AWS_MASKER_ code that this case may get (an upstream error, a parser's 400)."""


def picked_samples(draw: st.DrawFn, pool: tuple[Sample, ...] | None = None, most: int = 3) -> list[Sample]:
    chosen = draw(
        st.lists(st.sampled_from(pool or samples()), min_size=1, max_size=most, unique_by=lambda s: s.value)
    )
    assume(masks_all([s.text for s in chosen], [s.value for s in chosen]))
    return chosen


def _escape_json_levels(draw: st.DrawFn, texts: list[str], steps: list[str]) -> str:
    levels = draw(st.integers(1, 3))
    slash = draw(st.booleans())
    inner: object = {f"field{i}": t for i, t in enumerate(texts)}
    text = json.dumps(inner)
    for _ in range(levels - 1):
        text = json.dumps({"message": text})
    if slash:
        text = text.replace("/", "\\/")  # valid JSON: "\/" is "/"
    steps.append(f"escaped-json levels={levels} slash={slash}")
    return text


def placement(draw: st.DrawFn, kind: str, chosen: list[Sample], steps: list[str]) -> dict:
    """A Messages request (as a document) that carries the chosen samples in the given way."""
    texts = [s.text for s in chosen]
    if kind == "plain":
        where = draw(st.sampled_from(["string", "blocks", "tool_input", "tool_result", "system", "metadata"]))
        steps.append(f"plain in {where}")
        joined = "\n".join(texts)
        if where == "string":
            return _request([_user(joined)])
        if where == "blocks":
            return _request([_user([{"type": "text", "text": t} for t in texts])])
        if where == "tool_input":
            return _request([_user("run it"), _tool_use({"command": joined})])
        if where == "system":
            return _request([_user("hello")], system=joined)
        if where == "metadata":
            return _request([_user("hello")], metadata={"user_id": joined})
        result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": joined}
        return _request([_user("run it"), _tool_use({"command": "x"}), _user([result])])
    if kind == "escaped_json":
        text = _escape_json_levels(draw, texts, steps)
        if draw(st.booleans()):
            steps.append("as text")
            return _request([_user(text)])
        steps.append("as tool_result")
        result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": text}
        return _request([_user("run it"), _tool_use({"command": "x"}), _user([result])])
    if kind == "split_blocks":
        first = chosen[0]
        at = first.text.index(first.value)
        cuts = sorted(
            draw(
                st.lists(st.integers(at + 1, at + len(first.value) - 1), min_size=1, max_size=2, unique=True)
            )
        )
        pieces = [first.text[a:b] for a, b in zip([0, *cuts], [*cuts, len(first.text)], strict=True)]
        steps.append(f"split {first.value!r} into {pieces!r}")
        blocks = [{"type": "text", "text": p} for p in pieces]
        blocks += [{"type": "text", "text": s.text} for s in chosen[1:]]
        return _request([_user(blocks)])
    if kind == "base64_document":
        data = base64.b64encode("\n".join(texts).encode()).decode()
        steps.append("base64 text/plain document")
        doc = {"type": "document", "source": {"type": "base64", "media_type": "text/plain", "data": data}}
        return _request([_user([doc, {"type": "text", "text": "Summarise the attached file."}])])
    if kind == "base64_in_text":
        joined = "\n".join(texts)
        coding = draw(st.sampled_from(["standard", "urlsafe", "wrapped", "gzip", "glued"]))
        if coding == "urlsafe":
            data = base64.urlsafe_b64encode(joined.encode()).decode().rstrip("=")
        elif coding == "gzip":
            data = base64.b64encode(gzip.compress(joined.encode())).decode()
        elif coding == "wrapped":
            data = base64.encodebytes(joined.encode()).decode()
        else:
            data = base64.b64encode(joined.encode()).decode()
        text = f"decode{data}" if coding == "glued" else f"Decode this base64:\n{data}\n"
        where = draw(st.sampled_from(["text", "tool_result", "tool_input"]))
        steps.append(f"base64 in text ({coding}) in {where}")
        if where == "text":
            return _request([_user(text)])
        if where == "tool_input":
            return _request([_user("run it"), _tool_use({"stdin": text})])
        result = {"type": "tool_result", "tool_use_id": "toolu_01", "content": text}
        return _request([_user("run it"), _tool_use({"command": "x"}), _user([result])])
    if kind == "exempt_shape_in_tool_input":
        shape = draw(st.sampled_from(["image_source", "thinking_signature", "redacted_thinking", "nested"]))
        steps.append(f"exempt-looking {shape} in tool_use.input")
        joined = "\n".join(texts)
        image = {"type": "base64", "media_type": "image/png", "data": joined}
        tool_input: object = {
            "image_source": {"source": image},
            "thinking_signature": {"content": [{"type": "thinking", "thinking": "x", "signature": joined}]},
            "redacted_thinking": {"content": [{"type": "redacted_thinking", "data": joined}]},
            "nested": {"items": [{"type": "image", "source": image}]},
        }[shape]
        return _request([_user("run it"), _tool_use(tool_input)])
    if kind == "exempt_position_not_base64":
        joined = "\n".join(texts)
        assume(not _is_base64(joined))
        steps.append("image source at its real position with data that is not base64")
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": joined}}
        return _request([_user([image, {"type": "text", "text": "What is in this image?"}])])
    raise AssertionError(kind)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_ESCAPE_TOKEN = re.compile(r"\\u[0-9a-fA-F]{4}|\\.|.", re.S)


def u_escape(draw: st.DrawFn, body: str, chosen: list[Sample], steps: list[str]) -> str:
    """``\\uXXXX`` for some characters of each planted sample where it stands in the JSON text (its key
    context included), or of its value."""
    rng = random.Random(draw(st.integers(0, 2**16)))
    share = draw(st.sampled_from([1.0, 0.5, 0.2]))

    def escape(segment: str) -> str:
        out = []
        for tok in _ESCAPE_TOKEN.findall(segment):
            if len(tok) == 1 and (rng.random() < share):
                out.append(f"\\u{ord(tok):04{rng.choice('xX')}}")
            else:
                out.append(tok)
        return "".join(out)

    for s in chosen:
        encoded = json.dumps(s.text, ensure_ascii=False)[1:-1]
        segment = encoded if encoded in body else s.value
        body = body.replace(segment, escape(segment))
    steps.append(f"u-escapes share={share}")
    return body


ODD = {
    "1e400": "1e400",
    "-1E+400": "-1E+400",
    "5001-digit int": "1" + "0" * 5000,
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "nesting 1500": "[" * 1500 + "]" * 1500,
}


def odd_json(draw: st.DrawFn, body: str, steps: list[str]) -> str:
    odd = draw(st.sampled_from([*ODD, "double BOM"]))
    steps.append(f"odd: {odd}")
    if odd == "double BOM":
        return "\ufeff\ufeff" + body
    return body.replace("{", '{"x_extra":' + ODD[odd] + ",", 1)


def duplicate_keys(draw: st.DrawFn, doc: dict, steps: list[str]) -> Callable[[str], str]:
    """Mark where a second, harmless copy of a key goes after the planted one (a parser that keeps the
    last copy sees only "hello"); the returned function writes the copies into the JSON text."""
    where = draw(st.sampled_from(["top-level messages", "message content"]))
    steps.append(f"duplicate {where}, planted copy first")
    if where == "top-level messages":
        doc["__dup__"] = 0
        copy = '"messages":[{"role":"user","content":"hello"}]'
    else:
        for message in doc["messages"]:
            message["__dup__"] = 0
        copy = '"content":"hello"'
    return lambda body: body.replace('"__dup__":0', copy)


def transport(draw: st.DrawFn, kind: str, body: bytes, case: Case) -> bytes:
    if kind == "compressed":
        coding = draw(st.sampled_from(["gzip", "deflate", "deflate-stored", "br"]))
        case.steps.append(f"Content-Encoding {coding}")
        header = "deflate" if coding.startswith("deflate") else coding
        case.headers.append(("Content-Encoding", header))
        if coding == "gzip":
            return gzip.compress(body)
        if coding == "br":
            return brotli.compress(body)
        return zlib.compress(body, 0 if coding == "deflate-stored" else 6)
    if kind == "utf16":
        codec = draw(st.sampled_from(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16"]))
        charset = draw(st.booleans())
        case.steps.append(f"body in {codec} charset={charset}")
        if charset:
            case.headers[0] = ("Content-Type", f"application/json; charset={codec}")
        return body.decode("utf-8").encode(codec)
    raise AssertionError(kind)


PLACEMENTS = (
    "plain",
    "escaped_json",
    "split_blocks",
    "base64_document",
    "base64_in_text",
    "exempt_shape_in_tool_input",
    "exempt_position_not_base64",
)
FAMILIES = (
    *PLACEMENTS,
    "unicode_escape",
    "odd_numbers",
    "duplicate_keys",
    "account_float",
    "compressed",
    "utf16",
    "form_urlencoded",
    "query",
    "header",
    "upstream_error",
    "malformed_http",
    "mixed",
)


@st.composite
def cases(draw: st.DrawFn, family: str) -> Case:
    case = Case(family, (), b"", headers=[("Content-Type", "application/json")])
    case.headers += [("anthropic-version", "2023-06-01"), ("x-api-key", "test-key")]
    if family == "account_float":
        return _account_float(draw, case)
    if family in ("query", "header"):
        return _channel(draw, family, case)
    if family == "upstream_error":
        how = draw(st.sampled_from(["drop", "slow", "dead"]))
        _channel(draw, draw(st.sampled_from(["query", "header"])), case)
        if how == "dead":
            case.path = case.path.replace(case.path.split("?")[0], "/dead/v1/messages", 1)
        else:
            case.path = case.path.replace(case.path.split("?")[0], f"/{how}/v1/messages", 1)
            case.headers.append(("X-Fuzz-Upstream", how))
        case.steps.append(f"upstream error: {how}")
        case.accept = (502, 504)
        return case
    if family == "malformed_http":
        return _malformed(draw, case)
    if family == "form_urlencoded":
        chosen = picked_samples(draw)
        case.originals = tuple(s.value for s in chosen)
        joined = "\n".join(s.text for s in chosen)
        fields = {"model": MODEL, "max_tokens": "64"}
        if draw(st.booleans()):
            fields["prompt"] = joined
        else:
            fields["messages"] = json.dumps([_user(joined)])
        case.headers[0] = ("Content-Type", "application/x-www-form-urlencoded")
        case.steps.append(f"form-urlencoded fields={sorted(fields)}")
        case.body = urlencode(fields).encode()
        return case

    chosen = picked_samples(draw)
    case.originals = tuple(s.value for s in chosen)
    if family in PLACEMENTS:
        kind = family
    elif family == "mixed":
        kind = draw(st.sampled_from(PLACEMENTS))
    else:
        kind = "plain"
    doc = placement(draw, kind, chosen, case.steps)
    mods = {
        # the text fallback must see through \u escapes as well as the JSON path does
        "unicode_escape": family == "unicode_escape"
        or (family in ("mixed", "odd_numbers") and draw(st.booleans())),
        "duplicate_keys": family == "duplicate_keys" or (family == "mixed" and draw(st.booleans())),
        "odd_numbers": family == "odd_numbers" or (family == "mixed" and draw(st.booleans())),
    }
    write_copies = duplicate_keys(draw, doc, case.steps) if mods["duplicate_keys"] else None
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if write_copies is not None:
        body = write_copies(body)
    if mods["unicode_escape"]:
        body = u_escape(draw, body, chosen, case.steps)
    if mods["odd_numbers"]:
        body = odd_json(draw, body, case.steps)
    raw = body.encode("utf-8")
    if family in ("compressed", "utf16"):
        raw = transport(draw, family, raw, case)
    elif family == "mixed":
        how = draw(st.sampled_from(["none", "none", "compressed", "utf16"]))
        if how != "none":
            raw = transport(draw, how, raw, case)
        if draw(st.booleans()):
            _channel(draw, draw(st.sampled_from(["query", "header"])), case, keep_body=True)
    case.body = raw
    return case


def _account_float(draw: st.DrawFn, case: Case) -> Case:
    account = draw(st.integers(10**11, 10**12 - 1))
    key = draw(st.sampled_from(["OwnerId", "AccountId", "Account", "SourceAccount"]))
    written = draw(
        st.sampled_from(
            [f"{account}.0", f"{account / 1e11:.11f}e11", f"{account / 1e11:.11f}E+11", f"{account}.000e0"]
        )
    )
    marker = "__NUMBER__"
    doc = _request([_user("which account is this?"), _tool_use({"Reservations": [{key: marker}]})])
    template = json.dumps(doc, separators=(",", ":"))
    as_int = template.replace(json.dumps(marker), str(account)).encode()
    masked, _ = mask_request(as_int, engine())
    assume(str(account) not in masked.decode())  # the integer form is masked under this key
    case.originals = (str(account),)
    case.steps.append(f"{key}: {written}")
    case.body = template.replace(json.dumps(marker), written).encode()
    return case


def _channel(draw: st.DrawFn, family: str, case: Case, keep_body: bool = False) -> Case:
    if family == "query":
        chosen = picked_samples(draw, most=2)
        route = draw(st.sampled_from(ROUTES))
        encode = draw(st.sampled_from([quote, quote_plus]))
        params = "&".join(f"note{i}={encode(s.text, safe='')}" for i, s in enumerate(chosen))
        case.path = f"{route}?{params}"
        case.steps.append(f"query on {route} via {encode.__name__}")
    else:
        pool = header_samples()
        chosen = picked_samples(draw, pool, most=2)
        names = ["x-note", "x-debug-context", "anthropic-metadata"]
        for s in chosen:
            name = draw(st.sampled_from(names))
            case.headers.append((name, s.text.strip()))
            case.steps.append(f"header {name}")
    case.originals += tuple(s.value for s in chosen)
    if not keep_body:
        case.body = json.dumps(_request([_user("hello")])).encode()
    return case


def _malformed(draw: st.DrawFn, case: Case) -> Case:
    """A request the gateway's HTTP parser rejects, with a sample in the offending line."""
    pool = header_samples()
    (sample,) = picked_samples(draw, pool, most=1)
    text = sample.text.strip()
    how = draw(st.sampled_from(["header line without a colon", "space in the target", "bad header name"]))
    target, extra = "/v1/messages", ""
    if how == "header line without a colon":
        extra = f"{text}\r\n"
    elif how == "space in the target":
        target = f"/v1/messages?note={text}"
    else:
        extra = f"X-Note {text}: 1\r\n"
    body = json.dumps(_request([_user("hello")])).encode()
    head = (
        f"POST {target} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    case.originals = (sample.value,)
    case.steps.append(how)
    case.raw = head.encode("latin-1") + body
    case.accept = (400, 0)  # 0: the connection closed without an answer
    return case


# -- running a case --------------------------------------------------------------------------------
class Fuzz:
    def __init__(self, stack: Stack, recorder: Recorder) -> None:
        self.stack = stack
        self.recorder = recorder

    def send(self, case: Case) -> tuple[int, dict[str, str], bytes]:
        if case.raw is not None:
            return self.send_raw(case.raw)
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=60)
        try:
            conn.putrequest("POST", case.path, skip_accept_encoding=True)
            for name, value in case.headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(case.body)))
            conn.endheaders(case.body)
            response = conn.getresponse()
            return response.status, dict(response.headers), response.read()
        finally:
            conn.close()

    def send_raw(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Bytes as they are; (0, {}, b"") when the gateway closes the connection without an answer."""
        with socket.create_connection(("127.0.0.1", self.stack.port), timeout=60) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        if not data:
            return 0, {}, b""
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split()[1]), headers, body

    def check(self, case: Case) -> None:
        seen_before, lines_before = len(self.recorder.requests), len(self.stack.gateway.lines)
        status, headers, body = self.send(case)
        request_id = headers.get("X-Kong-Request-Id")
        if request_id:
            # the access line ends the request's log; without one, the lines so far are searched
            with contextlib.suppress(AssertionError):
                self.stack.log_record(request_id, timeout=10)
        else:
            time.sleep(0.2)
        seen = self.recorder.requests[seen_before:]
        blobs: dict[str, bytes | str] = {"logs": "\n".join(self.stack.gateway.lines[lines_before:])}
        code = CODE.search(body)
        note(f"status={status} code={code and code.group(1)!r} upstream requests={len(seen)}")
        if status == 200 or (status in case.accept and code is None):
            assert len(seen) <= 1, f"the upstream saw {len(seen)} requests for one request"
            assert seen or status != 200, "answered 200 without reaching the upstream"
            for i, request in enumerate(seen):
                blobs[f"upstream request line {i}"] = request.request_line
                blobs[f"upstream headers {i}"] = request.headers
                blobs[f"upstream body {i}"] = request.body
        else:
            refused = code is not None and (
                400 <= status < 500 or code.group(1).decode() in REFUSAL_5XX.get(status, set())
            )
            assert refused, f"not a documented refusal: {status} {body[:300]!r}"
            assert seen == [], "a refused request reached the upstream"
        blobs["client response body"] = body if status != 200 else b""
        assert_no_leaks(case.originals, blobs, case.family)


def _error_routes(upstream: str) -> str:
    """Routes whose upstream fails: one that drops the connection, one that times out, one that is dead."""
    return "".join(
        f"\n  - name: {name}\n    url: {url}\n    retries: 0\n{extra}"
        f'    routes:\n      - name: {name}\n        paths: ["/{name}/v1/messages"]\n'
        for name, url, extra in (
            ("drop", f"{upstream}/v1/messages", ""),
            ("slow", f"{upstream}/v1/messages", "    read_timeout: 300\n"),
            ("dead", "http://127.0.0.1:1/v1/messages", ""),
        )
    )


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    recorder = Recorder()
    try:
        stack = Stack(
            Path(tmp_path_factory.mktemp("fuzz")),
            config_factory=lambda _stub_url: stub_config(recorder.url, _error_routes(recorder.url)),
            log_level="debug",
        )
        try:
            yield Fuzz(stack, recorder)
        finally:
            stack.stop()
    finally:
        recorder.stop()


def _run(fuzz: Fuzz, family: str, examples: int) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=cases(family))
    def run(case: Case) -> None:
        fuzz.check(case)

    run()


def test_samples_are_plantable() -> None:
    """The fuzz plants only samples the engine masks on its own: enough of them, of every category."""
    pool = samples()
    assert len(pool) >= 60
    assert {"account_id", "ec2_resource_id", "secret_access_key", "arn", "rds_identifier_key"} <= {
        s.rule for s in pool
    }
    assert len(header_samples()) >= 30


@pytest.mark.timeout(600)
@pytest.mark.parametrize("family", FAMILIES)
def test_no_identifier_leaves_in_any_encoding(fuzz: Fuzz, family: str) -> None:
    _run(fuzz, family, EXAMPLES * 5 if family == "mixed" else EXAMPLES)
