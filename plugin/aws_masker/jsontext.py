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

_WS = "[ \t\n\r]*"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_LITERAL = "true|false|null|NaN|Infinity|-Infinity"


_PLAIN_MAX = 256
"""Longer strings are left to the json module's C scanner, which reads them ten times faster than
the regex engine walks a character class."""


def _plain(name: str) -> str:
    """A short string without escapes (its content, group ``name``, is its value). The content is
    taken whole, as an atomic group would (a lookahead, then a backreference: Python 3.10 has no
    atomic groups): where a backslash ends it, the match fails at once instead of giving the run back
    one character at a time, which made a long escaped string cost a step per character."""
    return f'"(?=(?P<{name}>[^"\\\\]{{0,{_PLAIN_MAX}}}))(?P={name})"'


# One item, maybe after a comma. The common case of an object member, a key and a scalar value both
# without escapes, is one match; other strings are found and decoded by the json module's C scanner.
# A plain string (p) is read once, then maybe its colon (k: a key) and a plain value (vs, vn, vl):
# the match's last group says which.
_ITEM = re.compile(
    _WS
    + "(?P<comma>,"
    + _WS
    + ")?(?:"
    + _plain("p")
    + "(?:"
    + _WS
    + "(?P<k>:)"
    + _WS
    + "(?:"
    + _plain("vs")
    + f"|(?P<vn>{_NUMBER})|(?P<vl>{_LITERAL}))?"
    + ")?"
    + '|(?P<q>")'
    + r"|(?P<o>[{\[])"
    + r"|(?P<c>[}\]])"
    + f"|(?P<n>{_NUMBER})"
    + f"|(?P<l>{_LITERAL})"
    + ")",
    re.S,
)
_END = re.compile(_WS + r"\Z")
_COLON = re.compile(_WS + ":")

KEY, STRING, NUMBER = 0, 1, 2


@dataclass(slots=True)
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


@dataclass(slots=True)
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


@dataclass(slots=True)
class Document:
    literals: list[Literal]
    containers: list[Container]


def parse(text: str, pos: int = 0) -> Document | None:
    """The literals and containers of the JSON object or list in ``text[pos:]``, or None if it is not
    one (trailing whitespace is allowed, nothing else)."""
    match = _ITEM.match
    literals: list[Literal] = []
    add = literals.append
    containers: list[Container] = []
    stack: list[int] = []  # open containers
    pending: list[Literal | None] = []  # per open object: its last value, waiting for the next key
    keys: list[str | None] = []  # per open container: the current key (objects)
    items: list[int] = []  # per open container: how many items it has had so far (lists)
    after_value = False  # the open container's last item was a value: a comma or the close is next
    after_key = False  # a key and its colon were read: a value is next
    m = match(text, pos)
    if m is None or m.lastgroup != "o" or m.group("comma") is not None:
        return None  # the root must be an object or a list
    containers.append(Container(text[m.end() - 1] == "{", -1, None))
    stack.append(0)
    pending.append(None)
    keys.append(None)
    items.append(0)
    pos = m.end()
    while True:
        m = match(text, pos)
        if m is None:
            return None
        group = m.lastgroup
        comma = m.group("comma") is not None
        pos = m.end()
        top = stack[-1]
        container = containers[top]
        if group == "c":  # ] or }
            if comma or after_key or container.is_object != (text[pos - 1] == "}"):
                return None
            stack.pop()
            pending.pop()
            keys.pop()
            items.pop()
            if not stack:
                return Document(literals, containers) if _END.match(text, pos) else None
            after_value = True
            continue
        expect_value = after_key  # a key and its colon were read
        if after_key:
            if comma:
                return None
            after_key = False
        elif after_value != comma:
            return None  # two items without a comma, or a comma before the first
        in_object = container.is_object
        if group == "vs" or group == "vn" or group == "vl" or group == "k":  # a plain key (and value)
            if not in_object or expect_value:
                return None
            key = m.group("p")
            key_start = m.start("p") - 1
            add(Literal(KEY, key_start, key_start + len(key) + 2, key, top))
            keys[-1] = key
            last = pending[-1]
            if last is not None:
                last.next_key = key
            if group == "k":
                pending[-1] = None
                after_key, after_value = True, False
                continue
            after_value = True
            if group == "vl":
                pending[-1] = None
                continue
            if group == "vs":
                literal = Literal(STRING, m.start("vs") - 1, pos, m.group("vs"), top, key)
                container.strings.setdefault(key, []).append(len(literals))
            else:
                literal = Literal(NUMBER, m.start("vn"), pos, m.group("vn"), top, key)
            add(literal)
            pending[-1] = literal
            continue
        string: str | None = None
        start = pos - 1
        if group == "p":
            string = m.group("p")
            start = m.start("p") - 1
        elif group == "q":
            try:
                string, pos = scanstring(text, pos, False)
            except ValueError:
                return None
            colon = _COLON.match(text, pos)
            if colon is not None:  # a key
                if not in_object or expect_value:
                    return None
                add(Literal(KEY, start, pos, string, top))
                keys[-1] = string
                last = pending[-1]
                if last is not None:
                    last.next_key = string
                    pending[-1] = None
                after_key, after_value = True, False
                pos = colon.end()
                continue
        if in_object and not expect_value:
            return None  # a value without a key
        # a value
        after_value = True
        if string is not None:
            literal = Literal(STRING, start, pos, string, top)
            _placed(literal, container, keys, pending, items)
            if in_object:
                container.strings.setdefault(keys[-1], []).append(len(literals))  # type: ignore[arg-type]
            add(literal)
        elif group == "o":  # [ or {
            is_object = text[pos - 1] == "{"
            child = Container(is_object, top, keys[-1] if in_object else None)
            containers.append(child)
            if in_object:
                pending[-1] = None
            else:
                child.position = items[-1]
                items[-1] += 1
            stack.append(len(containers) - 1)
            pending.append(None)
            keys.append(None)
            items.append(0)
            after_value = False
        elif group == "n":
            literal = Literal(NUMBER, m.start("n"), pos, m.group("n"), top)
            _placed(literal, container, keys, pending, items)
            add(literal)
        elif in_object:
            pending[-1] = None
        else:
            items[-1] += 1


def _placed(
    literal: Literal,
    container: Container,
    keys: list[str | None],
    pending: list[Literal | None],
    items: list[int],
) -> None:
    if container.is_object:
        literal.key = keys[-1]
        pending[-1] = literal
    else:
        literal.position = items[-1]
        items[-1] += 1
