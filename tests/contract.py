"""The prefilter contract, as tests/test_prefilter.py (corpus) and tests/test_properties.py (generated
text) check it: wherever a rule's regex matches, the prefilter reports that offset with that rule."""

from __future__ import annotations

import re

from aws_masker import prefilter
from aws_masker.patterns import RULES
from aws_masker.scanner import Scanner, escapes_blanked

# every position where a rule's regex matches (a lookahead finds overlapping ones too)
EVERYWHERE = [re.compile(f"(?=(?:{rule.regex}))", re.S) for rule in RULES]


def windowed(window: int) -> Scanner:
    """The anchors scanner with its prefilter scanning windows of ``window`` characters."""
    scanner = Scanner(mode="anchors")
    scanner._prefilter = prefilter.Prefilter(RULES, window=window)
    return scanner


def rule_starts(text: str) -> set[tuple[int, int]]:
    """(offset, rule index) wherever a rule's own regex matches in ``text``, validators aside."""
    return {(m.start(), i) for i, rx in enumerate(EVERYWHERE) for m in rx.finditer(text)}


def every_hit(scanner: Scanner, text: str) -> list[int]:
    """The prefilter's hits in ``text``, all windows together; they must come in order."""
    hits = [hit for window in scanner._prefilter.windows(text) for hit in window]
    assert hits == sorted(hits)
    return hits


def reported(text: str, scanner: Scanner) -> set[tuple[int, int]]:
    """(offset, rule index) of every prefilter hit."""
    pf = scanner._prefilter
    return {(hit >> prefilter.SHIFT, pf.rule_of[hit & prefilter.MASK]) for hit in every_hit(scanner, text)}


def assert_contract(text: str, scanners: list[Scanner]) -> None:
    """On the text as given and as the rules see it (JSON escapes blanked)."""
    for view in {text, escapes_blanked(text)}:
        starts = rule_starts(view)
        for scanner in scanners:
            missed = starts - reported(view, scanner)
            # rule names and offsets only: the text may hold identifiers
            assert not missed, f"prefilter missed {sorted((RULES[i].name, at) for at, i in missed)[:5]}"
