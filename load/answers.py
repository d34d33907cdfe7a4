"""Checks of the gateway's answers for load runs: restored, no token left, a well-formed event stream.

Each check raises :class:`AnswerError`: its message is a stable failure name (``identifier not
restored``), so Locust groups the failures in a few rows, and its ``detail`` adds counts and
categories (``3 of 41 missing: arn 2, s3 1``). Neither ever holds an identifier, a token or any other
text of the request or the answer, so failure tables and logs can be shared.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from payloads import Identifier

from aws_masker.tokens import TOKEN_RE

NOT_RESTORED = "identifier not restored"
TOKEN_LEFT = "token left in answer"
ECHO_MISMATCH = "echo answer differs from the request"
NOT_MESSAGE = "answer is not a Messages response"
SSE_MALFORMED = "SSE malformed"
SSE_ERROR = "SSE error event"
NO_TEXT = "stream has no text delta"


class AnswerError(Exception):
    """A failed check: ``str()`` is its stable name, ``detail`` counts and categories (both safe to
    report: no request or answer content)."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(name)
        self.detail = detail


def _categories(items: Iterable[Identifier]) -> str:
    counts = Counter(i.category for i in items)
    return ", ".join(f"{category} {n}" for category, n in sorted(counts.items()))


def check_restored(text: str, identifiers: Iterable[Identifier]) -> None:
    """Every masked original of the request stands in the answer (the stub quotes every token it
    received, so the restored answer holds every original), and no token is left."""
    wanted = list(identifiers)
    missing = [i for i in wanted if i.value not in text]
    if missing:
        raise AnswerError(NOT_RESTORED, f"{len(missing)} of {len(wanted)} missing: {_categories(missing)}")
    check_no_tokens(text)


def check_no_tokens(text: str) -> None:
    left = TOKEN_RE.findall(text)
    if left:
        raise AnswerError(TOKEN_LEFT, f"{len(left)} tokens")


def check_echo(text: str, sent: str) -> None:
    """Echo mode: the answer is the user text as the upstream received it, restored: what was sent."""
    check_no_tokens(text)
    if text != sent:
        raise AnswerError(ECHO_MISMATCH, f"{len(text)} characters back, {len(sent)} sent")


def message_text(body: bytes) -> str:
    """The text blocks of a (non-streamed) Messages response, concatenated."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AnswerError(f"{NOT_MESSAGE} (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("type") != "message" or not isinstance(doc.get("content"), list):
        raise AnswerError(NOT_MESSAGE)
    return "".join(
        block["text"]
        for block in doc["content"]
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
    )


class SSEStream:
    """An Anthropic Messages event stream, fed line by line as it arrives; checks its shape and
    reassembles the text deltas.

    Shape: ``message_start`` first; content blocks opened (``content_block_start``), given deltas and
    closed (``content_block_stop``) by index, one at a time; then ``message_delta`` and
    ``message_stop`` last. ``ping`` and unknown event types may come anywhere after ``message_start``;
    an ``error`` event fails the stream with its error type.
    """

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self.names: list[str] = []
        self.pieces: list[str] = []
        self._open: int | None = None
        self._closed: set[int] = set()
        self.finished = False

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def feed_line(self, line: str) -> str | None:
        """One line (without its line ending). Returns the text of a text delta it completed."""
        if line:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                self._event = value
            elif field == "data":
                self._data.append(value)
            return None
        if self._event is None and not self._data:
            return None
        name, data = self._event, "\n".join(self._data)
        self._event, self._data = None, []
        return self._dispatch(name, data)

    def _dispatch(self, name: str | None, raw: str) -> str | None:
        if self.finished:
            raise AnswerError(f"{SSE_MALFORMED}: event after message_stop")
        try:
            data: Any = json.loads(raw)
        except ValueError:
            raise AnswerError(f"{SSE_MALFORMED}: data is not JSON") from None
        if not isinstance(data, dict) or data.get("type") != name:
            raise AnswerError(f"{SSE_MALFORMED}: event name and data type differ")
        if name == "error":
            error = data.get("error")
            kind = error.get("type") if isinstance(error, dict) else None
            safe = kind if isinstance(kind, str) and kind.isidentifier() else "?"  # a type name, no text
            raise AnswerError(f"{SSE_ERROR}: {safe}")
        if not self.names and name != "message_start":
            raise AnswerError(f"{SSE_MALFORMED}: first event is not message_start")
        self.names.append(name)
        if name == "message_start":
            if len(self.names) > 1:
                raise AnswerError(f"{SSE_MALFORMED}: second message_start")
        elif name == "content_block_start":
            index = data.get("index")
            if self._open is not None or not isinstance(index, int) or index in self._closed:
                raise AnswerError(f"{SSE_MALFORMED}: content_block_start out of order")
            self._open = index
        elif name == "content_block_delta":
            if data.get("index") != self._open or self._open is None:
                raise AnswerError(f"{SSE_MALFORMED}: delta outside its content block")
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                piece = delta.get("text")
                if not isinstance(piece, str):
                    raise AnswerError(f"{SSE_MALFORMED}: text_delta without text")
                self.pieces.append(piece)
                return piece
        elif name == "content_block_stop":
            if data.get("index") != self._open or self._open is None:
                raise AnswerError(f"{SSE_MALFORMED}: content_block_stop out of order")
            self._closed.add(self._open)
            self._open = None
        elif name == "message_delta":
            if self._open is not None:
                raise AnswerError(f"{SSE_MALFORMED}: message_delta inside a content block")
        elif name == "message_stop":
            if self._open is not None or "message_delta" not in self.names:
                raise AnswerError(f"{SSE_MALFORMED}: message_stop before message_delta")
            self.finished = True
        # ping and event types added later (Anthropic's versioning policy allows them) pass
        return None

    def finish(self) -> str:
        """At the end of the body: the stream must have ended with message_stop. Returns the text."""
        if self._event is not None or self._data:
            self.feed_line("")
        if not self.finished:
            raise AnswerError(f"{SSE_MALFORMED}: no message_stop")
        if not self.pieces:
            raise AnswerError(NO_TEXT)
        return self.text
