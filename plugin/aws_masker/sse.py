"""Restore tokens in an Anthropic Messages SSE stream, chunk by chunk.

The model may cut a token anywhere across ``content_block_delta`` events (``AWS_EC2_`` in one
delta, ``9f86d081884c`` in the next). ``SSERestorer`` keeps, per content block, a carry: the
longest tail of the block's text so far that is a proper prefix of one of this request's tokens. The
carry moves to the start of the block's next delta, so every token is whole when it is restored. The
delta that produced a carry is held back (one event) until the next delta or the block's end shows
whether the carry completes a token; at the block's end the carry goes back into that delta.

Output has exactly the same events, in the same order: only the text inside deltas changes, and a
block's restored deltas concatenate to the restored concatenation. An event is edited in place: the
bytes of the delta's text string (found by ``jsonspan.scan``) are replaced and every other byte of
the event stays as the upstream sent it. Other events get whole tokens restored in place (JSON-
escaped). Input may arrive cut at any byte; ``feed`` returns what can be emitted so far, ``finish``
the rest.

At most ``max_held`` bytes are held back (an event still arriving, events queued behind a held
delta). A stream that needs more is passed on from that point with its tokens (``passed`` is set):
nothing is lost or reordered, and no original is exposed.

This is the reference for the Lua restore plugin, which must produce the same bytes.
"""

from __future__ import annotations

import re
from collections import deque

from .jsonspan import scan
from .restore import TokenMap

# delta type -> the delta field that carries model text
DELTA_FIELDS = {b"text_delta": b"text", b"input_json_delta": b"partial_json", b"thinking_delta": b"thinking"}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(rb"\r\n|\r|\n")


class _Event:
    __slots__ = ("out", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.out: bytes | None = None  # set when final


class _Held:
    """A delta held back: its event, where its text sits, its restored text and its carry."""

    __slots__ = ("carry", "end", "event", "restored", "start")

    def __init__(self, event: _Event, start: int, end: int, restored: bytes, carry: bytes) -> None:
        self.event, self.start, self.end, self.restored, self.carry = event, start, end, restored, carry


class SSERestorer:
    def __init__(self, tokens: TokenMap, max_held: int) -> None:
        self.tokens = tokens
        self.max_held = max_held
        self.passed = False
        self._buf = b""
        self._scanned = 0  # bytes of _buf already searched for an event end
        self._queue: deque[_Event] = deque()
        self._queued = 0  # bytes in _queue
        self._held: dict[int, _Held] = {}

    def feed(self, data: bytes) -> bytes:
        if self.passed or not self.tokens:
            return data
        self._buf += data
        pos = 0
        while True:
            m = _EVENT_END.search(self._buf, max(pos, self._scanned - 3))
            if m is None:
                break
            self._handle(_Event(self._buf[pos : m.end()]))
            pos = m.end()
        self._buf = self._buf[pos:]
        self._scanned = len(self._buf)
        out = self._drain()
        if len(self._buf) + self._queued > self.max_held:
            return out + self._give_up()
        return out

    def finish(self) -> bytes:
        if self.passed or not self.tokens:
            return b""
        if self._buf:
            self._handle(_Event(self._buf))  # a last event without its blank line
            self._buf = b""
        for index in list(self._held):
            self._release(index)
        return self._drain()

    # -- internals ---------------------------------------------------------------------------------

    def _give_up(self) -> bytes:
        """Too much held: release everything as it stands and pass the rest of the stream on."""
        for index in list(self._held):
            self._release(index)
        out = b"".join(e.out if e.out is not None else e.raw for e in self._queue) + self._buf
        self._queue.clear()
        self._queued = 0
        self._buf = b""
        self.passed = True
        return out

    def _drain(self) -> bytes:
        out: list[bytes] = []
        while self._queue and self._queue[0].out is not None:
            event = self._queue.popleft()
            self._queued -= len(event.raw)
            out.append(event.out)  # type: ignore[arg-type]
        return b"".join(out)

    def _handle(self, event: _Event) -> None:
        self._queue.append(event)
        self._queued += len(event.raw)
        raw = event.raw
        info = None
        data_line = _single_data_line(raw)
        if data_line is not None:
            info = scan(raw, *data_line)
        if info is not None and info.type == b"content_block_delta" and info.index is not None:
            fld = DELTA_FIELDS.get(info.delta_type or b"")
            span = info.fields.get(fld) if fld is not None else None
            if span is not None:
                self._delta(event, info.index, *span)
                return
        if info is not None and info.type == b"content_block_stop" and info.index in self._held:
            self._release(info.index)
        event.out = self.tokens.restore(raw)

    def _delta(self, event: _Event, index: int, start: int, end: int) -> None:
        held = self._held.pop(index, None)
        carry = b""
        if held is not None:
            carry = held.carry
            self._finalize(held.event, held.start, held.end, held.restored)
        combined = carry + event.raw[start:end]
        keep = self.tokens.carry_len(combined)
        restored = self.tokens.restore(combined[: len(combined) - keep])
        if keep:
            self._held[index] = _Held(event, start, end, restored, combined[len(combined) - keep :])
        else:
            self._finalize(event, start, end, restored)

    def _release(self, index: int) -> None:
        held = self._held.pop(index)
        self._finalize(held.event, held.start, held.end, held.restored + held.carry)

    @staticmethod
    def _finalize(event: _Event, start: int, end: int, text: bytes) -> None:
        raw = event.raw
        event.out = raw if raw[start:end] == text else raw[:start] + text + raw[end:]


def _single_data_line(raw: bytes) -> tuple[int, int] | None:
    """The (start, end) of the payload of the event's only ``data:`` line (one leading space
    dropped), or None if the event has no data line or several."""
    found: tuple[int, int] | None = None
    pos = 0
    while pos < len(raw):
        m = _LINE_END.search(raw, pos)
        end = m.start() if m else len(raw)
        if raw.startswith(b"data:", pos, end):
            if found is not None:
                return None
            start = pos + 5
            if start < end and raw[start] == 0x20:
                start += 1
            found = (start, end)
        pos = m.end() if m else len(raw)
    return found
