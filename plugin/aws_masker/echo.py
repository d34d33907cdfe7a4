"""Echoes: a name the catalogue found by its context is masked wherever else it stands in the request.

Bucket and RDS names, canonical user IDs and secret keys are recognised by what surrounds them: a key
(``"Bucket": "..."``), an output format (``aws s3 ls``), a word ("bucket", "RDS"). The same name
elsewhere in the request, bare, has no such context: "S3 bucket acme-prod-data" is masked by the
catalogue, but the follow-up question "why is acme-prod-data slow?" would reach the upstream as it is.
So once a request's scan is done, every other occurrence of such a name as a whole word, in any string
of the request, gets the same token.

A whole word is a maximal run of the characters names of that kind are made of (for bucket and RDS
names: letters, digits, ``_``, ``.``, ``-``; trailing dots end a sentence, not the name): "acme-data"
is not echoed inside "acme-data-eu" or "x.acme-data", but is in "see acme-data." Only names that
cannot be ordinary words are echoed: a bucket or RDS name needs a hyphen, dot or digit (a bucket
named "backups" is masked where the catalogue finds it, not in "we keep backups").

Cost: with a few names, one substring search per name (C speed); with many (a pasted list of
hundreds of buckets), one pass that looks every word up instead. Either is linear in the text.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple


class _Word(NamedTuple):
    """What names of a kind are made of: ``run`` matches a maximal run of those characters, ``char``
    one of them, ``tail`` what may end a run after the name (trailing sentence dots, for names)."""

    run: re.Pattern[str]
    char: re.Pattern[str]
    tail: str


_NAME = _Word(re.compile(r"[A-Za-z0-9_.-]+"), re.compile(r"[A-Za-z0-9_.-]"), ".")
_HEX = _Word(re.compile(r"[A-Za-z0-9_]+"), re.compile(r"[A-Za-z0-9_]"), "")
_BASE64 = _Word(re.compile(r"[A-Za-z0-9/+=]+"), re.compile(r"[A-Za-z0-9/+=]"), "")
KINDS: dict[str, _Word] = {
    "S3_BUCKET": _NAME,
    "RDS": _NAME,
    "CANONICAL_ID": _HEX,
    "SECRET_KEY": _BASE64,
    "SESSION_TOKEN": _BASE64,
}
_NAME_MARK = re.compile(r"[-.0-9]")
SEARCHES = 48
"""Up to this many names, each is searched for; past it, one pass per kind of word looks words up."""

# (token, category) of each name
Names = dict[str, tuple[str, str]]


def worth_echoing(kind: str, value: str) -> bool:
    return KINDS[kind] is not _NAME or _NAME_MARK.search(value) is not None


def echo(texts: list[str], found: dict[str, tuple[str, str, str]], counts: Counter[str]) -> list[str]:
    """``texts`` with every whole-word occurrence of each found name replaced by its token.

    ``found`` maps each masked name to (token, kind, category); ``counts`` gets one more per echoed
    occurrence, by category."""
    by_word: dict[_Word, Names] = {}
    for name, (token, kind, category) in found.items():
        if worth_echoing(kind, name):
            by_word.setdefault(KINDS[kind], {})[name] = (token, category)
    if not by_word:
        return texts
    out = texts
    for word, names in by_word.items():
        one = _by_lookup if len(names) > SEARCHES else _by_search
        out = [one(text, word, names, counts) for text in out]
    return out


def _by_search(text: str, word: _Word, names: Names, counts: Counter[str]) -> str:
    spans: list[tuple[int, int, str, str]] = []  # start, end, token, category
    for name, (token, category) in names.items():
        i = text.find(name)
        while i >= 0:
            end = i + len(name)
            rest = end
            while rest < len(text) and text[rest] in word.tail:
                rest += 1
            if (i == 0 or not word.char.match(text, i - 1)) and not word.char.match(text, rest):
                spans.append((i, end, token, category))
            i = text.find(name, end)
    if not spans:
        return text
    spans.sort()  # (names of one kind never overlap: each occurrence is a whole run)
    pieces: list[str] = []
    last = 0
    for start, end, token, category in spans:
        pieces += (text[last:start], token)
        counts[category] += 1
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _by_lookup(text: str, word: _Word, names: Names, counts: Counter[str]) -> str:
    def replace(m: re.Match[str]) -> str:
        run = m.group()
        name = run.rstrip(word.tail) if word.tail else run
        hit = names.get(name)
        if hit is None:
            return run
        counts[hit[1]] += 1
        return hit[0] + run[len(name) :]

    return word.run.sub(replace, text)
