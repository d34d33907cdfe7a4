"""load/answers.py: the load test's checks of the gateway's answers catch what they are for, and
their failure names and details never hold an identifier or a token."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))

from answers import (
    NO_TEXT,
    NOT_MESSAGE,
    NOT_RESTORED,
    SSE_ERROR,
    SSE_MALFORMED,
    TOKEN_LEFT,
    AnswerError,
    SSEStream,
    check_echo,
    check_restored,
    message_text,
)
from payloads import Identifier

from aws_masker_stack.stub import Incoming, sse_event, stream_events

IDS = (
    Identifier("ec2", "i-0123456789abcdef0"),
    Identifier("arn", "arn:aws:iam::123456789012:role/deploy"),
    Identifier("private_ip", "10.1.2.3"),
)
TOKEN = "AWS_EC2_0123456789ab"
BAD_JSON = b"event: content_block_delta\ndata: {oops\n\n"
OVERLOADED = "overloaded_error"


def fails(fn, *args) -> AnswerError:  # type: ignore[no-untyped-def]
    with pytest.raises(AnswerError) as info:
        fn(*args)
    shown = f"{info.value} {info.value.detail}"
    assert not any(i.value in shown for i in IDS) and TOKEN not in shown
    return info.value


def test_restored_answer_passes() -> None:
    check_restored("I looked at " + ", ".join(i.value for i in IDS) + ": fine.", IDS)


def test_a_missing_identifier_is_named_by_count_and_category() -> None:
    err = fails(check_restored, f"I looked at {IDS[0].value} and {TOKEN}.", IDS)
    assert str(err) == NOT_RESTORED and err.detail == "2 of 3 missing: arn 1, private_ip 1"


def test_a_token_left_fails() -> None:
    err = fails(check_restored, " ".join(i.value for i in IDS) + " " + TOKEN, IDS)
    assert str(err) == TOKEN_LEFT and err.detail == "1 tokens"


def test_echo_must_be_exact() -> None:
    check_echo("same text 10.1.2.3", "same text 10.1.2.3")
    assert "differs" in str(fails(check_echo, "same text 10.1.2.4", "same text 10.1.2.3"))


def test_message_text() -> None:
    body = {"type": "message", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    assert message_text(json.dumps(body).encode()) == "ab"
    assert str(fails(message_text, b'{"type": "error"}')) == NOT_MESSAGE
    assert str(fails(message_text, b"<html>")).startswith(NOT_MESSAGE)


def feed(events: list[bytes]) -> SSEStream:
    stream = SSEStream()
    for line in b"".join(events).decode().split("\n"):
        stream.feed_line(line)
    return stream


def stub_events(text: str) -> list[bytes]:
    doc = {"model": "claude-sonnet-5"}
    return stream_events(doc, text, Incoming(None, [], 100))


def test_the_stubs_stream_is_well_formed_and_reassembled() -> None:
    text = "I looked at i-0123456789abcdef0 and 10.1.2.3: they look fine."
    stream = feed(stub_events(text))
    assert stream.finish() == text and len(stream.pieces) > 2


def test_text_deltas_are_returned_as_they_complete() -> None:
    stream = SSEStream()
    lines = b"".join(stub_events("one two three four five six seven")).decode().split("\n")
    pieces = [p for p in (stream.feed_line(line) for line in lines) if p is not None]
    assert "".join(pieces) == stream.finish()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda ev: ev[:-1], f"{SSE_MALFORMED}: no message_stop"),
        (lambda ev: ev[1:], f"{SSE_MALFORMED}: first event is not message_start"),
        (lambda ev: [ev[0], *ev[3:]], f"{SSE_MALFORMED}: delta outside its content block"),
        (lambda ev: [*ev[:-1], ev[-1], ev[-1]], f"{SSE_MALFORMED}: event after message_stop"),
        (lambda ev: [*ev[:-3], *ev[-2:]], f"{SSE_MALFORMED}: message_delta inside a content block"),
        (
            lambda ev: [*ev[:3], b"event: content_block_delta\ndata: {oops\n\n"],
            f"{SSE_MALFORMED}: data is not JSON",
        ),
        (
            lambda ev: [
                *ev[:3],
                sse_event("error", {"type": "error", "error": {"type": "overloaded_error"}}),
            ],
            f"{SSE_ERROR}: overloaded_error",
        ),
        (lambda ev: [ev[0], ev[1], ev[-3], ev[-2], ev[-1]], NO_TEXT),
    ],
)
def test_malformed_streams_fail(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    events = mutate(stub_events("I looked at i-0123456789abcdef0: it looks fine."))
    err = fails(lambda: feed(events).finish())
    assert str(err) == expected


def test_an_error_events_message_is_not_reported() -> None:
    event = sse_event("error", {"type": "error", "error": {"type": "bad type 10.1.2.3", "message": "x"}})
    err = fails(lambda: feed([*stub_events("hi")[:1], event]).finish())
    assert str(err) == f"{SSE_ERROR}: ?"
