"""Where a Messages SSE event keeps its model text: a strict JSON scan that returns byte spans.

The stream restore (``sse.py``, and its Lua twin ``kong/plugins/aws-masker-restore/restore.lua``)
edits a ``content_block_delta`` event in place: it replaces the raw bytes of the delta's text and
leaves every other byte of the event as the upstream sent it (key order, spacing, escapes). So it
needs the *span* of that string in the event's data, which a JSON decoder does not give. ``scan``
reads one JSON object and reports:

- ``type``: the raw content of the top-level ``"type"`` string;
- ``index``: the top-level ``"index"`` when it is a plain non-negative integer (at most 9 digits);
- ``delta_type``: the raw content of ``delta.type``;
- ``fields``: for each key of ``delta`` in ``DELTA_FIELD_NAMES`` whose value is a string, the
  ``(start, end)`` byte span of that string's raw content (between its quotes).

Keys are compared as raw bytes: a key written with escapes (``"t\\u0065xt"``) is some other key,
and so is a ``type`` value with escapes. A key of interest that occurs twice, or any syntax error
(JSON as RFC 8259 has it: no NaN, no comments, no trailing commas; bytes >= 0x80 are not checked),
makes the result ``None``: the event is then restored in place like any other event. The scan is
iterative (no recursion limit) and linear in the payload.

The Lua twin implements exactly this; ``tests/test_restore_lua.py`` holds the two to the same output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

DELTA_FIELD_NAMES = (b"text", b"partial_json", b"thinking")
_WS = b" \t\n\r"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'"\\/bfnrt'
_MAX_INDEX_DIGITS = 9


@dataclass
class Scan:
    type: bytes | None = None
    index: int | None = None
    delta_type: bytes | None = None
    fields: dict[bytes, tuple[int, int]] = field(default_factory=dict)


class _Invalid(Exception):
    pass


def scan(data: bytes, start: int = 0, end: int | None = None) -> Scan | None:
    """Scan ``data[start:end]`` as one JSON object (spans are offsets into ``data``)."""
    stop = len(data) if end is None else end
    try:
        result, pos = _scan_object(data, _ws(data, start, stop), stop)
    except (_Invalid, IndexError):
        return None
    if _ws(data, pos, stop) != stop:
        return None
    return result


def _ws(s: bytes, i: int, stop: int) -> int:
    while i < stop and s[i] in _WS:
        i += 1
    return i


def _expect(s: bytes, i: int, stop: int, byte: int) -> int:
    if i >= stop or s[i] != byte:
        raise _Invalid
    return i + 1


def _string(s: bytes, i: int, stop: int) -> int:
    """``s[i]`` is an opening quote; return the index of the closing quote."""
    i = _expect(s, i, stop, 0x22)
    while i < stop:
        c = s[i]
        if c == 0x22:
            return i
        if c == 0x5C:
            if i + 1 >= stop:
                raise _Invalid
            e = s[i + 1]
            if e == 0x75:  # \uXXXX
                if i + 6 > stop or any(h not in _HEX for h in s[i + 2 : i + 6]):
                    raise _Invalid
                i += 6
            elif e in _ESCAPES:
                i += 2
            else:
                raise _Invalid
        elif c < 0x20:
            raise _Invalid
        else:
            i += 1
    raise _Invalid


def _number(s: bytes, i: int, stop: int) -> int:
    """Return the end of the number starting at ``i``."""
    if i < stop and s[i] == 0x2D:
        i += 1
    if i >= stop or s[i] not in _DIGITS:
        raise _Invalid
    if s[i] == 0x30:
        i += 1
    else:
        while i < stop and s[i] in _DIGITS:
            i += 1
    if i < stop and s[i] == 0x2E:
        i += 1
        if i >= stop or s[i] not in _DIGITS:
            raise _Invalid
        while i < stop and s[i] in _DIGITS:
            i += 1
    if i < stop and s[i] in b"eE":
        i += 1
        if i < stop and s[i] in b"+-":
            i += 1
        if i >= stop or s[i] not in _DIGITS:
            raise _Invalid
        while i < stop and s[i] in _DIGITS:
            i += 1
    return i


_LITERALS = {0x74: b"true", 0x66: b"false", 0x6E: b"null"}


def _value(s: bytes, i: int, stop: int) -> int:
    """Skip one JSON value starting at ``i`` (no leading whitespace); return its end."""
    if i >= stop:
        raise _Invalid
    c = s[i]
    if c == 0x22:
        return _string(s, i, stop) + 1
    if c == 0x2D or c in _DIGITS:
        return _number(s, i, stop)
    literal = _LITERALS.get(c)
    if literal is not None:
        if i + len(literal) > stop or s[i : i + len(literal)] != literal:
            raise _Invalid
        return i + len(literal)
    if c not in (0x7B, 0x5B):
        raise _Invalid
    # a container: an explicit stack of closing brackets, no recursion
    stack = [0x7D if c == 0x7B else 0x5D]
    i = _ws(s, i + 1, stop)
    first = True
    while True:
        close = stack[-1]
        if first and i < stop and s[i] == close:
            stack.pop()
            i += 1
        else:
            if close == 0x7D:
                i = _ws(s, _string(s, i, stop) + 1, stop)
                i = _ws(s, _expect(s, i, stop, 0x3A), stop)
            if i >= stop:
                raise _Invalid
            c = s[i]
            if c in (0x7B, 0x5B):
                stack.append(0x7D if c == 0x7B else 0x5D)
                i = _ws(s, i + 1, stop)
                first = True
                continue
            i = _value(s, i, stop)
        # after a value (or a closed container): a comma or the closing bracket, as often as needed
        while True:
            if not stack:
                return i
            i = _ws(s, i, stop)
            if i < stop and s[i] == 0x2C:
                i = _ws(s, i + 1, stop)
                first = False
                break
            i = _expect(s, i, stop, stack.pop())


def _object(s: bytes, i: int, stop: int, visit: Callable[[bytes, int], int | None]) -> int:
    """Scan the object at ``i``; ``visit(key, value_start)`` returns the end of a value it read
    itself (a key of interest, which must not occur twice), or None to have it skipped."""
    i = _ws(s, _expect(s, i, stop, 0x7B), stop)
    if i < stop and s[i] == 0x7D:
        return i + 1
    seen: set[bytes] = set()
    while True:
        key_end = _string(s, i, stop)
        key = s[i + 1 : key_end]
        value = _ws(s, _expect(s, _ws(s, key_end + 1, stop), stop, 0x3A), stop)
        end = visit(key, value)
        if end is None:
            end = _value(s, value, stop)
        elif key in seen:
            raise _Invalid  # a key of interest twice: which one counts is not ours to guess
        else:
            seen.add(key)
        i = _ws(s, end, stop)
        if i < stop and s[i] == 0x2C:
            i = _ws(s, i + 1, stop)
            continue
        return _expect(s, i, stop, 0x7D)


def _string_content(s: bytes, i: int, stop: int) -> tuple[int, int] | None:
    """The raw content span of the string at ``i``, or None if the value is not a string."""
    if i < stop and s[i] == 0x22:
        return i + 1, _string(s, i, stop)
    return None


def _scan_object(s: bytes, i: int, stop: int) -> tuple[Scan, int]:
    result = Scan()

    def top(key: bytes, v: int) -> int | None:
        if key == b"type":
            span = _string_content(s, v, stop)
            if span is not None and 0x5C not in s[span[0] : span[1]]:
                result.type = s[span[0] : span[1]]
            return _value(s, v, stop)
        if key == b"index":
            end = _value(s, v, stop)
            digits = s[v:end]
            if (
                digits.isdigit()
                and len(digits) <= _MAX_INDEX_DIGITS
                and (digits == b"0" or digits[0] != 0x30)
            ):
                result.index = int(digits)
            return end
        if key == b"delta":
            if v < stop and s[v] == 0x7B:
                return _object(s, v, stop, delta)
            return _value(s, v, stop)
        return None

    def delta(key: bytes, v: int) -> int | None:
        if key == b"type":
            span = _string_content(s, v, stop)
            if span is not None and 0x5C not in s[span[0] : span[1]]:
                result.delta_type = s[span[0] : span[1]]
            return _value(s, v, stop)
        if key in DELTA_FIELD_NAMES:
            span = _string_content(s, v, stop)
            if span is not None:
                result.fields[key] = span
            return _value(s, v, stop)
        return None

    return result, _object(s, i, stop, top)
