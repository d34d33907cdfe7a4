"""Echoes: a name the catalogue found by its context is masked wherever else it stands in the request.

Bucket and RDS names, canonical user IDs, secret keys and session tokens are recognised by what
surrounds them: a key (``"Bucket": "..."``), an output format (``aws s3api list-buckets``), a
command-line flag. The same name elsewhere
in the request, bare, has no such context: ``s3://acme-prod-data/x`` is masked by the catalogue, but
the follow-up question "why is acme-prod-data slow?" would reach the upstream as it is. So once a
request's scan is done, every other occurrence of such a name as a whole word, in any string of the
request, gets the same token.

Which names: only those found by a rule marked ``echo`` in the catalogue (strong evidence: specific
keys, URIs, list-buckets and access-log formats, flags; not prose such as "S3 <name>", lone
``aws s3 ls`` lines or generic keys, whose false positives would otherwise spread), and for bucket and
RDS names only those that cannot be ordinary words: a hyphen, dot or digit, and no number, version,
unit or region shape (see ``_NOT_A_NAME``).

A whole word is a maximal run of the characters names of that kind are made of (bucket and RDS
names: letters, digits, ``_``, ``.``, ``-``; trailing dots end a sentence, not the name), in the text
as the rules see it (JSON escapes such as ``\\n`` end a word, as in scanner.py). "acme-data" is not
echoed inside "acme-data-eu" or "x.acme-data", but is in "see acme-data." Identifiers the scan kept
verbatim (a disabled category, the allow-list, an AWS-managed ARN) are never cut into.

Cost: with a few names, substring searches over the whole request (C speed), one per name to see
whether it recurs at all, then one per recurring name; with many (a pasted list of hundreds of
buckets), one pass that looks every long-enough word up instead. Linear in the request's size either
way.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from typing import NamedTuple

from .patterns import REGION
from .scanner import escapes_blanked, unescaped
from .textview import folded


class _Word(NamedTuple):
    """What names of some kinds are made of."""

    run: re.Pattern[str]
    """A maximal run of the characters, at least as long as the shortest name."""
    char: re.Pattern[str]
    """One of the characters."""
    tail: str
    """Characters that may follow the name inside its run (sentence dots after a bucket name)."""
    priority: int
    """Where occurrences of two kinds overlap, the lower wins (a secret before a name inside it)."""


_BASE64 = _Word(re.compile(r"[A-Za-z0-9/+=]{40,}"), re.compile(r"[A-Za-z0-9/+=]"), "", 1)
_HEX = _Word(re.compile(r"[A-Za-z0-9_]{64,}"), re.compile(r"[A-Za-z0-9_]"), "", 2)
_NAME = _Word(re.compile(r"[A-Za-z0-9_.-]{3,}"), re.compile(r"[A-Za-z0-9_.-]"), ".", 3)
KINDS: dict[str, _Word] = {
    "SECRET_KEY": _BASE64,
    "SESSION_TOKEN": _BASE64,
    "CANONICAL_ID": _HEX,
    "S3_BUCKET": _NAME,
    "RDS": _NAME,
}
_DOTS = re.compile(r"\.*")
_NAME_MARK = re.compile(r"[-.0-9]")
# names that an ordinary text uses as words: numbers, versions (2.7.0, v1.2-rc1), numbers with units,
# regions
_NOT_A_NAME = re.compile(
    r"[0-9.-]+|v[0-9]+|v?[0-9]+(?:\.[0-9]+)+(?:[-+][0-9a-z.]+)?|[0-9.]+[a-z]{1,3}|" + REGION
)
SEARCHES = 48
"""Up to this many names of one kind of word, each is searched for; past it, one pass looks words up."""

# (start, end, token or None for a kept span, category, priority), in the joined text
_Span = tuple[int, int, "str | None", str, int]


def worth_echoing(kind: str, value: str) -> bool:
    word = KINDS.get(kind)  # (a key ID is found beside its secret, but is not echoed: it finds itself)
    if word is not _NAME:
        return word is not None
    return _NAME_MARK.search(value) is not None and not _NOT_A_NAME.fullmatch(value)


def echo(
    texts: list[str],
    found: dict[str, tuple[str, str, str]],
    kept: list[list[tuple[int, int]]],
    counts: Counter[str],
) -> list[str]:
    """``texts`` with every whole-word occurrence of each found name replaced by its token.

    ``found`` maps each name to (token, kind, category); ``kept[i]`` are the spans of ``texts[i]``
    that hold identifiers the scan kept verbatim; ``counts`` gets one more per echoed occurrence, by
    category."""
    by_word: dict[_Word, dict[str, tuple[str, str]]] = {}
    for name, (token, kind, category) in found.items():
        if worth_echoing(kind, name):
            by_word.setdefault(KINDS[kind], {})[name] = (token, category)
    if not by_word:
        return texts
    views = [escapes_blanked(text) for text in texts]
    joined = "\x00".join(views)  # (NUL is no word character: each string's end ends its words)
    offsets = [0]
    for view in views:
        offsets.append(offsets[-1] + len(view) + 1)
    spans: list[_Span] = []  # the kept spans first: no echo cuts into them
    for i, kept_i in enumerate(kept):
        spans += [(offsets[i] + start, offsets[i] + end, None, "", 0) for start, end in kept_i]
    for word, names in by_word.items():
        if len(names) > SEARCHES:
            spans += _by_lookup(joined, word, names)
        else:
            spans += _by_search(joined, word, _recurring(joined, names))
    for i, text in enumerate(texts):
        if "\\" in text or "%" in text or not text.isascii():
            spans += _decoded(text, offsets[i], by_word)
    accepted = _without_overlaps(spans)
    if not accepted:
        return texts
    return _apply(texts, offsets, accepted, counts)


def _decoded(text: str, base: int, by_word: dict[_Word, dict[str, tuple[str, str]]]) -> list[_Span]:
    """The names in ``text`` as the rules read it (escapes undone, percent-encoding and unicode
    look-alikes folded, see scanner.py and textview.py): ``orders\\u002dprod-db-1``,
    ``orders%2Dprod-db-1``. Each span covers the text the name was decoded from."""
    view, source = folded(*unescaped(text))
    if source is None:
        return []
    found: list[_Span] = []
    for word, names in by_word.items():
        hits = (
            _by_lookup(view, word, names)
            if len(names) > SEARCHES
            else _by_search(view, word, _recurring(view, names))
        )
        found += [(base + source(start), base + source(end), *rest) for start, end, *rest in hits]
    return found


def _recurring(joined: str, names: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The names that occur at all (one search each over the whole request: for a few names only)."""
    return {name: entry for name, entry in names.items() if name in joined}


def _by_search(joined: str, word: _Word, names: dict[str, tuple[str, str]]) -> list[_Span]:
    found: list[_Span] = []
    for name, (token, category) in names.items():
        i = joined.find(name)
        while i >= 0:
            end = i + len(name)
            if i == 0 or not word.char.match(joined, i - 1):
                # (trailing dots may follow: a run of them is matched at C speed, not walked)
                rest = _DOTS.match(joined, end).end() if word.tail else end  # type: ignore[union-attr]
                if not word.char.match(joined, rest):
                    found.append((i, end, token, category, word.priority))
            i = joined.find(name, end)
    return found


def _by_lookup(joined: str, word: _Word, names: dict[str, tuple[str, str]]) -> list[_Span]:
    found: list[_Span] = []
    for m in word.run.finditer(joined):
        run = m.group()
        name = run.rstrip(word.tail) if word.tail else run
        hit = names.get(name)
        if hit is not None:
            found.append((m.start(), m.start() + len(name), hit[0], hit[1], word.priority))
    return found


def _without_overlaps(spans: list[_Span]) -> list[_Span]:
    """The spans in order, where two overlap the one of lower priority (kept spans: 0) dropped."""
    spans.sort(key=lambda span: (span[0], span[4]))
    out: list[_Span] = []
    for span in spans:
        if out and span[0] < out[-1][1]:
            if span[4] < out[-1][4]:
                out[-1] = span
            continue
        out.append(span)
    return [span for span in out if span[2] is not None]


def _apply(texts: list[str], offsets: list[int], spans: list[_Span], counts: Counter[str]) -> list[str]:
    out = list(texts)
    by_text: dict[int, list[_Span]] = {}
    for span in spans:
        by_text.setdefault(bisect.bisect_right(offsets, span[0]) - 1, []).append(span)
    for i, spans_i in by_text.items():
        text, base = texts[i], offsets[i]
        pieces: list[str] = []
        last = 0
        for start, end, token, category, _priority in spans_i:
            pieces += (text[last : start - base], token)  # type: ignore[list-item]
            counts[category] += 1
            last = end - base
        pieces.append(text[last:])
        out[i] = "".join(pieces)
    return out
