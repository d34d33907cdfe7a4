"""Where in a text a catalogue rule can start, found by Hyperscan in one pass.

The catalogue states, per rule, a *prefilter contract* (``Rule.anchors`` / ``Rule.host_anchors`` in
patterns.py): every match of the rule begins with one of its anchors, or, for hostnames, contains one
of its host anchors with only host characters from the rule's start up to it. Every rule also needs
a character other than ``[A-Za-z0-9]`` (or the start of the text) right before its first character.

So a rule can match only where one of its own anchors starts after such a character, and the
scanner tries, at each position reported here, only the rules reported with it: a superset of where
(and which) rules can match. Hyperscan scans a whole set of patterns in one pass in compiled code
(peers.md §3.2);
the exact rules, validators and "first rule in catalogue order wins" stay in Python ``re``.

``tests/test_prefilter.py`` checks the contract rule by rule against ``re`` at every position of
generated and corpus text, and the scanner built on it against the plain word-by-word scan.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from .patterns import Rule

try:
    import hyperscan
except ImportError:  # pragma: no cover - no wheel for this platform; the scanner falls back to ``re``
    hyperscan = None

AVAILABLE = hyperscan is not None

# The character before a rule's start: the text is scanned with a leading newline, so the start of the
# text qualifies too, and every reported start offset in the padded data is the rule's offset in the text.
_BEFORE = "[^A-Za-z0-9]"
# ``match(text, lo, hi)``: everything up to and including the last non-host character in [lo, hi).
_LAST_NON_HOST = re.compile(r".*[^A-Za-z0-9.-]", re.S)
_PATTERNS = 1024  # pattern ids are below this


class Prefilter:
    """Compiled anchors of a rule set. Thread-safe: each thread gets its own Hyperscan scratch space."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        if hyperscan is None:  # pragma: no cover - see AVAILABLE
            raise RuntimeError("the hyperscan package is not installed")
        starts = sorted({a for rule in rules for a in rule.anchors})
        hosts = sorted({h for rule in rules for h in rule.host_anchors})
        expressions = [f"{_BEFORE}(?:{a})".encode() for a in starts] + [re.escape(h).encode() for h in hosts]
        # pattern id -> the rules (catalogue indices, ascending) that own the anchor
        self._owners = [tuple(i for i, r in enumerate(rules) if a in r.anchors) for a in starts] + [
            tuple(i for i, r in enumerate(rules) if h in r.host_anchors) for h in hosts
        ]
        self._database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._database.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=[hyperscan.HS_FLAG_SOM_LEFTMOST] * len(starts) + [0] * len(hosts),
        )
        if len(expressions) > _PATTERNS:  # pragma: no cover - a catalogue this large needs a wider key
            raise ValueError(f"at most {_PATTERNS} prefilter patterns")
        self._host_ids = len(starts)
        self._host_lengths = [len(h) for h in hosts]
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
        return scratch

    def candidates(self, text: str) -> list[tuple[int, tuple[int, ...]]]:
        """``(offset, rules)`` in ascending offset order: the only places in ``text`` where a rule may
        start, each with the only rules (catalogue indices, ascending) that may match there."""
        # A hit is one int, offset * _PATTERNS + pattern id: ints sort fast, and in offset order.
        hits: list[int] = []
        hosts: list[tuple[int, int]] = []
        first_host, host_lengths = self._host_ids, self._host_lengths
        add_hit, add_host = hits.append, hosts.append

        def on_match(pattern: int, start: int, end: int, flags: int, context: object) -> None:
            if pattern < first_host:
                add_hit(start * _PATTERNS + pattern)  # start: the character before the anchor, padded
            else:
                add_host((end - 1 - host_lengths[pattern - first_host], pattern))

        # One byte per character (anything outside ASCII becomes "?", which no anchor contains), so
        # offsets in the data are offsets in the text.
        data = b"\n" + text.encode("ascii", "replace")
        self._database.scan(data, match_event_handler=on_match, scratch=self._scratch())
        if hosts:
            hits += [start * _PATTERNS + pattern for start, pattern in host_run_starts(text, hosts)]
        hits.sort()
        owners = self._owners
        out: list[tuple[int, tuple[int, ...]]] = []
        previous = -1
        for hit in hits:
            start, pattern = divmod(hit, _PATTERNS)
            if start != previous:
                out.append((start, owners[pattern]))
                previous = start
            else:  # several anchors start here: their rules, merged
                out[-1] = (start, _merged(out[-1][1], owners[pattern]))
        return out


@lru_cache(maxsize=256)
def _merged(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted({*a, *b}))


def host_run_starts(text: str, anchors: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each ``(offset, pattern)`` in ``anchors`` (offsets inside hostnames), ``(start, pattern)``
    where ``start`` is where the offset's run of host characters starts.

    Linear overall: each search covers only the text since the previous anchor; if that text holds
    no non-host character, the anchor is in the previous anchor's run."""
    out = []
    previous = run_start = 0
    for anchor, pattern in sorted(anchors):
        m = _LAST_NON_HOST.match(text, previous, anchor)
        if m is not None:
            run_start = m.end()
        out.append((run_start, pattern))
        previous = anchor
    return out
