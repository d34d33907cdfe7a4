"""Markdown and psql tables: each cell with the key its column header (or its row's first cell) names.

People paste tables into a chat, and Claude writes them: a Markdown table (``| Bucket | Account |``
over a ``|---|---|`` line), or a SQL client's (psql's ``bucket_name | account_id`` over
``-----+-----``). A value there has no key before it; its key is the header of its column, or, in a
two-column table of ``| **Bucket** | acme-prod-logs |`` rows, the row's first cell. cliformats.py asks
the catalogue's key rules about each cell under that key, as it does for the AWS CLI's own tables,
so the rules stay in one place and a column says only what a JSON key of the same name would say
(``Bucket``, ``S3 Bucket``, ``Account ID``, ``RDS Instance``; not ``Name`` or ``Notes``).

A header of several words is tried as the keys it would be in code: ``S3Bucket`` and ``s3_bucket``
for "S3 Bucket". Markdown marks around a header or a value (``**Account**``, `` `acme-logs` ``) are
not part of it. This module only finds cells and their keys; it knows nothing about identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

Key = tuple[str, str, bool]
"""(parent, member, listed), as cliformats.py asks a key."""

# A Markdown table's delimiter row (at least two columns: | --- | :---: |), or psql's rule under its
# header (-----+------); a line of its own
_DELIMITER_ROW = re.compile(
    r"^[ \t]*(?:\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?|-{3,}(?:\+-{3,})+)[ \t]*\r?$", re.M
)
_WORD = re.compile(r"[A-Za-z0-9]+")
_HEADER = re.compile(r"[A-Za-z][A-Za-z0-9 _./:()-]{0,60}")
_OPENING = re.compile(r"[^|]*[:=,\[{(][ \t]*[\"'][ \t]*\|")
_MARKS = "*_`'\" \t"
"""What may stand around a header or a value in a cell: blanks, Markdown's bold, italics and code
marks, quotes."""
MAX_KEY_WORDS = 5


def may_hold(text: str) -> bool:
    """Whether ``text`` may hold such a table (a delimiter row; the caller has found a pipe)."""
    return _DELIMITER_ROW.search(text) is not None


def _split(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The cells of the row ``text[start:end]``, each span without the marks around its content; a
    Markdown row's outer pipes are not cells' edges (an escaped pipe, ``\\|``, is a cell's text)."""
    line = text[start:end].rstrip(" \t\r")
    lead = len(line) - len(line.lstrip(" \t"))
    if line[lead : lead + 1] == "|":
        lead += 1
    else:  # (a table that opens a string, scanned after its key: {"text": "| Bucket | ...)
        opening = _OPENING.match(line)
        if opening is not None:
            lead = opening.end()
    if line.endswith("|") and not line.endswith("\\|") and len(line) > lead:
        line = line[:-1]
    cells = []
    pos = lead
    for part in re.split(r"(?<!\\)\|", line[lead:]):
        inner = part.strip(_MARKS)
        at = part.find(inner) if inner else 0
        cells.append((start + pos + at, start + pos + at + len(inner)))
        pos += len(part) + 1
    return cells


def keys_of(name: str, compound: bool = False) -> tuple[Key, ...]:
    """The keys a header or a row's label stands for: itself when it is one word, else its words
    joined as code would (``S3Bucket``, ``s3_bucket``); none for what is not a short label, nor, when
    ``compound``, for a single word."""
    name = name.strip(_MARKS).rstrip(":").strip(_MARKS)
    if not _HEADER.fullmatch(name):
        return ()
    words = _WORD.findall(name)
    if not words or len(words) > MAX_KEY_WORDS or (compound and len(words) < 2):
        return ()
    if len(words) == 1:
        return (("", words[0], False),)
    camel = "".join(word[:1].upper() + word[1:] for word in words)
    snake = "_".join(word.lower() for word in words)
    return (("", camel, False), ("", snake, False))


def _lines_from(text: str, at: int) -> Iterator[tuple[int, int]]:
    """The lines of ``text`` from offset ``at`` (a line's start) on: (start, end without the break)."""
    while at < len(text):
        end = text.find("\n", at)
        if end < 0:
            end = len(text)
        yield at, end
        at = end + 1


def cells(text: str) -> list[tuple[int, int, tuple[Key, ...]]]:
    """Each cell of each table in ``text`` that has keys to try: (start, end, keys), in order."""
    out: list[tuple[int, int, tuple[Key, ...]]] = []
    walked = 0  # where the rows of the last table end (a line like a delimiter row among them is a row)
    for delimiter in _DELIMITER_ROW.finditer(text):
        rule_start = delimiter.start()
        if rule_start == 0 or rule_start < walked:
            continue
        header_end = rule_start - 1
        header_start = text.rfind("\n", 0, header_end) + 1
        if "|" not in text[header_start:header_end]:
            continue
        header = _split(text, header_start, header_end)
        width = len(header)
        sql = "+" in delimiter[0]
        if width < 2 or (not sql and width != len(_split(text, rule_start, delimiter.end()))):
            continue
        # a SQL table's columns are the database's own: one word (account, owner, name) says
        # nothing about AWS there; account_id, bucket_name, s3_bucket do
        columns = [keys_of(text[a:b], compound=sql) for a, b in header]
        walked = delimiter.end()
        for start, end in _lines_from(text, delimiter.end() + 1):
            if "|" not in text[start:end]:
                break  # (a table ends at its first line that is not a row)
            walked = end
            row = _split(text, start, end)
            labelled = keys_of(text[row[0][0] : row[0][1]]) if len(row) == 2 and not sql else ()
            for k, (a, b) in enumerate(row[:width]):
                if a >= b:
                    continue
                keys = columns[k] + (labelled if k == 1 else ())
                if keys:
                    out.append((a, b, keys))
    return out
