"""aws-masker-restore (kong/plugins/aws-masker-restore/) under a real nginx with lua-nginx-module.

The same Lua files Kong loads run in nginx's LuaJIT, called as Kong calls them (handler:header_filter
and handler:body_filter with ngx.arg, on a proxy_buffering-off location, like a route with
response_buffering: false), behind an upstream whose every write the test controls. Every body the
client gets is compared byte for byte with the Python reference (aws_masker.body), fed exactly the
chunks nginx handed the body filter; and, unless the restore had to give up (max_held_bytes), with
the reference's result for the whole body.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nginx_harness import Nginx, Reply, Result, state_json
from test_restore import PROMPT, TOKEN_POOL, model_text, sse_streams, stream, token_maps
from test_restore import event as event_bytes

from aws_masker.body import response_restorer, restore_body
from aws_masker.engine import Masker
from aws_masker.restore import StreamRestorer
from aws_masker.sse import SSERestorer
from aws_masker.tokens import KIND_CATEGORIES, token_for

SSE = "text/event-stream; charset=utf-8"
FOREIGN = [*TOKEN_POOL, "AWS_EC2_ffffffffffff"]
LOG_PROBLEMS = ("[error]", "[crit]", "[alert]", "[emerg]")


@pytest.fixture(autouse=True)
def allowed_log_errors(nginx: Nginx) -> Iterator[list[str]]:
    """nginx logs no error while a test runs (a Lua error in a filter phase is only logged), except
    lines containing one of the strings the test adds to this list."""
    allowed: list[str] = []
    start = nginx.error_log.stat().st_size if nginx.error_log.exists() else 0
    yield allowed
    with open(nginx.error_log, "rb") as log:
        log.seek(start)
        new = log.read().decode(errors="replace")
    problems = [
        line
        for line in new.splitlines()
        if any(p in line for p in LOG_PROBLEMS) and not any(a in line for a in allowed)
    ]
    assert not problems, "\n".join(problems)


def check(
    result: Result,
    body: bytes,
    tokens: Mapping[str, str],
    content_type: str,
    max_held: int = 1 << 20,
    complete: bool = True,
) -> StreamRestorer | SSERestorer:
    """The client got exactly what the Python reference gives for the chunks nginx handed the body
    filter (call by call), and for the whole body unless the restore passed; the counts agree.
    ``complete=False``: the body never ended (no call carries eof)."""
    calls = result.calls
    assert calls and not any(eof for _, eof, _ in calls[:-1])
    assert calls[-1][1] is complete and result.truncated is not complete
    assert sum(n for n, _, _ in calls) == len(body)  # every byte went through the filter
    py = response_restorer(tokens, KIND_CATEGORIES, content_type, max_held)
    expected, pos = b"", 0
    for received, eof, sent in calls:
        out = py.feed(body[pos : pos + received])
        pos += received
        if eof:
            out += py.finish()
        assert sent == len(out)
        expected += out
    assert result.body == expected
    if complete and not py.passed:
        assert result.body == restore_body(body, tokens, content_type, max_held)
    restored = result.aws_masker["restored"]
    assert restored["count"] == sum(py.tokens.counts.values())
    assert restored["categories"] == dict(py.tokens.counts)
    assert restored["body_size"] == len(result.body)
    assert restored["restore"] == ("incomplete" if not complete else "passed" if py.passed else "complete")
    assert restored["processing_time_ms"] >= 0
    assert result.record["source"] == "service"
    if tokens:
        assert "Content-Length" not in result.headers
    return py


def cuts(draw: st.DrawFn, body: bytes) -> list[bytes]:
    points = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=10)))
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def upstream_reply(draw: st.DrawFn, body: bytes, content_type: str) -> Reply:
    chunks = cuts(draw, body)
    delays = draw(st.lists(st.sampled_from([0.0, 0.001, 0.004]), min_size=len(chunks), max_size=len(chunks)))
    return Reply(chunks, content_type=content_type, delays=delays, content_length=draw(st.booleans()))


def chunking_events(reply: Reply, result: Result, py: StreamRestorer | SSERestorer) -> None:
    """How nginx cut the body, for --hypothesis-show-statistics."""
    writes = sum(1 for c in reply.chunks if c)
    reads = sum(1 for n, _, _ in result.calls if n)
    event(
        "body_filter data calls "
        + ("== writes" if reads == writes else "< writes" if reads < writes else "> writes")
    )
    event(f"first call empty: {result.calls[0][0] == 0 and not result.calls[0][1]}")
    event(f"restore passed: {py.passed}")


# -- the differential ------------------------------------------------------------------------------------

NGINX_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@given(data=st.data())
@NGINX_SETTINGS
def test_differential_sse(nginx: Nginx, data: st.DataObject) -> None:
    tokens = data.draw(token_maps())
    body = data.draw(sse_streams(list(tokens)))
    max_held = data.draw(st.sampled_from([1 << 20, 4096]))
    pad = event_bytes("ping", {"type": "ping", "pad": "x" * 10000})  # more than max_held can hold
    body = data.draw(st.sampled_from([body, body, pad + body, body + pad]))
    reply = upstream_reply(data.draw, body, SSE)
    result = nginx.request(reply, tokens, max_held=max_held)
    chunking_events(reply, result, check(result, body, tokens, SSE, max_held))
    for token in FOREIGN:
        if token not in tokens:
            assert result.body.count(token.encode()) >= body.count(token.encode())


@given(data=st.data())
@NGINX_SETTINGS
def test_differential_json_and_text(nginx: Nginx, data: st.DataObject) -> None:
    tokens = data.draw(token_maps())
    text = data.draw(model_text(list(tokens)))
    content_type = data.draw(st.sampled_from(["application/json", "text/plain"]))
    body = (json.dumps({"text": text}) if content_type == "application/json" else text).encode(
        "utf-8", "surrogatepass"
    )
    reply = upstream_reply(data.draw, body, content_type)
    result = nginx.request(reply, tokens)
    chunking_events(reply, result, check(result, body, tokens, content_type))
    if content_type == "application/json":
        assert json.loads(result.body)["text"] == json.loads(restore_body(body, tokens, content_type))["text"]


def test_foreign_tokens_pass_through(nginx: Nginx, masker: Masker) -> None:
    """Only this request's tokens are restored: another request's token, or a token-shaped string the
    request never issued, reaches the client untouched."""
    _, result = masker.mask_text(PROMPT)
    ours = dict(list(result.tokens.items())[:1])
    others = [t for t in result.tokens if t not in ours]
    text = f"ours {next(iter(ours))}, theirs {' '.join(others)}, made up AWS_EC2_ffffffffffff"
    body = stream([text[:15], text[15:]])  # our token cut across two deltas, the others whole
    got = nginx.request(Reply([body[:200], body[200:]], content_type=SSE, delays=[0, 0.005]), ours)
    check(got, body, ours, SSE)
    assert next(iter(ours.values())).encode() in got.body
    for token in [*others, "AWS_EC2_ffffffffffff"]:
        assert got.body.count(token.encode()) == body.count(token.encode()) == 1


# -- streaming -------------------------------------------------------------------------------------------


def test_each_event_reaches_the_client_before_the_next_is_sent(nginx: Nginx, masker: Masker) -> None:
    """An SSE answer streams: the upstream sends one event every 50 ms and, after each, waits until
    the test has received what the reference emits for the stream so far. The first restored text
    delta reaches the client while the upstream is still holding back the rest of the stream; a
    delta whose text ends in part of a token is held back only until the block's next delta."""
    masked, result = masker.mask_text(PROMPT)
    tokens = result.tokens
    first_token = next(t for t in tokens if t in masked)
    first, rest = masked.split(first_token, 1)
    second_token = next(t for t in tokens if t in rest)
    cut = rest.index(second_token) + 9  # the next delta ends inside a token
    deltas = [first + first_token + " ", rest[:cut], rest[cut:]]
    body = stream(deltas)
    events = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    assert b"".join(events) == body
    first_delta = next(i for i, e in enumerate(events) if b"content_block_delta" in e)
    gates = {i: threading.Event() for i in range(1, len(events))}
    reply = Reply(events, content_type=SSE, delays=[0.05] * len(events), gates=gates)

    py = response_restorer(tokens, KIND_CATEGORIES, SSE)
    emitted = []  # what the reference has emitted once events[:i + 1] are in
    so_far = b""
    for e in events:
        so_far += py.feed(e)
        emitted.append(so_far)
    expected = so_far + py.finish()
    assert expected == restore_body(body, tokens, SSE)

    test_id, conn, response = nginx.send(reply, state_json(tokens))
    try:
        got = b""
        arrived_at = None
        for i in range(len(events)):
            deadline = time.monotonic() + 5
            while len(reply.sent_at) <= i and time.monotonic() < deadline:  # event i is written
                time.sleep(0.001)
            while len(got) < len(emitted[i]):
                piece = response.read1(65536)
                assert piece, f"the stream ended early, after {got!r}"
                got += piece
            assert got == emitted[i]
            assert reply.started == i + 1  # the upstream is waiting for gates[i + 1]
            if i == first_delta:
                arrived_at = time.monotonic()
                assert tokens[first_token].encode() in got  # restored, while the rest is unsent
                assert not gates[i + 1].is_set()
            if i + 1 in gates:
                gates[i + 1].set()
        got += response.read()
    finally:
        for gate in gates.values():
            gate.set()
        conn.close()
    assert got == expected
    assert arrived_at is not None and arrived_at < reply.sent_at[-1]
    assert emitted[first_delta + 1] == emitted[first_delta]  # the delta cut in a token was held...
    assert emitted[first_delta + 2] != emitted[first_delta + 1]  # ...until the next one came
    record = nginx.record(test_id)
    assert record["serialized"]["aws_masker"]["restored"]["restore"] == "complete"
    assert record["serialized"]["aws_masker"]["restored"]["count"] == 4


# -- headers and encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain; charset=utf-8", SSE])
def test_content_length_is_removed_when_tokens_are_restored(
    nginx: Nginx, masker: Masker, content_type: str
) -> None:
    masked, result = masker.mask_text(PROMPT)
    if content_type == SSE:
        body = stream([masked[:30], masked[30:]])
    elif content_type == "application/json":
        body = json.dumps({"content": [{"type": "text", "text": masked}]}).encode()
    else:
        body = masked.encode()
    reply = Reply([body], content_type=content_type, content_length=True)
    got = nginx.request(reply, result.tokens)
    assert "Content-Length" not in got.headers
    assert got.headers["Transfer-Encoding"] == "chunked"
    check(got, body, result.tokens, content_type)
    assert got.body != body and len(got.body) != len(body)


def test_content_length_stays_when_there_is_nothing_to_restore(nginx: Nginx) -> None:
    body = b'{"text":"nothing masked, AWS_EC2_ffffffffffff"}'
    got = nginx.request(Reply([body], content_length=True), {})
    assert got.headers["Content-Length"] == str(len(body))
    check(got, body, {}, "application/json")
    assert got.body == body


def test_a_gzip_body_passes_byte_for_byte(nginx: Nginx, masker: Masker) -> None:
    masked, result = masker.mask_text(PROMPT)
    body = gzip.compress(json.dumps({"content": [{"type": "text", "text": masked}]}).encode())
    reply = Reply(
        [body[:20], body[20:]], headers={"Content-Encoding": "gzip"}, content_length=True, delays=[0, 0.005]
    )
    log_start = nginx.error_log.stat().st_size
    got = nginx.request(reply, result.tokens)
    assert got.body == body
    assert got.headers["Content-Encoding"] == "gzip"
    assert got.headers["Content-Length"] == str(len(body))
    restored = got.aws_masker["restored"]
    assert restored == {
        "count": 0,
        "categories": {},
        "processing_time_ms": 0,
        "body_size": len(body),
        "restore": "passed",
    }
    with open(nginx.error_log, "rb") as log:
        log.seek(log_start)
        assert b"aws-masker-restore: the upstream body is compressed (gzip)" in log.read()


def test_the_state_is_decoded_as_aws_masker_encodes_it(nginx: Nginx) -> None:
    """aws-masker writes its state with json.dumps (ASCII: \\uXXXX escapes, surrogate pairs for
    astral characters); cjson must give the handler the same originals, byte for byte."""
    originals = [
        "nul\x00byte",
        "astral \U0001f600 and \u2028",
        'quote " back \\ slash\n\t\x01\x1f',
        "caf\u00e9 \u4e2d\u6587",
        "\x7f\u0080\uffff",
    ]
    tokens = {token_for(b"state", "EC2", o): o for o in originals}
    text = " | ".join(tokens)
    for content_type, body in (
        ("text/plain", text.encode()),
        ("application/json", json.dumps({"text": text}).encode()),
        (SSE, stream([text[:30], text[30:77], text[77:]])),
    ):
        got = nginx.request(Reply([body], content_type=content_type), tokens)
        check(got, body, tokens, content_type)
    assert got.body.count("\U0001f600".encode()) == 1


# -- what the plugin reports -----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [SSE, "application/json"])
def test_the_counts_for_logging_plugins_and_for_the_events(
    nginx: Nginx, masker: Masker, content_type: str
) -> None:
    masked, result = masker.mask_text(PROMPT)
    if content_type == SSE:
        body = stream([masked[i : i + 7] for i in range(0, len(masked), 7)])  # every token cut
    else:
        body = json.dumps({"content": [{"type": "text", "text": masked + " " + masked}]}).encode()
    masked_counts = {
        "count": result.total,
        "categories": dict(result.counts),
        "body_size": 123,
        "processing_time_ms": 0.5,
        "at": 1700000000000,
    }
    reply = Reply(
        [body[i : i + 50] for i in range(0, len(body), 50)], content_type=content_type, delays=[0.001] * 100
    )
    got = nginx.request(reply, None, state=state_json(result.tokens, masked_counts, events=True))
    check(got, body, result.tokens, content_type)
    # monitoring on: the log phase leaves aws-masker one small string with both sides' counts
    event = json.loads(got.record["event"])
    assert event["request_id"] == got.record["request_id"] and len(event["request_id"]) == 32
    assert (event["route"], event["service"]) == ("nginx-route", "nginx-service")
    assert event["masked"] == masked_counts and event["restored"] == got.aws_masker["restored"]
    per_copy = {"ec2": 1, "s3": 1, "rds": 1, "private_ip": 1}
    copies = 1 if content_type == SSE else 2
    assert got.aws_masker["masked"] == masked_counts
    restored = got.aws_masker["restored"]
    assert restored["categories"] == {k: v * copies for k, v in per_copy.items()}
    assert restored["count"] == 4 * copies
    assert restored["body_size"] == len(got.body)
    assert restored["restore"] == "complete"


def test_past_max_held_bytes_the_rest_passes_with_its_tokens(nginx: Nginx) -> None:
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    tokens = {token: "i-0123456789abcdef0"}
    big = "x" * 5000
    body = stream(["a " + token, big + token[:8], token[8:] + " b", "c " + token])
    reply = Reply(
        [body[i : i + 1000] for i in range(0, len(body), 1000)], content_type=SSE, delays=[0.002] * 20
    )
    got = nginx.request(reply, tokens, max_held=4096)
    py = check(got, body, tokens, SSE, max_held=4096)
    assert py.passed
    assert b"i-0123456789abcdef0" in got.body.split(big.encode())[0]  # restored before the limit
    assert got.body.endswith(body[-300:])  # and passed on, untouched, after it


def test_a_truncated_upstream_body_is_reported_incomplete(
    nginx: Nginx, allowed_log_errors: list[str]
) -> None:
    """The upstream closes the connection mid-body: nginx never calls the body filter with eof, so
    the restore stays "incomplete" and what it held back (a token's start) never reaches the client,
    which sees a truncated response either way."""
    allowed_log_errors.append("upstream prematurely closed connection")
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    tokens = {token: "i-0123456789abcdef0"}
    for content_type in ("text/plain", SSE):
        if content_type == SSE:
            body = stream(["a " + token, " b " + token[:10]]).split(b"content_block_stop")[0]
        else:
            body = f"a {token} b {token[:10]}".encode()
        for content_length in (False, True):
            reply = Reply(
                [body[:20], body[20:]],
                content_type=content_type,
                delays=[0, 0.005],
                content_length=content_length,
                truncate=True,
            )
            got = nginx.request(reply, tokens)
            check(got, body, tokens, content_type, complete=False)
            assert token[:10].encode() not in got.body


def test_a_head_request_is_not_reported_incomplete(nginx: Nginx) -> None:
    token = token_for(b"k", "EC2", "i-0123456789abcdef0")
    tokens = {token: "i-0123456789abcdef0"}
    got = nginx.request(Reply([f"a {token}".encode()], content_length=True), tokens, method="HEAD")
    assert got.body == b""
    record = got.record
    assert record["calls"] == {}  # no body_filter call at all
    assert record["serialized"]["aws_masker"]["restored"]["restore"] == "complete"


# -- responses that are not the service's ----------------------------------------------------------------


def test_an_exit_response_is_not_touched(nginx: Nginx, masker: Masker) -> None:
    """kong.response.exit after aws-masker ran (source "exit"): the body keeps its tokens and its
    Content-Length; the counts say the restore did not run."""
    masked, result = masker.mask_text(PROMPT)
    exit_body = json.dumps({"message": masked}).encode()
    got = nginx.request(
        None,
        result.tokens,
        headers={"X-Test-Exit": "exit", "X-Test-Exit-Body": base64.b64encode(exit_body).decode()},
    )
    assert got.status == 403
    assert got.body == exit_body
    assert got.headers["Content-Length"] == str(len(exit_body))
    assert got.record["source"] == "exit"
    assert got.aws_masker["restored"]["restore"] == "not_run"
    assert got.aws_masker["restored"]["count"] == 0


def test_an_nginx_error_page_is_not_touched(nginx: Nginx, masker: Masker) -> None:
    _, result = masker.mask_text(PROMPT)
    got = nginx.request(None, result.tokens, headers={"X-Test-Exit": "error"})
    assert got.status == 403
    assert b"403 Forbidden" in got.body
    assert got.headers["Content-Length"] == str(len(got.body))
    assert got.record["source"] == "error"
    assert got.aws_masker["restored"]["restore"] == "not_run"


def test_without_aws_masker_state_nothing_is_restored(nginx: Nginx, masker: Masker) -> None:
    """The guard refused the request, or aws-masker did not run: no state, no restore, no counts."""
    masked, _ = masker.mask_text(PROMPT)
    body = json.dumps({"text": masked}).encode()
    got = nginx.request(Reply([body], content_length=True), None)
    assert got.body == body
    assert got.headers["Content-Length"] == str(len(body))
    assert got.record["serialized"] == {}  # (cjson writes an empty table as {})
    assert got.calls[-1][1] is True
