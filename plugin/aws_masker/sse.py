"""Restore tokens in an Anthropic Messages SSE stream.

The model may cut a token anywhere across ``content_block_delta`` events (``AWS_EC2_`` in one
delta, ``9f86d081884c`` in the next). ``SSERestorer`` keeps, per content block, a carry: the
longest suffix of the text seen so far that is a proper prefix of one of this request's tokens. The
carry is prepended to the block's next delta, so every token is whole when it is restored. The
delta that produced a carry is held back (one event) until the next delta or the block's end shows
whether the carry completes a token; at the end the carry goes back into that delta unchanged.

Output has exactly the same events, in the same order, with the same event names: only the text of
deltas changes, and the concatenation of a block's restored deltas equals the restored concatenation.
Events other than text deltas are restored in place (tokens JSON-escaped). Input may arrive split at
any byte; ``feed`` returns what can be emitted so far and ``finish`` the rest.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

from .errors import RestoreError
from .restore import json_escaped, restore_text

# The delta field that carries model text, per delta type.
_DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
# SSE lines end in CRLF, LF or CR only (not in the other characters str.splitlines() knows, such as
# U+2028, which JSON leaves unescaped inside data).
_LINE = re.compile(r"\r\n|\r|\n")


class _Event:
    __slots__ = ("out", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.out: bytes | None = None  # set when final


class SSERestorer:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = tokens
        self._escaped = json_escaped(tokens)  # for events restored in place, built once
        self._sorted = sorted(tokens)  # a carry is a proper prefix of one of these (binary search)
        self._max_prefix = max((len(t) - 1 for t in tokens), default=0)
        self._buf = b""
        self._queue: deque[_Event] = deque()
        # block index -> (held delta event, its parsed data, field name, restored text so far, carry)
        self._held: dict[int, tuple[_Event, dict[str, Any], list[str], str, str]] = {}
        self.restored = 0

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        pos = 0
        while True:
            m = _EVENT_END.search(self._buf, pos)
            if m is None:
                break
            self._handle(_Event(self._buf[pos : m.end()]))
            pos = m.end()
        self._buf = self._buf[pos:]
        return self._drain()

    def finish(self) -> bytes:
        if self._buf:
            self._handle(_Event(self._buf))  # a last event without its blank line
            self._buf = b""
        for index in list(self._held):
            self._release(index)
        return self._drain()

    # -- internals ---------------------------------------------------------------------------------

    def _drain(self) -> bytes:
        out: list[bytes] = []
        while self._queue and self._queue[0].out is not None:
            out.append(self._queue.popleft().out)  # type: ignore[arg-type]
        return b"".join(out)

    def _handle(self, event: _Event) -> None:
        self._queue.append(event)
        text = _decode(event.raw)
        data_lines = [ln for ln in _LINE.split(text) if ln.startswith("data:")]
        payload = _parse_data(data_lines)
        delta = payload.get("delta") if isinstance(payload, dict) else None
        if (
            isinstance(payload, dict)
            and payload.get("type") == "content_block_delta"
            and isinstance(payload.get("index"), int)
            and isinstance(delta, dict)
            and delta.get("type") in _DELTA_FIELDS
            and isinstance(delta.get(_DELTA_FIELDS[delta["type"]]), str)
        ):
            self._delta(event, text, payload, payload["index"], _DELTA_FIELDS[delta["type"]])
            return
        if isinstance(payload, dict) and payload.get("type") == "content_block_stop":
            index = payload.get("index")
            if isinstance(index, int) and index in self._held:
                self._release(index)
        restored, n = restore_text(text, self._escaped)
        self.restored += n
        event.out = event.raw if n == 0 else restored.encode("utf-8")

    def _delta(self, event: _Event, text: str, payload: dict[str, Any], index: int, fld: str) -> None:
        held = self._held.pop(index, None)
        carry = ""
        if held is not None:
            carry = held[4]
            self._finalize(held[0], held[1], held[2], held[3], "")
        combined = carry + payload["delta"][fld]
        keep = self._carry_len(combined)
        emit, carry = combined[: len(combined) - keep], combined[len(combined) - keep :]
        restored, n = restore_text(emit, self._tokens)
        self.restored += n
        lines = [ln for ln in _LINE.split(text) if ln and not ln.startswith("data:")]
        if carry:
            self._held[index] = (event, payload, lines, restored, carry)
        else:
            self._finalize(event, payload, lines, restored, "")

    def _release(self, index: int) -> None:
        event, payload, lines, restored, carry = self._held.pop(index)
        self._finalize(event, payload, lines, restored, carry)

    def _finalize(
        self, event: _Event, payload: dict[str, Any], lines: list[str], restored: str, tail: str
    ) -> None:
        delta = payload["delta"]
        fld = _DELTA_FIELDS[delta["type"]]
        new_text = restored + tail
        if new_text == delta[fld]:
            event.out = event.raw
            return
        delta[fld] = new_text
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        terminator = _EVENT_END.search(event.raw)
        nl = terminator.group()[: len(terminator.group()) // 2].decode() if terminator is not None else "\n"
        event.out = (nl.join([*lines, f"data: {data}"]) + nl + nl).encode("utf-8")

    def _carry_len(self, text: str) -> int:
        """Length of the longest suffix of ``text`` that is a proper prefix of one of our tokens."""
        start = max(0, len(text) - self._max_prefix)
        for i in range(start, len(text)):
            if text[i] == "A" and self._is_token_prefix(text[i:]):
                return len(text) - i
        return 0

    def _is_token_prefix(self, text: str) -> bool:
        k = bisect.bisect_left(self._sorted, text)
        return k < len(self._sorted) and self._sorted[k].startswith(text) and self._sorted[k] != text


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RestoreError("upstream event stream is not valid UTF-8") from exc


def _parse_data(data_lines: list[str]) -> Any:
    if not data_lines:
        return None
    data = "\n".join(ln[5:].removeprefix(" ") for ln in data_lines)
    try:
        return json.loads(data)
    except ValueError:
        return None
