"""A lenient JSON tokenizer that keeps the client's text: where each string and number literal stands.

A request body is masked by rewriting only the literals that change, so the rest of the body goes
upstream byte for byte as the client wrote it: numbers as written (``1e400``, a 5000-digit integer,
``2.50``), spacing, key order, escapes, and every copy of a duplicated key (``{"messages": [...],
"messages": [...]}``: each copy is a separate run of literals, so each is masked; nothing is decided
on a parse that dropped one). ``parse`` accepts what Python's ``json`` module accepts with
``strict=False`` (``NaN``, ``Infinity``, ``-Infinity``, control characters in strings, lone
surrogates in ``\\u`` escapes), at any depth (the walk is iterative, with an explicit stack), and
returns None for anything else. The json module's C decoder reads the text first; what it accepts
is walked by one compiled regex, one match per object member or list item, without checking the
grammar again (what it refuses, or cannot read: nesting past its recursion limit, integers past its
digit limit, goes through a walk that checks every step). The json module's C string scanner
decodes strings with escapes and long ones, so the cost is linear in the text.

What it returns: every literal (its raw span, its decoded value, whether it is a key, the key it
stands under and the key of the member after it), as columns (no object per literal until
``Document.literals`` is asked for), and every container (its parent, the key or list position it
stands at, and the string values of its members by key), enough for jsonbody.py to say where a
literal is in a Messages request.
"""

from __future__ import annotations

import itertools
import json
import re
from functools import partial
from json.decoder import scanstring
from typing import NamedTuple

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


class Literal(NamedTuple):
    kind: int  # KEY, STRING or NUMBER
    start: int
    """The raw span, quotes included."""
    end: int
    value: str
    """A string's decoded value, or a number's text."""
    container: int
    key: str | None = None
    """For a value in an object: its key. For a key: None."""
    next_key: str | None = None
    """For a value in an object: the key of the member after it, if any."""
    position: int = -1
    """For a value in a list: its place in the list."""


_literal = partial(tuple.__new__, Literal)
"""A Literal from its eight fields in one sequence, at C speed."""


class Container(NamedTuple):
    is_object: bool
    parent: int
    """Index of the enclosing container, -1 for the root."""
    key: str | None
    """The key it stands under in its parent object (None in a list)."""
    position: int
    """Its place in its parent list (-1 in an object)."""
    string_values: list[int]
    """For an object: the literal indices of its string values."""
    key_column: list[str | None]
    """The document's ``keys`` column."""
    by_key: dict[str, list[int]]
    """``strings``, once asked for."""

    @property
    def strings(self) -> dict[str, list[int]]:
        """For an object: key -> indices of the string literals that are its values (every copy).
        Made when first asked for: most containers of a large document never are."""
        strings = self.by_key
        if not strings and self.string_values:
            keys = self.key_column
            for i in self.string_values:
                strings.setdefault(keys[i], []).append(i)  # type: ignore[arg-type]
        return strings


_container = partial(tuple.__new__, Container)
"""A Container from its seven fields in one sequence, at C speed."""


class Document:
    """The literals, as columns (literal i is ``kinds[i]``, ``starts[i]``...: no object per literal),
    and the containers."""

    __slots__ = (
        "_literals",
        "containers",
        "ends",
        "keys",
        "kinds",
        "next_keys",
        "owners",
        "positions",
        "starts",
        "values",
    )

    def __init__(
        self,
        kinds: list[int],
        starts: list[int],
        ends: list[int],
        values: list[str],
        owners: list[int],
        keys: list[str | None],
        next_keys: dict[int, str],
        positions: dict[int, int],
        containers: list[Container],
    ) -> None:
        self.kinds = kinds
        """KEY, STRING or NUMBER."""
        self.starts = starts
        self.ends = ends
        """The raw span, quotes included."""
        self.values = values
        """A string's decoded value, or a number's text."""
        self.owners = owners
        """The index of the container each literal stands in."""
        self.keys = keys
        """For a value in an object: its key. Otherwise None."""
        self.next_keys = next_keys
        """For a value in an object followed by a member: that member's key."""
        self.positions = positions
        """For a value in a list: its place in the list."""
        self.containers = containers
        self._literals: list[Literal] | None = None

    @property
    def literals(self) -> list[Literal]:
        """The literals as objects (made when first asked for)."""
        if self._literals is None:
            count = range(len(self.kinds))
            self._literals = list(
                map(
                    _literal,
                    zip(
                        self.kinds,
                        self.starts,
                        self.ends,
                        self.values,
                        self.owners,
                        self.keys,
                        map(self.next_keys.get, count),
                        map(self.positions.get, count, itertools.repeat(-1)),
                        strict=True,
                    ),
                )
            )
        return self._literals


_DECODER = json.JSONDecoder(strict=False)
_SPACE = re.compile(_WS)
_NO_SPACE = str.maketrans("", "", " \t\n\r")
_NUMBER_START = frozenset("-0123456789")

_BARE = r'[^ \t\n\r{}\[\],:"]+'
"""A number, true, false, null, NaN, Infinity or -Infinity (in a document the json module read)."""


# The walk of a document the json module has read: one match per object member or list item, with the
# structure before it (whitespace, brackets, a comma or a colon). A plain string (p) is taken in the
# match, with its value when it is a key (v: a plain string, vb: a number or a literal, o: the place
# before a container); any other string (q: escapes, or longer than _PLAIN_MAX) is read by the json
# module's C scanner.
_TOKEN = re.compile(
    "([ \t\n\r{}\\[\\],:]*)(?:"
    + _plain("p")
    + f"(?:{_WS}:{_WS}(?:"
    + _plain("v")
    + f"|(?P<vb>{_BARE})|(?P<o>(?=[{{\\[]))))?"
    + f"|(?P<b>{_BARE})"
    + '|(?P<q>"))?'
)


def parse(text: str, pos: int = 0) -> Document | None:
    """The literals and containers of the JSON object or list in ``text[pos:]``, or None if it is not
    one (trailing whitespace is allowed, nothing else).

    A document the json module reads (most are) is walked without checking its grammar again, one
    regex match per object member or list item; anything else (not JSON, deeper than the json
    module's recursion, integers longer than its digit limit) goes through the walk that checks every
    step."""
    start = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if text[start : start + 1] not in ("{", "["):
        return None  # the root must be an object or a list
    try:
        _, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return _parse_checked(text, pos)
    if _END.match(text, end) is None:
        return None
    doc = _walk(text, start)
    return doc if doc is not None else _parse_checked(text, pos)


def _walk(text: str, pos: int) -> Document | None:
    """The literals and containers of ``text[pos:]``, JSON the json module has read (None should the
    walk not end where the document does, which it always does)."""
    # Each literal's six fields (kind, start, end, value, container, key) go onto one flat list, a
    # member's two literals in one call; the columns are cut from it at the end.
    flat: list[int | str | None] = []
    add = flat.extend
    keys: list[str | None] = []  # the keys column, filled at the end (the containers hold it)
    next_keys: dict[int, str] = {}
    positions: dict[int, int] = {}
    containers: list[Container] = []
    structure: dict[str, str] = {}  # gap -> its brackets and punctuation
    stack: list[tuple[int, bool, str | None, int, int, list[int]]] = []
    # The open container: its index, kind, current key, items so far (a list), the last value
    # waiting for the next key (an object, -1 if none), its string values (an object).
    top, in_object, key, items, pending, strings = -1, True, None, 0, -1, []
    n = 0  # literals so far
    while True:
        for m in _TOKEN.finditer(text, pos):
            gap, plain, plain_value, bare_value, opens, bare, quote = m.groups()
            marks = structure.get(gap)
            if marks is None:
                marks = structure[gap] = gap.translate(_NO_SPACE)
            if marks != "," and marks != ":":
                for mark in marks:
                    if mark == "{" or mark == "[":
                        child_values: list[int] = []
                        if in_object:
                            containers.append(_container((mark == "{", top, key, -1, child_values, keys, {})))
                            pending = -1
                        else:
                            containers.append(
                                _container((mark == "{", top, None, items, child_values, keys, {}))
                            )
                            items += 1
                        stack.append((top, in_object, key, items, pending, strings))
                        top, in_object, key, items, pending = len(containers) - 1, mark == "{", None, 0, -1
                        strings = child_values
                    elif mark == "}" or mark == "]":
                        top, in_object, key, items, pending, strings = stack.pop()
            if plain is not None:
                if plain_value is not None:  # "key": "value"
                    if pending >= 0:
                        next_keys[pending] = plain
                    start = m.start() + len(gap)
                    end = m.end()
                    add(
                        (KEY, start, start + len(plain) + 2, plain, top, None,
                         STRING, end - len(plain_value) - 2, end, plain_value, top, plain)
                    )  # fmt: skip
                    key = plain
                    pending = n + 1
                    strings.append(pending)
                    n += 2
                    continue
                if bare_value is not None or opens is not None:  # "key": a number, literal, [ or {
                    if pending >= 0:
                        next_keys[pending] = plain
                    start = m.start() + len(gap)
                    key = plain
                    if bare_value and bare_value[0] in _NUMBER_START and bare_value != "-Infinity":
                        end = m.end()
                        add(
                            (KEY, start, start + len(plain) + 2, plain, top, None,
                             NUMBER, end - len(bare_value), end, bare_value, top, plain)
                        )  # fmt: skip
                        pending = n + 1
                        n += 2
                    else:  # true, false, null, NaN, Infinity, -Infinity, or a container
                        add((KEY, start, start + len(plain) + 2, plain, top, None))
                        pending = -1
                        n += 1
                    continue
                end = m.end()
                start = end - len(plain) - 2
                value = plain
                kind = STRING
            elif bare is not None:
                if bare[0] not in _NUMBER_START or bare == "-Infinity":
                    if in_object:
                        pending = -1
                    else:
                        items += 1
                    continue
                end = m.end()
                start = end - len(bare)
                value = bare
                kind = NUMBER
            elif quote is not None:
                start = m.end() - 1
                try:
                    value, end = scanstring(text, start + 1, False)
                except ValueError:
                    return None
                kind = STRING
            else:  # the end
                if top != -1 or m.end() != len(text):
                    return None  # not where the json module ended: the checking walk decides
                keys[:] = flat[5::6]
                return Document(
                    flat[0::6], flat[1::6], flat[2::6], flat[3::6], flat[4::6],  # type: ignore[arg-type]
                    keys, next_keys, positions, containers,
                )  # fmt: skip
            if not in_object:
                positions[n] = items
                items += 1
                add((kind, start, end, value, top, None))
            elif kind == STRING and marks[-1:] != ":":  # a key (its value follows later)
                if pending >= 0:
                    next_keys[pending] = value
                    pending = -1
                key = value
                add((KEY, start, end, value, top, None))
            else:
                if kind == STRING:
                    strings.append(n)
                pending = n
                add((kind, start, end, value, top, key))
            n += 1
            if quote is not None:
                pos = end
                break
        else:
            return None  # (a match always ends the text: an empty one if nothing else)


def _parse_checked(text: str, pos: int = 0) -> Document | None:
    """``parse``, checking the grammar at every step (for what the json module does not read)."""
    match = _ITEM.match
    literals_keys: list[str | None] = []  # filled at the end, for the containers
    rows: list[list] = []  # each literal's fields, as a list until its next key is known
    add = rows.append
    containers: list[Container] = []
    stack: list[int] = []  # open containers
    pending: list[list | None] = []  # per open object: its last value, waiting for the next key
    keys: list[str | None] = []  # per open container: the current key (objects)
    items: list[int] = []  # per open container: how many items it has had so far (lists)
    after_value = False  # the open container's last item was a value: a comma or the close is next
    after_key = False  # a key and its colon were read: a value is next
    m = match(text, pos)
    if m is None or m.lastgroup != "o" or m.group("comma") is not None:
        return None  # the root must be an object or a list
    values: list[list[int]] = [[]]  # per open container: its string values (objects)
    containers.append(_container((text[m.end() - 1] == "{", -1, None, -1, values[0], literals_keys, {})))
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
            values.pop()
            stack.pop()
            pending.pop()
            keys.pop()
            items.pop()
            if not stack:
                if _END.match(text, pos) is None:
                    return None
                return _from_rows(rows, containers, literals_keys)
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
            add([KEY, key_start, key_start + len(key) + 2, key, top, None, None, -1])
            keys[-1] = key
            last = pending[-1]
            if last is not None:
                last[6] = key
            if group == "k":
                pending[-1] = None
                after_key, after_value = True, False
                continue
            after_value = True
            if group == "vl":
                pending[-1] = None
                continue
            if group == "vs":
                literal = [STRING, m.start("vs") - 1, pos, m.group("vs"), top, key, None, -1]
                values[-1].append(len(rows))
            else:
                literal = [NUMBER, m.start("vn"), pos, m.group("vn"), top, key, None, -1]
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
                add([KEY, start, pos, string, top, None, None, -1])
                keys[-1] = string
                last = pending[-1]
                if last is not None:
                    last[6] = string
                    pending[-1] = None
                after_key, after_value = True, False
                pos = colon.end()
                continue
        if in_object and not expect_value:
            return None  # a value without a key
        # a value
        after_value = True
        if string is not None:
            literal = [STRING, start, pos, string, top, None, None, -1]
            _placed(literal, container, keys, pending, items)
            if in_object:
                values[-1].append(len(rows))
            add(literal)
        elif group == "o":  # [ or {
            is_object = text[pos - 1] == "{"
            child_values: list[int] = []
            if in_object:
                child = _container((is_object, top, keys[-1], -1, child_values, literals_keys, {}))
                pending[-1] = None
            else:
                child = _container((is_object, top, None, items[-1], child_values, literals_keys, {}))
                items[-1] += 1
            containers.append(child)
            stack.append(len(containers) - 1)
            pending.append(None)
            keys.append(None)
            items.append(0)
            values.append(child_values)
            after_value = False
        elif group == "n":
            literal = [NUMBER, m.start("n"), pos, m.group("n"), top, None, None, -1]
            _placed(literal, container, keys, pending, items)
            add(literal)
        elif in_object:
            pending[-1] = None
        else:
            items[-1] += 1


def _from_rows(rows: list[list], containers: list[Container], keys: list[str | None]) -> Document:
    columns: list[list] = [[] for _ in range(8)]
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
    keys.extend(columns[5])
    next_keys = {i: key for i, key in enumerate(columns[6]) if key is not None}
    positions = {i: place for i, place in enumerate(columns[7]) if place >= 0}
    kinds, starts, ends, values, owners = columns[:5]
    return Document(kinds, starts, ends, values, owners, keys, next_keys, positions, containers)


def _placed(
    literal: list,
    container: Container,
    keys: list[str | None],
    pending: list[list | None],
    items: list[int],
) -> None:
    if container.is_object:
        literal[5] = keys[-1]
        pending[-1] = literal
    else:
        literal[7] = items[-1]
        items[-1] += 1
