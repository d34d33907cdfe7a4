"""A lenient JSON tokenizer that keeps the client's text: where each string and number literal stands.

A request body is masked by rewriting only the literals that change, so the rest of the body goes
upstream byte for byte as the client wrote it: numbers as written (``1e400``, a 5000-digit integer,
``2.50``), spacing, key order, escapes, and every copy of a duplicated key (``{"messages": [...],
"messages": [...]}``: each copy is a separate run of literals, so each is masked; nothing is decided
on a parse that dropped one). ``parse`` accepts what Python's ``json`` module accepts with
``strict=False`` (``NaN``, ``Infinity``, ``-Infinity``, control characters in strings, lone
surrogates in ``\\u`` escapes), at any depth (the walk is iterative, with an explicit stack), and
returns None for anything else. One compiled regex finds each token and the C string scanner of the
``json`` module decodes each string, so the cost is linear in the text, one Python step per token.

What it returns: every literal (its raw span, its decoded value, whether it is a key, the key it
stands under and the key of the member after it) and every container (its parent, the key or list
position it stands at, and the string values of its members by key), enough for jsonbody.py to say
where a literal is in a Messages request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from json.decoder import scanstring

_TOKEN = re.compile(
    r"[ \t\n\r]*(?:"
    r"(\")"  # 1: a string
    r"|([{\[])"  # 2: an opening bracket
    r"|([}\]])"  # 3: a closing bracket
    r"|(,)"  # 4
    r"|(:)"  # 5
    r"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"  # 6: a number
    r"|(true|false|null|NaN|Infinity|-Infinity)"  # 7
    r")"
)
_END = re.compile(r"[ \t\n\r]*\Z")

KEY, STRING, NUMBER = 0, 1, 2


@dataclass
class Container:
    is_object: bool
    parent: int
    """Index of the enclosing container, -1 for the root."""
    key: str | None
    """The key it stands under in its parent object (None in a list)."""
    position: int = -1
    """Its place in its parent list (-1 in an object)."""
    strings: dict[str, list[int]] = field(default_factory=dict)
    """For an object: key -> indices of the string literals that are its values (every copy)."""


@dataclass
class Literal:
    kind: int  # KEY, STRING or NUMBER
    start: int
    end: int
    """The raw span, quotes included."""
    value: str
    """A string's decoded value, or a number's text."""
    container: int
    key: str | None = None
    """For a value in an object: its key. For a key: None."""
    next_key: str | None = None
    """For a value in an object: the key of the member after it, if any."""
    position: int = -1
    """For a value in a list: its place in the list."""


@dataclass
class Document:
    literals: list[Literal]
    containers: list[Container]


_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _COMMA_OR_CLOSE = range(6)


def parse(text: str, pos: int = 0) -> Document | None:
    """The literals and containers of the JSON object or list in ``text[pos:]``, or None if it is not
    one (trailing whitespace is allowed, nothing else)."""
    match = _TOKEN.match
    literals: list[Literal] = []
    containers: list[Container] = []
    stack: list[int] = []  # open containers
    pending: list[Literal | None] = []  # per open object: its last value, waiting for the next key
    keys: list[str | None] = []  # per open container: the current key (objects)
    items: list[int] = []  # per open container: how many items it has had so far (lists)
    state = _VALUE
    n = len(text)
    m = match(text, pos)
    if m is None or m.lastindex != 2:
        return None  # the root must be an object or a list
    while True:
        if m is None:
            return None
        group = m.lastindex
        pos = m.end()
        top = stack[-1] if stack else -1
        if group == 1:  # a string
            try:
                value, pos = scanstring(text, pos, False)
            except ValueError:
                return None
            if state in (_KEY, _KEY_OR_CLOSE):
                literals.append(Literal(KEY, m.end() - 1, pos, value, top))
                keys[-1] = value
                last = pending[-1]
                if last is not None:
                    last.next_key = value
                    pending[-1] = None
                state = _COLON
            elif state in (_VALUE, _VALUE_OR_CLOSE):
                literal = Literal(STRING, m.end() - 1, pos, value, top)
                literals.append(literal)
                _placed(literal, containers, keys, pending, items, top)
                if top >= 0 and containers[top].is_object:
                    containers[top].strings.setdefault(keys[-1], []).append(len(literals) - 1)  # type: ignore[arg-type]
                state = _COMMA_OR_CLOSE
            else:
                return None
        elif group == 2:  # [ or {
            if state != _VALUE and state != _VALUE_OR_CLOSE:
                return None
            is_object = text[pos - 1] == "{"
            in_object = top >= 0 and containers[top].is_object
            container = Container(is_object, top, keys[-1] if in_object else None)
            containers.append(container)
            if in_object:
                pending[-1] = None
            elif top >= 0:
                container.position = items[-1]
                items[-1] += 1
            stack.append(len(containers) - 1)
            pending.append(None)
            keys.append(None)
            items.append(0)
            state = _KEY_OR_CLOSE if is_object else _VALUE_OR_CLOSE
        elif group == 3:  # ] or }
            if state != _COMMA_OR_CLOSE and state != _KEY_OR_CLOSE and state != _VALUE_OR_CLOSE:
                return None
            if not stack or containers[top].is_object != (text[pos - 1] == "}"):
                return None
            stack.pop()
            pending.pop()
            keys.pop()
            items.pop()
            if not stack:
                return Document(literals, containers) if _END.match(text, pos) else None
            state = _COMMA_OR_CLOSE
        elif group == 4:  # ,
            if state != _COMMA_OR_CLOSE:
                return None
            state = _KEY if containers[top].is_object else _VALUE
        elif group == 5:  # :
            if state != _COLON:
                return None
            state = _VALUE
        else:  # a number or another literal
            if state != _VALUE and state != _VALUE_OR_CLOSE:
                return None
            if group == 6:
                literal = Literal(NUMBER, m.start(6), pos, m.group(6), top)
                literals.append(literal)
                _placed(literal, containers, keys, pending, items, top)
            elif top >= 0:
                if containers[top].is_object:
                    pending[-1] = None
                else:
                    items[-1] += 1
            state = _COMMA_OR_CLOSE
        if pos >= n:
            return None
        m = match(text, pos)


def _placed(
    literal: Literal,
    containers: list[Container],
    keys: list[str | None],
    pending: list[Literal | None],
    items: list[int],
    top: int,
) -> None:
    if top < 0:
        return
    if containers[top].is_object:
        literal.key = keys[-1]
        pending[-1] = literal
    else:
        literal.position = items[-1]
        items[-1] += 1
