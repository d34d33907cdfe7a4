"""The column a CSV cell stands in: its header's name.

People paste CSV: Cost Explorer and Cost and Usage Report exports (``LinkedAccount``,
``lineItem/UsageAccountId``), Athena results, Logs Insights exports, IAM credential reports; and the
same as tab- or semicolon-separated values, or a Markdown table (``| LinkedAccount | Cost |``, as
Claude itself writes one, and the next turn sends back). A value there gets its key from the header
line at the top of its block, not from text before it, so a rule that needs a key (an account ID is
twelve digits with evidence) asks ``column_name`` as a last resort.

A block is a run of lines with the same number of fields; its header is its topmost line whose
every field is a name (letters first, no long numbers; a Markdown table's ``|---|`` line is passed
over). Fields are split on the delimiter that stands next to the cell, outside double quotes
(RFC 4180). Cells are asked about in text order, so the block's rows are checked once per text,
however many cells are asked about (a per-thread note of the last block, as patterns.py's list of
account IDs keeps one): linear in the text, not in rows times cells.
"""

from __future__ import annotations

import re
import threading
from typing import NamedTuple

DELIMITERS = ",\t;|"


def _field_pattern(delimiter: str) -> re.Pattern[str]:
    # (a quoted field is one only up to a delimiter or the line's end: else the text of a field that
    # begins with a quoted word, such as a JSON key's "input": {"csv": "Name)
    pad = "[ ]*" if delimiter == "\t" else "[ \t]*"
    d = re.escape(delimiter)
    return re.compile(pad + r'"(?:[^"\n]|"")*"' + pad + "(?=" + d + r"|\r?$)|[^" + d + r"\n]*")


_FIELD = {delimiter: _field_pattern(delimiter) for delimiter in DELIMITERS}
_NAME = re.compile(r'[ \t]*"?[ \t]*[A-Za-z@][A-Za-z0-9 _./:@()#&,\'$%-]{0,100}"?[ \t]*\r?')
# what else a header may hold beside names: an empty or "#" field (a SQL client's or Athena's row number
# column), a month or a day (Cost Explorer's monthly columns)
_HEADER_OTHER = re.compile(r'[ \t]*"?[ \t]*(?:#|[0-9]{4}-[0-9]{2}(?:-[0-9]{2})?)?[ \t]*"?[ \t]*\r?')
# a rule under a header row, whose delimiters are not the rows' (psql's ----+----, a box's +----+----+)
_RULE_LINE = re.compile(r"[ \t]*[-+=:|]*-[-+=:| \t]*\r?")
# what stands before a header's first name when the CSV is a string's content and the text begins
# with the string's key (a JSON value scanned with its key: {"csv": "LinkedAccount,...)
_OPENING = re.compile(r'.*["\']')
_LONG_NUMBER = re.compile(r"[0-9]{6}")
MAX_FIELDS = 256
MAX_LINES_UP = 100_000
"""The most lines looked at above a cell for its header (the block's first line)."""


class _Block(NamedTuple):
    delimiter: str
    text_id: int
    text_len: int
    header_line: str  # (the same text, not another one at its address: its first line is there)
    header: list[str] | None  # (None: the block has none; its cells are asked about once)
    count: int  # fields per line
    start: int  # where the header line (or the block's first line) starts
    checked: int  # where the last line known to be in the block ends (its line break)
    ruled: bool  # a rule line stands under the header (psql's ----+----, a box's +----+)


_last = threading.local()


def _fields(text: str, start: int, end: int, delimiter: str) -> list[tuple[int, int]] | None:
    """The fields of the line ``text[start:end]`` (without its line break), or None when it is not a
    line of such values (a quote left open, text after a closing quote, too many fields). A Markdown
    table's row is read without its outer pipes."""
    if delimiter == "|":  # (what stands before the first pipe: indentation, or a string's key)
        inner = text[start:end].rstrip(" \t\r")
        if inner[-1:] == "|" and inner.count("|") > 1:
            start = text.index("|", start) + 1
            end = text.rindex("|", start - 1, end)
    pattern = _FIELD[delimiter]
    spans: list[tuple[int, int]] = []
    pos = start
    while True:
        m = pattern.match(text, pos, end)
        spans.append(m.span())  # type: ignore[union-attr]
        pos = m.end()  # type: ignore[union-attr]
        if pos >= end or (pos == end - 1 and text[pos] == "\r"):
            return spans
        if text[pos] != delimiter or len(spans) >= MAX_FIELDS:
            return None
        pos += 1


def _delimiter_beside(text: str, start: int, end: int) -> str | None:
    """The delimiter right after ``text[start:end]`` or right before it (blanks and a quote between),
    if it may be a cell of separated values; else None."""
    # (a SQL client pads a cell with blanks up to its column's width)
    after = text[end : end + 256].lstrip(" \"'")[:1]
    if after and after in DELIMITERS:
        return after
    before = text[max(0, start - 256) : start].rstrip(" \"'")[-1:]
    return before if before and before in DELIMITERS else None


def _line(text: str, at: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return start, end if end >= 0 else len(text)


def _header(text: str, fields: list[tuple[int, int]]) -> list[str] | None:
    """The names of a line whose ``fields`` are all names, else None."""
    names = [text[a:b] for a, b in fields]
    if not _NAME.fullmatch(names[0]):
        first = names[0].rstrip(" \t\"'")
        opening = _OPENING.match(first)
        names[0] = first[opening.end() :] if opening else first
    named = [bool(_NAME.fullmatch(name)) and not _LONG_NUMBER.search(name) for name in names]
    empty = sum(not name.strip(' \t\r"') for name in names)  # (one at most: a title padded with
    # delimiters, "Cost report,,", is no header)
    if (
        any(named)
        and empty <= 1
        and all(ok or _HEADER_OTHER.fullmatch(name) for ok, name in zip(named, names, strict=True))
    ):
        return [name.strip(' \t\r"') for name in names]
    return None


def column_name(text: str, start: int, end: int) -> str | None:
    """The header name of the column whose cell is ``text[start:end]`` (the whole field, or what its
    quotes hold, or the part before a colon in it), or None when the text there is not a cell of a
    block with a header."""
    found = column(text, start, end)
    return found[0] if found is not None else None


def column(text: str, start: int, end: int) -> tuple[str, bool] | None:
    """``column_name``, and whether a rule line stands between the header and the rows (a SQL client's
    table, psql's ``----+----`` or a box's ``+----+``: its columns are often not AWS's)."""
    delimiter = _delimiter_beside(text, start, end)
    if delimiter is None:
        return None
    line_start, line_end = _line(text, start)
    if end > line_end:
        return None
    fields = _fields(text, line_start, line_end, delimiter)
    if fields is None or len(fields) < 2:
        return None
    index = next((k for k, (a, b) in enumerate(fields) if a <= start < b), -1)
    if index < 0:  # pragma: no cover - the fields cover the line
        return None
    a, b = fields[index]
    field, value = text[a:b].strip(' \t\r"'), text[start:end]
    if field != value and not field.startswith(value + ":"):  # (a Logs Insights @log: <account>:<group>)
        return None
    count = len(fields)
    block: _Block | None = getattr(_last, "block", None)
    if (
        block is not None
        and block.delimiter == delimiter
        and block.text_id == id(text)
        and block.text_len == len(text)
        and block.count == count
        and block.start < line_start
        and text.startswith(block.header_line, block.start)
    ):
        # the same block if every line since the last one checked has as many fields (or is a rule)
        at = block.checked
        while at + 1 < line_start:
            row_end = text.find("\n", at + 1)
            row = _fields(text, at + 1, row_end, delimiter)
            if (row is None or len(row) != count) and not _RULE_LINE.fullmatch(text, at + 1, row_end):
                break
            at = row_end
        else:
            _last.block = block._replace(checked=max(block.checked, line_end))
            return (block.header[index], block.ruled) if block.header is not None else None
    # up the block (the lines with as many fields) to its topmost line of names: its header (a line
    # above it that happens to hold as many commas, such as a line of JSON, is not)
    top, lines = line_start, 0
    header: list[str] | None = None
    header_start = header_end = -1
    ruled = passed = False  # (a rule line under the header; one passed over so far)
    while top > 0 and lines < MAX_LINES_UP:
        above = text.rfind("\n", 0, top - 1) + 1
        row = _fields(text, above, top - 1, delimiter)
        if (row is None or len(row) != count) and _RULE_LINE.fullmatch(text, above, top - 1):
            if header is not None or passed:  # (a rule above the header: a title's underline)
                break
            top, lines, passed = above, lines + 1, True  # (passed over: the header is right above it)
            continue
        if row is None or len(row) != count:
            break
        names = _header(text, row)
        if names is not None:
            header, header_start, header_end, ruled = names, above, top - 1, passed
        top, lines = above, lines + 1
        if passed:  # (the line right above the rule is the header, or there is none)
            break
    if header is None:  # no line of names above the cell in its block: noted too, so its other cells
        # are not walked up again (each would cost the block's length); the block's first line stands in
        header_start, header_end = top, text.find("\n", top)
        if header_end < 0:
            header_end = len(text)
    _last.block = _Block(
        delimiter,
        id(text),
        len(text),
        text[header_start:header_end],
        header,
        count,
        header_start,
        line_end,
        ruled,
    )
    return (header[index], ruled) if header is not None else None
