"""Where in a text a catalogue rule can start, found by Hyperscan in one pass.

The catalogue states, per rule, a *prefilter contract* (``Rule.anchors`` / ``Rule.host_anchors`` in
patterns.py): every match of the rule begins with one of its anchors, or, for hostnames, contains one
of its host anchors with only host characters from the rule's start up to it. Every rule also needs
a character other than ``[A-Za-z0-9]`` (or the start of the text) right before its first character.

So a rule can match only where one of its own anchors starts after such a character, and the
scanner tries, at each position reported here, only the rules reported with it: a superset of where
(and which) rules can match. Hyperscan scans a whole set of patterns in one pass in compiled code
(in a micro-benchmark, about 15x the throughput of one `re` alternation);
the exact rules, validators and "first rule in catalogue order wins" stay in Python ``re``.

A long text is scanned in windows of about ``WINDOW`` characters, and its hits are handed out window
by window: memory for the scan stays small whatever the text's size (a 10 MB text is not copied
whole, nor are all its hits held at once). A window ends right after a character that is not a host
character, so no run of host characters spans two windows, and each window's scan reads on past its
end by the widest anchor, so an anchor that starts in the window is found whole.

``tests/test_prefilter.py`` checks the contract rule by rule against ``re`` at every position of
generated and corpus text, also with tiny windows, and the scanner built on it against the plain
word-by-word scan.
"""

from __future__ import annotations

import bisect
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

from .patterns import HOST_CHARS, Rule

try:
    import hyperscan
except ImportError:  # pragma: no cover - no wheel for this platform; the scanner falls back to ``re``
    hyperscan = None

AVAILABLE = hyperscan is not None

# The character before a rule's start: the text is scanned with a leading newline, so the start of the
# text qualifies too, and every reported start offset in the padded data is the rule's offset in the text.
_BEFORE = "[^A-Za-z0-9]"
# ``match(text, lo, hi)``: everything up to and including the last non-host character in [lo, hi).
_LAST_NON_HOST = re.compile(f".*[^{HOST_CHARS}]", re.S)
_NON_HOST = re.compile(f"[^{HOST_CHARS}]")
SHIFT = 10
MASK = (1 << SHIFT) - 1  # a hit's pattern id: hit & MASK; its offset: hit >> SHIFT
WINDOW = 1 << 16
"""Characters per scan window (a window ends at the first non-host character from there on)."""

if sys.version_info >= (3, 11):
    from re import _parser as _sre_parse
else:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse


def max_width(regex: str) -> int:
    """The most characters a match of ``regex`` can span (raises for an unbounded one)."""
    width = _sre_parse.parse(regex).getwidth()[1]
    if width >= _sre_parse.MAXREPEAT:
        raise ValueError(f"prefilter anchor {regex!r} has no bounded width")
    return width


def first_chars(regex: str) -> frozenset[str] | None:
    """The characters a match of ``regex`` can begin with, all ASCII; None when that is not plain
    from its first item (a lookaround, a category such as ``\\d``, a negated class, a flag, a character
    outside ASCII, an empty match): then any character may begin one. Read from the parsed pattern:
    a literal, a class of literals and ranges, or a group or alternation of those."""
    return _first(_sre_parse.parse(regex)) if not _sre_parse.parse(regex).state.flags & re.I else None


def _first(items: Any) -> frozenset[str] | None:
    if not len(items):
        return None
    op, av = items[0]
    chars: set[str] = set()
    if op == _sre_parse.LITERAL:
        chars.add(chr(av))
    elif op == _sre_parse.IN:
        for item_op, item in av:
            if item_op == _sre_parse.LITERAL:
                chars.add(chr(item))
            elif item_op == _sre_parse.RANGE:
                chars.update(map(chr, range(item[0], item[1] + 1)))
            else:  # a negation, a category
                return None
    elif op == _sre_parse.BRANCH:
        for alternative in av[1]:
            alternative_chars = _first(alternative)
            if alternative_chars is None:
                return None
            chars |= alternative_chars
    elif op == _sre_parse.SUBPATTERN and not av[1] and not av[2]:  # a group without flags
        return _first(av[3])
    else:
        return None
    return frozenset(chars) if all(c.isascii() for c in chars) else None


class Prefilter:
    """Compiled anchors of a rule set. Thread-safe: each thread gets its own Hyperscan scratch space.

    There is one Hyperscan pattern per (rule, anchor), numbered in catalogue order. A *hit* is one
    int, ``offset << SHIFT | pattern``: sorted hits come in offset order, and at one offset in
    catalogue order of their rules (``rule_of[pattern]``), which is the order the rules are tried in.
    """

    def __init__(self, rules: tuple[Rule, ...], window: int = WINDOW) -> None:
        if hyperscan is None:
            raise RuntimeError("the hyperscan package is not installed")
        if window < 1:
            raise ValueError(f"the prefilter window must be at least 1 character, not {window}")
        expressions: list[bytes] = []
        flags: list[int] = []
        rule_of: list[int] = []
        host_length: list[int] = []  # per pattern: the host anchor's length, 0 for a start anchor
        for i, rule in enumerate(rules):
            for anchor in rule.anchors:
                expressions.append(f"{_BEFORE}(?:{anchor})".encode())
                flags.append(hyperscan.HS_FLAG_SOM_LEFTMOST)
                rule_of.append(i)
                host_length.append(0)
            for literal in rule.host_anchors:
                expressions.append(re.escape(literal).encode())
                flags.append(0)
                rule_of.append(i)
                host_length.append(len(literal))
        if len(expressions) > MASK + 1:  # pragma: no cover - a catalogue this large needs a wider key
            raise ValueError(f"at most {MASK + 1} prefilter patterns")
        self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._database.compile(
            expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
        )
        self.rule_of = tuple(rule_of)
        self._host_length = tuple(host_length)
        self._window = window
        # how far past a window's end its scan reads: an anchor starting inside is then found whole
        self._overlap = max(
            [max_width(anchor) for rule in rules for anchor in rule.anchors]
            + [len(literal) for rule in rules for literal in rule.host_anchors]
        )
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch

    def windows(self, text: str) -> Iterator[list[int]]:
        """The hits (see the class) in ``text``, window by window: the only places where a rule may
        start, each with a rule that may match there. Each list is sorted and all of it lies before
        the next one."""
        hosts: list[int] = []
        add_host, host_length = hosts.append, self._host_length
        base = 0  # the text offset of the current window's first character
        hits: list[int] = []
        add_hit = hits.append

        def on_match(pattern: int, start: int, end: int, flags: int, context: object) -> None:
            length = host_length[pattern]
            if length:  # a host anchor: where it starts (the rule starts where its run does)
                add_host((base + end - 1 - length) << SHIFT | pattern)
            else:  # start: the character before the anchor in the data = the anchor in the text
                add_hit((base + start) << SHIFT | pattern)

        database, scratch, n = self._database, self._scratch(), len(text)
        while base < n:
            end = base + self._window
            if end < n:  # on to just after the next non-host character (no run spans windows)
                m = _NON_HOST.search(text, end - 1)
                end = m.end() if m else n
            # The data starts one character early: the character before the window (or a newline at
            # the start of the text), which every anchor's leading [^A-Za-z0-9] may need. One byte
            # per character (anything outside ASCII becomes "?", which no anchor contains), so data
            # offset d is text offset base - 1 + d.
            piece = text[base - 1 if base else 0 : end + self._overlap]
            data = (b"" if base else b"\n") + piece.encode("ascii", "replace")
            # (arguments by position: data, match_event_handler, flags, context, scratch; by keyword, the
            # extension decodes and looks up each keyword's name per call, about 1 us)
            database.scan(data, on_match, 0, None, scratch)
            if hosts:
                hits += host_run_starts(text, [h for h in hosts if h >> SHIFT < end], base)
                hosts.clear()
            hits.sort()
            if end < n:  # hits from the read-on past the window belong to the next one
                del hits[bisect.bisect_left(hits, end << SHIFT) :]
            yield hits
            hits = []
            add_hit = hits.append
            base = end


def host_run_starts(text: str, anchors: list[int], lo: int = 0) -> list[int]:
    """For each hit in ``anchors`` (whose offsets lie inside hostnames), the same hit at the offset
    where that hostname's run of host characters starts; each such hit once.

    Once, because a long run can hold many anchors ("a.amazonaws.com.a.amazonaws.com..."): the scanner
    would try the rule from the run's start for every copy, each try as long as the run. Linear
    overall: each search covers only the text since the previous anchor; if that text holds no
    non-host character, the anchor is in the previous anchor's run. ``lo``: no run starts before it."""
    out: set[int] = set()
    previous = run_start = lo
    for hit in sorted(anchors):
        anchor = hit >> SHIFT
        m = _LAST_NON_HOST.match(text, previous, anchor)
        if m is not None:
            run_start = m.end()
        out.add(run_start << SHIFT | hit & MASK)
        previous = anchor
    return list(out)
