"""The AWS CLI's ``--output table`` and ``--output text``, read structurally.

In JSON, a value's key gives it context (``"OwnerId": "483920175526"``). The CLI's other two formats
move the key elsewhere, and the catalogue's key rules (patterns.py) cannot see it there:

- **table**: boxes drawn with ``+---+`` borders and ``|`` separators, nested sections one ``|``
  deeper on each side. A section has a centred title (the key that holds it), then either a header
  row naming its columns with value rows below, or ``|  Key  |  value  |`` rows (a one-row section
  is turned on its side when the table is too wide for the terminal).
- **text**: one line per structure: the key that holds it, in capitals (``DBINSTANCES``), then the
  values of its scalar members, tab-separated, sorted by member name (a list of structures prints
  every member any element has, empty where one lacks it). A list of scalars prints ``NAME<tab>value``
  per item; the top-level structure prints its values without a name.

This module maps each table cell and each text field back to its key, and asks the catalogue's own
rules about it by scanning the value inside a small synthetic JSON context (``{"Buckets": [{"Name":
"<value>"``): the key rules stay in one place. Which member a text field belongs to comes from the
structures' member lists (data/cli_shapes.json, generated from botocore's service models by
scripts/gen_cli_shapes.py): the fields are laid on the sorted members, each only where its type fits
(booleans, numbers, timestamps, ARNs), as many booleans under boolean members as can be; a field is
tried under every context member that some such alignment puts it at (over-masking is cheap, a leak
is not).

``may_hold`` is a compiled search or two that rejects text with no table border and no text-format
line, so other text costs next to nothing. The rest is linear in the text: lines of one listing
share their alignment, a (key, value) pair is asked about once per class of keys, many at a time, and
two budgets (``ALIGN_BUDGET``, ``JOB_BUDGET``) refuse a crafted text rather than spend seconds on it.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from . import mdtables, textmarks
from .errors import TooComplexError
from .scanner import Found, unescaped
from .textview import PAIR_NAME

Scan = Callable[[str], list[Found]]
"""Scans one synthetic text (the engine's ``find``)."""

_DATA = Path(__file__).with_name("data") / "cli_shapes.json"

# A table border (``+---+``, nested ``|+---+|``); a text-format line (a name in capitals, a tab), or a
# tab-separated line with an ARN field (a top-level structure). At a line start, or after an escaped
# newline, an opening quote or the "=" before a query argument's value.
_TABLE = re.compile(r"(?:^|\\n|[\"'=])[ \t]*\|*\+-{3}", re.M)
_TEXT = re.compile(r"(?:^|\\n|[\"'=])[A-Z][A-Z0-9]*(?:\t|\\t)|(?:\t|\\t)arn:", re.M)
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,127}")
_BORDER = re.compile(r"(\|*)\+-[-+]*\+(\|*)")
_DASHES = re.compile(r"-{5,}")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the CLI prints timestamps as ISO 8601
_EMPTY = ("", "None")
_MAX_WRAP = 4
"""A table row wrapped by a terminal is joined back from at most this many lines."""


def may_hold(text: str) -> bool:
    """False when ``text`` has no table border and no text-output line: nothing to do here."""
    if "|" in text and (_TABLE.search(text) or mdtables.may_hold(text)):
        return True
    # (a one-character test first: Python searches a text for an absent character with memchr, but
    # for an absent two-character string at about a millisecond per megabyte)
    if ("\t" in text or ("\\" in text and "\\t" in text)) and _TEXT.search(text) is not None:
        return True
    return textmarks.holds(text, "query") and _QUERY_COMMAND.search(text) is not None


# --------------------------------------------------------------------------------------------------
# What a key says: the catalogue decides
# --------------------------------------------------------------------------------------------------

# values no rule takes on their own, each of the shape some key rule wants
_PROBES = (
    "483920175526",  # an account ID
    "orders-prod-db-7",  # an RDS identifier, a bucket name
    "Zq8vR2mK7pL4xN9cT1bW6yH3jF5dS0gA+e/uVk2Q",  # a secret access key
    "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uX8zA1cD4fG7iL0oR3tU6wY9aB2dE5gH8jK1mN4pQ7sT0vW3yZ6bC9"
    "eF2hJ5kM8nP1rS4uX7zA0cD3fG6iL9oR2tU5wY8aB1dE4gH7jK0mN3pQ6sT9vW2yZ5=",  # a session token
    "5e1f0c2b7a9d4e3f8a6b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",  # an S3 canonical user ID
    "3f8a2b1c-4d5e-4f70-8192-a3b4c5d6e7f8",  # a UUID (a KMS key ID, an SSM command ID)
)


@lru_cache(maxsize=8192)
def context(parent: str, member: str, listed: bool) -> str:
    """The synthetic JSON that stands before a value of ``member`` in a structure held by ``parent``
    (in a list when ``listed``): what jsonbody.py gives the rules for the same value in JSON."""
    if not parent:
        return '{"' + member + '": "'
    return '{"' + parent + '": ' + ("[{" if listed else "{") + '"' + member + '": "'


def _hit(scan: Scan, prefix: str, value: str) -> Found | None:
    """What the rules find in ``value`` when it stands after ``prefix``, if that is the whole value
    (a key rule takes a whole value; a find inside one, such as the first word of a description, is
    not what the key says), with offsets into ``value``."""
    cut, stop = len(prefix), len(prefix) + len(value)
    for f in scan(prefix + value + '"}'):
        if f.start == cut and f.end == stop:
            return f._replace(start=0, end=len(value))
    return None


def _probe_scan(text: str) -> list[Found]:
    from .config import MaskerConfig
    from .engine import default_scanner

    return default_scanner().scan(text, MaskerConfig().enabled_categories, frozenset())


@lru_cache(maxsize=8192)
def key_class(parent: str, member: str, listed: bool) -> tuple[str | None, ...] | None:
    """What the catalogue makes of the probe values under this key: per probe, the rule that takes
    it whole (None: no rule), or None when no rule takes any. Keys of one class get the same verdicts
    (the rules decide on the key and the value), so a value is asked about once per class."""
    names = []
    for probe in _PROBES:
        hit = _hit(_probe_scan, context(parent, member, listed), probe)
        names.append(hit.rule.name if hit is not None else None)
    return tuple(names) if any(names) else None


@lru_cache(maxsize=4096)
def member_gives_context(parent: str, member: str) -> bool:
    """Whether a value under ``member`` (of a structure held by ``parent``) gets context from the
    catalogue's key rules: some probe value is found there (and not on its own: the probes need
    context)."""
    return any(key_class(parent, member, listed) is not None for listed in (True, False))


# --------------------------------------------------------------------------------------------------
# Structures of text output (data/cli_shapes.json)
# --------------------------------------------------------------------------------------------------


class _Struct(NamedTuple):
    index: int  # in the data file (what the alignment cache keys on)
    names: tuple[str, ...]  # scalar members, in the CLI's order
    codes: str  # per member: s string, a ARN, b boolean, i number, t timestamp
    flagged: tuple[int, ...]  # members that give their values context


class Shapes(NamedTuple):
    named: dict[str, list[tuple[str, list[_Struct]]]]  # NAME -> (member name, its structures)
    scalar_lists: dict[str, list[str]]  # NAME -> member names of lists of scalars
    top: dict[int, list[_Struct]]  # operation outputs (lines without a name), by member count


def catalogue_fingerprint() -> str:
    """What data/cli_shapes.json's flags were made from: the catalogue's rules (names and regexes) and
    the probes. The file records it; tests/test_cliformats.py says to regenerate the file when the
    catalogue has changed since (a new key rule flags members the file does not hold)."""
    from .patterns import RULES

    # (the regexes as Python 3.10 builds them: without the possessive quantifiers of 3.11, which
    # patterns.POSSESSIVE adds, so both make the same fingerprint)
    made_of = json.dumps(
        [
            [
                (rule.name, *(_POSSESSIVE.sub("", rx or "") for rx in (rule.regex, rule.items)))
                for rule in RULES
            ],
            _PROBES,
        ]
    )
    return hashlib.sha256(made_of.encode()).hexdigest()[:16]


_POSSESSIVE = re.compile(r"(?<=[*+?}])\+")


@lru_cache(maxsize=1)
def shapes() -> Shapes:
    data = json.loads(_DATA.read_text(encoding="utf-8"))
    structs = []
    for index, encoded in enumerate(data["structs"]):
        members = encoded.split("|") if encoded else []
        structs.append(
            _Struct(
                index,
                tuple(m[1:] for m in members),
                "".join(m[0].lower() for m in members),
                tuple(i for i, m in enumerate(members) if m[0].isupper()),
            )
        )
    named = {
        name: [(member, [structs[i] for i in ids]) for member, ids in by_member.items()]
        for name, by_member in data["named"].items()
    }
    top: dict[int, list[_Struct]] = {}
    for i in data["top"]:
        top.setdefault(len(structs[i].names), []).append(structs[i])
    return Shapes(named, data["scalar_lists"], top)


def _kind(value: str) -> str:
    """What a text-output value looks like: n(one), b(oolean), i(nteger), t(ime), a(rn), o(ther)."""
    if not value or value == "None":
        return "n"
    first = value[0]
    if first in _DIGITS:
        if _NUMBER.fullmatch(value):
            return "i"
        return "t" if _TIME.match(value) else "o"
    if value == "True" or value == "False":
        return "b"
    return "a" if first == "a" and value.startswith("arn:") else "o"


_DIGITS = frozenset("-0123456789")


_NO = -(10**6)
# (value kind, member code) -> score of putting the value there; missing: it cannot go there. Times
# and ARNs fit string members too (a KmsKeyId holds an ARN), numbers fit strings (account IDs,
# versions); a string member hardly ever holds "True", so booleans under boolean members pin the
# alignment down, and nothing else scores.
_SCORE: dict[tuple[str, str], int] = {
    **{("n", code): 0 for code in "sabit"},
    ("b", "b"): 1,
    ("b", "s"): -1,
    ("i", "i"): 0,
    ("i", "s"): 0,
    ("t", "t"): 0,
    ("t", "s"): 0,
    ("a", "a"): 0,
    ("a", "s"): 0,
    ("o", "s"): 0,
}


ALIGN_BUDGET = 4_000_000
"""Alignment work (values x members, not counting alignments already made) allowed per text: about
half a second, and some 200 times what all of tests/corpus/aws needs. Lines of one listing share
their alignments, so only a crafted text gets near it; beyond it the text is refused
(``TooComplexError``), not masked slowly or in part."""


def align(values: list[str], struct: _Struct, strict_arns: bool = False) -> dict[int, tuple[int, ...]]:
    """Field index -> the flagged members it can be, over every best way to lay ``values`` on the
    structure's members in order (each value where its type fits, as many booleans under boolean
    members as can be). Empty if none fits.

    ``strict_arns``: an ``arn:`` value must sit under an ARN member (for lines without a name)."""
    return _aligned(struct, "".join(map(_kind, values)), strict_arns, [ALIGN_BUDGET])


def _aligned(struct: _Struct, kinds: str, strict_arns: bool, budget: list[int]) -> dict[int, tuple[int, ...]]:
    """``align`` by value kinds, cached; ``budget`` (one number in a list) is charged with the work
    done, and must not run out."""
    key = (struct.index, kinds, strict_arns)
    found = _ALIGNED.get(key)
    if found is None:
        budget[0] -= len(kinds) * len(struct.codes)
        if budget[0] < 0:
            raise TooComplexError("AWS CLI text output too varied to mask")
        if len(_ALIGNED) >= 8192:
            _ALIGNED.clear()
        found = _ALIGNED[key] = _align(struct, kinds, strict_arns)
    return found


_ALIGNED: dict[tuple[int, str, bool], dict[int, tuple[int, ...]]] = {}
"""Alignments by structure and value kinds: the lines of one listing share them."""


def _align(struct: _Struct, kinds: str, strict_arns: bool) -> dict[int, tuple[int, ...]]:
    codes, n, m = struct.codes, len(kinds), len(struct.codes)
    if n > m or not struct.flagged:
        return {}
    score = dict(_SCORE)
    if strict_arns:
        del score[("a", "s")]
    rows = [[score.get((kind, code), _NO) for code in codes] for kind in kinds]
    # forward: best score of fields 0..i with field i at member j; backward: of fields i..n-1
    forward = [[_NO] * m for _ in range(n)]
    backward = [[_NO] * m for _ in range(n)]
    for i in range(n):
        best = 0 if i == 0 else _NO
        prev = forward[i - 1] if i else None
        row, out = rows[i], forward[i]
        for j in range(m):
            if best > _NO and row[j] > _NO:
                out[j] = best + row[j]
            if prev is not None and prev[j] > best:
                best = prev[j]
    for i in range(n - 1, -1, -1):
        best = 0 if i == n - 1 else _NO
        nxt = backward[i + 1] if i < n - 1 else None
        row, out = rows[i], backward[i]
        for j in range(m - 1, -1, -1):
            if best > _NO and row[j] > _NO:
                out[j] = best + row[j]
            if nxt is not None and nxt[j] > best:
                best = nxt[j]
    top = max(forward[n - 1]) if n else _NO
    if top <= _NO // 2:
        return {}
    found: dict[int, list[int]] = {}
    for j in struct.flagged:
        for i in range(n):
            if rows[i][j] > _NO and forward[i][j] + backward[i][j] - rows[i][j] == top:
                found.setdefault(i, []).append(j)
    return {i: tuple(js) for i, js in found.items()}


# --------------------------------------------------------------------------------------------------
# Cells: a value, where it stands, and the keys it may be under
# --------------------------------------------------------------------------------------------------


class Cell(NamedTuple):
    start: int  # in the text parsed
    end: int
    keys: tuple[tuple[str, str, bool], ...]  # (parent, member, listed) to try, in order


# Where a line opens or closes a quoted string (the engine scans a JSON value with its key before it
# and the next key after it; text output may sit in an escaped string): the table or text line starts
# after the opening quote, and ends before the closing one.
_QUOTED_HEAD = re.compile(r"[^\t|]*[\"'](?=[ \t]*(?:[|+]|-{5}|[^\t\"']*\t))")
_QUOTED_TAIL = re.compile(r"[\"'][ \t]*(?:[,:}\]][^\t|]*)?$")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Each line (without its end) and its offset; without the quotes of a string it opens or closes."""
    start = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if '"' in body or "'" in body:
            head = _QUOTED_HEAD.match(body)
            cut = head.end() if head else 0
            tail = _QUOTED_TAIL.search(body, cut)
            yield start + cut, body[cut : tail.start() if tail else len(body)]
        else:
            yield start, body
        start += len(line)


def _strip(text: str, start: int, end: int, chars: str = " \t\r\n") -> tuple[int, int]:
    """The span of ``text[start:end]`` without ``chars`` at either end."""
    part = text[start:end]
    kept = part.strip(chars)
    if len(kept) == len(part):
        return start, end
    if not kept:
        return start, start
    start += len(part) - len(part.lstrip(chars))
    return start, start + len(kept)


_EDGE = " \t\"',"
"""What may stand around a line's first and last field (text output quoted in a string)."""


Plan = tuple[tuple[int, tuple[tuple[str, str, bool], ...]], ...]
"""Per field (index) of a text line, the keys to try it under."""
_PLANS: dict[tuple[str, str], Plan] = {}
"""Plans by line name ("" for a top-level line) and value kinds: the lines of one listing share them."""


_FEWEST_SHARE = 3


def _plan(head: str, kinds: str, budget: list[int]) -> Plan:
    key = (head, kinds)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    data = shapes()
    keys: dict[int, list[tuple[str, str, bool]]] = {}
    if head:
        if len(kinds) == 1:
            for member in data.scalar_lists.get(head, ()):
                keys.setdefault(0, []).append(("", member, False))
        for member, structs in data.named.get(head, ()):
            for struct in structs:
                # (a line of a third of a structure's members or fewer is not its line: the CLI prints
                # every member a response holds, and a few values fit a long structure in many ways)
                if len(struct.codes) >= len(kinds) and len(kinds) * _FEWEST_SHARE > len(struct.codes):
                    for i, js in _aligned(struct, kinds, False, budget).items():
                        keys.setdefault(i, []).extend((member, struct.names[j], True) for j in js)
    else:
        for struct in data.top.get(len(kinds), ()):
            for i, js in _aligned(struct, kinds, True, budget).items():
                keys.setdefault(i, []).extend(("", struct.names[j], False) for j in js)
    plan = tuple((i, tuple(dict.fromkeys(ks))) for i, ks in sorted(keys.items()) if kinds[i] != "n")
    if len(_PLANS) >= 8192:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


# A map's values, printed without their keys: Lambda's environment variables (get-function-configuration
# --output text: ENVIRONMENT, then VARIABLES<tab><value><tab>...). Each is asked as a resource's name,
# as under a key such as DATA_TABLE: a name with a hyphen, dot or digit is masked (a bucket, a table,
# a queue: over-masking is cheap), plain words, numbers, regions and versions stay.
_KEYLESS_MAPS: dict[str, tuple[tuple[str, str, bool], ...]] = {"VARIABLES": (("", "DATA_TABLE", False),)}


def text_cells(text: str) -> list[Cell]:
    """The fields of ``--output text`` lines that some member with context may hold."""
    data = shapes()
    named, scalar_lists = data.named, data.scalar_lists
    budget = [ALIGN_BUDGET]
    out: list[Cell] = []
    for offset, line in _lines(text):
        tab = line.find("\t")
        if tab < 0:
            continue
        head = line[:tab].strip(_EDGE)
        keyless = _KEYLESS_MAPS.get(head)  # (each field a value whose key the CLI left out)
        known = keyless is not None or head in named or head in scalar_lists
        if not known and "arn:" not in line:
            continue
        bounds = []
        pos = offset
        for field in line.split("\t"):
            bounds.append((pos, pos + len(field)))
            pos += len(field) + 1
        bounds[0] = _strip(text, *bounds[0], _EDGE)
        bounds[-1] = _strip(text, *bounds[-1], _EDGE)
        if known:
            bounds = bounds[1:]
        elif not any(text.startswith("arn:", a) for a, _b in bounds):
            continue
        if keyless is not None:
            out += [Cell(a, b, keyless) for a, b in bounds if b > a]
            continue
        kinds = "".join([_kind(text[a:b]) for a, b in bounds])
        planned = _plan(head if known else "", kinds, budget)
        if head in _PAIR_HEADS and len(bounds) in (2, 3):  # name, value (and a resolved value)
            pair_key = _pair_key(text, bounds[0])
            if pair_key is not None:
                out.append(Cell(*bounds[1], (pair_key, *dict(planned).get(1, ()))))
                planned = tuple((i, keys) for i, keys in planned if i != 1)
        for i, keys in planned:
            out.append(Cell(*bounds[i], keys))
    return out


# --------------------------------------------------------------------------------------------------
# The output of a command with --query: values with no key at all
# --------------------------------------------------------------------------------------------------

# `aws <service> <operation> ... --query <expression> ...` (a prompt before it, maybe; the rest of the
# line); its output follows on the next lines
_QUERY_COMMAND = re.compile(
    r"\baws[ \t]+[a-z0-9-]+[ \t]+[a-z0-9-]+[^\n]*?[ \t]--query[ \t=]+"
    r"(\'[^\'\n]{1,400}\'|\"[^\"\n]{1,400}\"|[^\s\'\"]{1,400})[^\n]*(?:\n|\Z)"
)
_QUERY_LITERAL = re.compile(r"\'[^\']*\'|`[^`]*`|\"[^\"]*\"")
_QUERY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_(])")
_QUERY_PARENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[")
# where the output ends: an empty line, a prompt or another command
_QUERY_OUTPUT_END = re.compile(r"[ \t\r]*(?:$|[$#%>][ \t]|PS[ >]|aws[ \t])")
_QUERY_TOKEN = re.compile(r"[^\s,\[\]\"'|]+")
_QUERY_MAX_LINES = 5000
_QUERY_MAX_VALUES = 10_000
_QUERY_SKIP = frozenset(("None", "null", "true", "false", "True", "False"))


def _query_keys(expression: str) -> tuple[tuple[str, str, bool], ...]:
    """The (parent, member, listed) keys a value printed by ``--query <expression>`` may stand under: each
    name the expression selects, in each list it walks (and at the top level)."""
    expression = expression.strip("'\"")
    expression = _QUERY_LITERAL.sub("", expression)  # filter literals: Tags[?Key=='Name']
    parents = list(dict.fromkeys(_QUERY_PARENT.findall(expression)))[:4]
    members = list(dict.fromkeys(_QUERY_NAME.findall(expression)))[:12]
    keys = [("", m, False) for m in members]
    keys += [(p, m, True) for p in parents for m in members if m != p]
    return tuple(keys)


# a member renamed in a --query expression's multiselect hash: {ID:DBInstanceIdentifier,Engine:Engine}
_QUERY_ALIAS = re.compile(
    r"(?<=[{,])[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*([A-Za-z_][A-Za-z0-9_]*)(?=[ \t]*[,}])"
)


def query_aliases(text: str) -> dict[str, str]:
    """The names a table's columns get from the ``--query`` expressions in ``text`` (``ID`` for
    ``{ID:DBInstanceIdentifier}``): alias -> the member it stands for."""
    return {
        alias: member
        for command in _QUERY_COMMAND.finditer(text)
        for alias, member in _QUERY_ALIAS.findall(command[1])
        if alias != member
    }


def _unaliased(cells: list[Cell], aliases: dict[str, str]) -> list[Cell]:
    """``cells`` with, after each key that is an alias, the member it stands for."""
    out = []
    for cell in cells:
        keys: list[tuple[str, str, bool]] = []
        for parent, member, listed in cell.keys:
            keys.append((parent, member, listed))
            if member in aliases:
                keys += ((parent, aliases[member], listed), ("", aliases[member], False))
        out.append(cell._replace(keys=tuple(keys)) if len(keys) > len(cell.keys) else cell)
    return out


def query_cells(text: str) -> list[Cell]:
    """The values printed after an ``aws ... --query <expression>`` command line (text, JSON or table
    output alike: its words), each to try under every name the expression selects. Over-masking is
    cheap: a value that no key rule takes under any of them stays."""
    out: list[Cell] = []
    for command in _QUERY_COMMAND.finditer(text):
        keys = _query_keys(command[1])
        if not keys:
            continue
        pos = command.end()
        for _ in range(_QUERY_MAX_LINES):
            if pos >= len(text):
                break
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            if _QUERY_OUTPUT_END.match(text, pos, end):
                break
            for token in _QUERY_TOKEN.finditer(text, pos, end):
                if token[0] not in _QUERY_SKIP:
                    out.append(Cell(token.start(), token.end(), keys))
            if len(out) >= _QUERY_MAX_VALUES:
                return out
            pos = end + 1
    return out


class _Row(NamedTuple):
    depth: int
    cells: list[tuple[int, int]]  # stripped cell spans


def _table_lines(text: str) -> Iterator[tuple[str, int | _Row]]:
    """Each line of a table region as ("border", depth), ("row", _Row) or ("other", 0). A row a
    terminal wrapped (no closing ``|``) is joined with the lines that continue it."""
    lines = list(_lines(text))
    k = 0
    while k < len(lines):
        offset, line = lines[k]
        k += 1
        body = line.strip()
        m = _BORDER.fullmatch(body)
        if m and len(m[1]) == len(m[2]):
            yield "border", len(m[1])
            continue
        if not body.startswith("|"):
            yield ("border", -1) if _DASHES.fullmatch(body) else ("other", 0)
            continue
        indent = line.index("|")
        start = offset + indent
        end = offset + len(line.rstrip())
        joined = 1
        while not text[start:end].endswith("|") and k < len(lines) and joined < _MAX_WRAP:
            nxt_offset, nxt = lines[k]
            # the next row or border starts where this one did; a continuation anywhere else
            if (nxt[indent : indent + 1] in ("|", "+") and not nxt[:indent].strip()) or not nxt.strip():
                break
            end = nxt_offset + len(nxt.rstrip())
            k += 1
            joined += 1
        if not text[start:end].endswith("|"):
            yield "other", 0
            continue
        lead = len(text[start:end]) - len(text[start:end].lstrip("|"))
        trail = len(text[start:end]) - len(text[start:end].rstrip("|"))
        depth = min(lead, trail) - 1
        inner_start, inner_end = start + depth + 1, end - depth - 1
        cells = []
        pos = inner_start
        for part in text[inner_start:inner_end].split("|"):
            cells.append(_strip(text, pos, pos + len(part)))
            pos += len(part) + 1
        yield "row", _Row(depth, cells)


def _centred(text: str, row: _Row) -> bool:
    """A title or header cell is centred; a value is left-aligned two blanks in (none if it overflows)."""
    start = row.cells[0][0]
    pad = 0
    while start - pad - 1 >= 0 and text[start - pad - 1] == " ":
        pad += 1
    return pad not in (0, 2)


# A name/value pair's members (tags, CloudFormation parameters and outputs, SSM parameters): the value
# gets the verdict of the key its name names, as in JSON (textview.paired), in a table row and in a text
# output line.
_PAIR_COLUMNS = (
    ("ParameterKey", "ParameterValue"),
    ("OutputKey", "OutputValue"),
    ("Key", "Value"),
    ("Name", "Value"),
    ("TagKey", "TagValue"),
    ("key", "value"),
    ("name", "value"),
)
_PAIR_HEADS = frozenset(("TAGS", "TAGSET", "TAGLIST", "PARAMETERS", "OUTPUTS", "RESOURCETAGS", "ENVIRONMENT"))
"""Text output lines of name/value pairs: their name, then their value (members sorted by name). (An
ECS or Batch container's ``ENVIRONMENT<tab>ORDERS_BUCKET<tab>...``.)"""


def _pair_columns(names: list[str | None]) -> tuple[int, int] | None:
    """The columns of a name and its value, in a table's header, if it has both."""
    for name_key, value_key in _PAIR_COLUMNS:
        if name_key in names and value_key in names:
            return names.index(name_key), names.index(value_key)
    return None


def _pair_key(text: str, span: tuple[int, int]) -> tuple[str, str, bool] | None:
    name = text[span[0] : span[1]]
    return ("", name, False) if PAIR_NAME.fullmatch(name) else None


def table_cells(text: str) -> list[Cell]:
    """Table cells with their column header (or, in a ``Key | value`` row, their key) and section
    title."""
    out: list[Cell] = []
    items = list(_table_lines(text))
    n = len(items)
    k = 0

    def word(span: tuple[int, int]) -> str | None:
        key = text[span[0] : span[1]]
        return key if _KEY.fullmatch(key) else None

    while k < n:
        what, row = items[k]
        k += 1
        # a section: a one-cell title row between two borders (or the top line and a border)
        if what != "row" or len(row.cells) != 1 or k >= n or items[k][0] != "border":  # type: ignore[union-attr]
            continue
        # (a table pasted without its top line starts here; a section with no rows of its own, only
        # sections, has its title row right above its first section's)
        if k >= 2 and items[k - 2][0] != "border":
            what_above, above = items[k - 2]
            if not (what_above == "row" and len(above.cells) == 1 and above.depth < row.depth):  # type: ignore[union-attr]
                continue
        depth = row.depth  # type: ignore[union-attr]
        title = word(row.cells[0]) or ""  # type: ignore[union-attr]
        k += 1
        group: list[_Row] = []
        while k < n and items[k][0] == "row" and items[k][1].depth == depth:  # type: ignore[union-attr]
            group.append(items[k][1])  # type: ignore[arg-type]
            k += 1
        if not group:
            continue
        rows: list[_Row] = []
        header: _Row | None = None
        if len(group) == 1 and k + 1 < n and items[k][0] == "border" and items[k + 1][0] == "row":
            nxt: _Row = items[k + 1][1]  # type: ignore[assignment]
            width = len(group[0].cells)
            same = nxt.depth == depth and len(nxt.cells) == width
            if same and (width > 1 or _centred(text, group[0])):
                header = group[0]
                k += 1
                while k < n and items[k][0] == "row":
                    r: _Row = items[k][1]  # type: ignore[assignment]
                    if r.depth != depth or len(r.cells) != width:
                        break
                    rows.append(r)
                    k += 1
        listed = header is not None and len(rows) > 1
        if header is not None:
            names = [word(span) for span in header.cells]
            pair = _pair_columns(names)
            for r in rows:
                pair_key = _pair_key(text, r.cells[pair[0]]) if pair else None
                for column, (name, span) in enumerate(zip(names, r.cells, strict=False)):
                    if name and span[0] < span[1]:
                        keys = ((title, name, listed), (title, name, not listed))
                        if pair_key and column == pair[1]:  # type: ignore[index]
                            keys = (pair_key, *keys)
                        out.append(Cell(*span, keys))
            continue
        for r in group:
            if len(r.cells) == 2:
                key = word(r.cells[0])
                if key and r.cells[1][0] < r.cells[1][1]:
                    out.append(Cell(*r.cells[1], ((title, key, False), (title, key, True))))
            elif len(r.cells) == 1 and title and r.cells[0][0] < r.cells[0][1]:
                out.append(Cell(*r.cells[0], (("", title, False),)))
    return out


# --------------------------------------------------------------------------------------------------
# The hook
# --------------------------------------------------------------------------------------------------


JOB_BUDGET = 50_000
"""Distinct (key, value) questions, and keys, allowed per text (under a second of
scanning); beyond, the text is refused (``TooComplexError``)."""
_CLASS_CONTEXT: dict[tuple[str | None, ...], str] = {}
"""A context for each class of keys (``key_class``): the first key of the class seen."""

# Synthetic records are scanned many at a time, apart by more than any rule looks around a value (the
# account rule's 200 characters), and on lines of their own.
_SEPARATOR = "\n" + " " * 240 + "\n"
_BATCH = 512


def _scan_batched(scan: Scan, jobs: list[tuple[str, str]]) -> list[Found | None]:
    """``_hit`` for each (prefix, value), in few scans: one per ``_BATCH`` records."""
    out: list[Found | None] = []
    for first in range(0, len(jobs), _BATCH):
        chunk = jobs[first : first + _BATCH]
        starts = []
        parts = []
        pos = 0
        for prefix, value in chunk:
            record = prefix + value + '"}'
            starts.append(pos + len(prefix))
            parts.append(record)
            pos += len(record) + len(_SEPARATOR)
        hits: list[Found | None] = [None] * len(chunk)
        for f in scan(_SEPARATOR.join(parts)):
            k = bisect_right(starts, f.start) - 1
            if k >= 0 and f.start == starts[k] and f.end == starts[k] + len(chunk[k][1]) and hits[k] is None:
                hits[k] = f._replace(start=0, end=len(chunk[k][1]))
        out.extend(hits)
    return out


def finds(text: str, scan: Scan, main: list[Found] = ()) -> list[Found]:  # type: ignore[assignment]
    """Identifiers that table cells and text-output fields of ``text`` hold by their key, offsets into
    ``text``, in order, not overlapping. Call only when ``may_hold(text)``. Cells where an identifier
    of ``main`` (the catalogue's finds in ``text``) stands are left to it."""
    view, source = unescaped(text)
    starts = [f.start for f in main]

    def taken(start: int, end: int) -> bool:
        if source is not None:
            start, end = source(start), source(end)
        k = bisect_right(starts, start)
        return bool((k and main[k - 1].end > start) or (k < len(main) and main[k].start < end))

    cells = []
    if "\t" in view and _TEXT.search(view):
        cells += text_cells(view)
    if "|" in view and _TABLE.search(view):
        tables = table_cells(view)
        aliases = query_aliases(view) if "--query" in view else None
        cells += _unaliased(tables, aliases) if aliases else tables
    if "--query" in view:
        cells += query_cells(view)
    if "|" in view and mdtables.may_hold(view):  # Markdown and psql tables
        cells += [Cell(*cell) for cell in mdtables.cells(view)]
    if not cells:
        return []
    # every (class of key, value) to ask about, once: a listing repeats its values and its keys
    todo: list[tuple[Cell, list[tuple[str, str]]]] = []
    jobs: dict[tuple[str, str], int] = {}
    seen: set[tuple[int, int]] = set()
    asked: dict[tuple[str, str, bool], str | None] = {}  # key -> the context of its class
    budget = JOB_BUDGET
    for cell in cells:
        if (cell.start, cell.end) in seen or taken(cell.start, cell.end):
            continue
        seen.add((cell.start, cell.end))
        value = view[cell.start : cell.end]
        if "\n" in value:  # a value a terminal wrapped: the rules see it joined, its span is masked whole
            value = "".join(part.strip() for part in value.split("\n"))
        keys = []
        for named in cell.keys:
            if named in asked:
                prefix = asked[named]
            else:  # a new key costs a scan per probe (once per process, mostly)
                budget -= len(_PROBES)
                kind = key_class(*named)
                prefix = asked[named] = (
                    None if kind is None else _CLASS_CONTEXT.setdefault(kind, context(*named))
                )
            if prefix is None:
                continue
            key = (prefix, value)
            if key not in jobs:
                jobs[key] = len(jobs)
                budget -= 1
            keys.append(key)
        if keys:
            todo.append((cell, keys))
        if budget < 0:
            raise TooComplexError("AWS CLI output too varied to mask")
    hits = _scan_batched(scan, list(jobs))
    found: list[Found] = []
    for cell, keys in todo:
        for key in keys:  # the first key that says something
            hit = hits[jobs[key]]
            if hit is not None:
                found.append(hit._replace(start=cell.start, end=cell.end))
                break
    found.sort(key=lambda f: f.start)
    out: list[Found] = []
    end = -1
    for f in found:
        if f.start >= end:
            out.append(f if source is None else f._replace(start=source(f.start), end=source(f.end)))
            end = f.end
    return out


def merge(main: list[Found], extra: list[Found]) -> list[Found]:
    """``main`` (the catalogue's scan) with the ``extra`` finds that overlap none of its finds, in
    order: where both find something, the catalogue's find wins."""
    if not extra:
        return main
    starts = [f.start for f in main]
    kept = []
    for f in extra:
        k = bisect_right(starts, f.start)
        if (k and main[k - 1].end > f.start) or (k < len(main) and main[k].start < f.end):
            continue
        kept.append(f)
    return sorted([*main, *kept], key=lambda f: f.start) if kept else main
