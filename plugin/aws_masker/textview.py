"""The text as a reader sees it: percent-encoding and unicode look-alikes folded to plain ASCII.

A model reads ``arn%3Aaws%3Aiam%3A%3A483920175526%3Arole`` (a console URL), ``ｉ－０１２３…`` (fullwidth
forms), ``i-0123\u200b4567…`` (a zero-width space inside an identifier), ``OwnerId∶ …`` (a ratio sign
for a colon) or ``٤٨٣٩…`` (Arabic-Indic digits) as the identifier they spell, so the rules must too.
``folded`` gives the view the rules scan and a map from view offsets back to the text, like
scanner.py's JSON unescaping (it runs after it): an identifier found in the view is masked over the
whole range of the text it was folded from, and its value (what the token restores) is the folded one.

What is folded (each to at most one character, so the view is never longer):
- ``%XX`` escapes (also percent-encoded again, ``%25XX``, any number of times) and HTML character
  references (``&#45;``, ``&#x3a;``, ``&colon;``) of the characters identifiers and their separators
  are made of (letters, digits, ``-:/._=+@``, and the look-alikes below) and of the blanks and
  punctuation of the prose around them (space, tab, line break, ``(),;``); never ``%``, ``&``, a quote or a
  backslash, so nothing decodes twice;
- format characters (zero-width spaces and joiners, soft hyphens, bidi controls, BOMs) and combining
  marks: removed;
- characters whose compatibility form (NFKC) is one such ASCII character (fullwidth and mathematical
  letters and digits, fullwidth colon), decimal digits of any script, dashes and minus signs, colon
  look-alikes, and the Cyrillic and Greek letters that look like Latin ones;
- the indicator, line break and indentation of a YAML block scalar right after a key (``OwnerId: >-``
  then the value on the next line): deleted, so the value stands right after its key.

``paired`` makes a second view, in which name/value pair objects read as the member they stand for
(see there).

Cost: nothing for ASCII text without ``%``, ``&``, ``|`` or ``>``; otherwise two C-speed passes per
fold (a regex split and running sums), as for escapes.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import NamedTuple

from . import textmarks
from .prefilter import max_width

_KEEP = "-:/._=+@"
# %XX, or %XX percent-encoded again (%25XX, %2525XX: a console URL in a redirect parameter); and
# JavaScript's escape() of a character past Latin-1, %uXXXX (%uFF49: a fullwidth letter)
# (a character past ASCII percent-encoded as its UTF-8 bytes, %E2%80%8B, is one escape)
_PERCENT = re.compile(
    "(%(?:25)*(?:[C-Fc-f][0-9A-Fa-f](?:%(?:25)*[89ABab][0-9A-Fa-f]){1,3}|[0-9A-Fa-f]{2}|[uU][0-9A-Fa-f]{4}))"
)
_NAMED = {
    "colon": ":",
    "sol": "/",
    "period": ".",
    "hyphen": "-",
    "dash": "-",
    "lowbar": "_",
    "commat": "@",
    "minus": "-",
    "ndash": "-",
    "mdash": "-",
    "plus": "+",
    "equals": "=",
    # (blanks and punctuation of the prose around identifiers)
    "nbsp": " ",
    "Tab": "\t",
    "NewLine": "\n",
    "lpar": "(",
    "rpar": ")",
    "comma": ",",
    "semi": ";",
}
# a reference, or one escaped again (&amp;#45;, &amp;amp;colon;: HTML escaped twice)
_ENTITY = re.compile("(&(?:amp;)*(?:#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|(?:" + "|".join(_NAMED) + ");))")
# An escape whose introducer is itself escaped in another kind (percent-encoding, an HTML reference):
# the backslash of a JSON or C escape (%5Cu002d, &#92;u002d, &#92;x2d), the percent sign of a percent
# escape (&#37;2d, &percnt;2d) or the ampersand (and number sign and semicolon) of an HTML reference
# (%26%2345;, %26#x2d%3B). Read whole, as one character (each introducer escaped any number of times in
# its own kind: %255C, &amp;#92;).
_PCT = "%(?:25)*"


def _body(n: int) -> str:
    """What follows a backslash: a JSON, C, JavaScript or octal escape (its groups numbered ``n``)."""
    return (
        f"(?:u(?P<u{n}>[0-9a-fA-F]{{4}})|x(?P<x{n}>[0-9a-fA-F]{{2}})|u\\{{(?P<b{n}>[0-9a-fA-F]{{1,6}})\\}}"
        f"|U(?P<U{n}>[0-9a-fA-F]{{8}})|(?P<o{n}>[0-3][0-7]{{2}}))"
    )


# (one regex per first character: the regex module skips to a literal first character fast)
_STACKED_PERCENT = (
    "%(?:25)*(?:5[cC]"
    + _body(1)
    + "|26(?:amp;)*(?:#|"
    + _PCT
    + "23)(?:(?P<d>[0-9]{1,7})|[xX](?P<h>[0-9a-fA-F]{1,6}))(?:;|"
    + _PCT
    + "3[bB]))"
)
_STACKED_AMPERSAND = (
    "&(?:amp;)*(?:(?:#92;|#[xX]0*5[cC];|bsol;)"
    + _body(2)
    + "|(?:#37;|#[xX]0*25;|percnt;)(?:25)*(?:(?P<p>[0-9A-Fa-f]{2})|[uU](?P<q>[0-9A-Fa-f]{4})))"
)
_STACKED_PARTS = re.compile(_STACKED_PERCENT + "|" + _STACKED_AMPERSAND)
_STACKED = [
    re.compile("(" + re.sub(r"\(\?P<[a-zA-Z][0-9]?>", "(?:", part) + ")")
    for part in (_STACKED_PERCENT, _STACKED_AMPERSAND)
]


def _stacked(escapes: list[str]) -> list[str]:
    """Each stacked escape (``_STACKED``) as the character it stands for where identifiers are made of
    it, else as it is."""
    out = []
    for escape in escapes:
        m = _STACKED_PARTS.fullmatch(escape)
        assert m is not None
        base, digits = next((_BASES[name[0]], value) for name, value in m.groupdict().items() if value)
        cp = int(digits, base)
        out.append(_identifier_char(chr(cp), escape) if cp < 0x110000 else escape)
    return out


_BASES = {"u": 16, "x": 16, "b": 16, "U": 16, "o": 8, "p": 16, "q": 16, "d": 10, "h": 16}


_LOOKALIKES = {
    # colons
    "\u2236": ":",
    "\u02d0": ":",
    "\u02f8": ":",
    "\u0589": ":",
    "\u05c3": ":",
    "\ua789": ":",
    "\ufe13": ":",
    # Cyrillic and Greek letters that look like Latin ones
    **dict(zip("аеорсхуіѕјԁһԛԝАВЕКМНОРСТХІЈЅ", "aeopcxyisjdhqwABEKMHOPCTXIJS", strict=True)),
    **dict(zip("οαν\u03b9κρτχΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "oavikptxABEZHIKMNOPTYX", strict=True)),
    # Greek, Cyrillic and Latin letters outside those, dotless and script forms
    **dict(zip("ϲϳӏıȷɑɡɩǀ", "cjlijagil", strict=True)),
    # small capitals (read as the lower-case letter: they stand in lower-case words)
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢꞮ", "abcdefghijklmnoprstuvwyzI", strict=True)),
    # Cherokee letters that are drawn as Latin ones (and their lower-case forms, small capitals)
    **dict(zip("ᎪᏴᏟᎠᎬᏀᎻᎥᎫᏦᏞᎷᏢᏚᎢᏙᏔᏃᎡᏒᎩ", "ABCDEGHiJKLMPSTVWZRRy", strict=True)),
    **{c.lower(): a.lower() for c, a in zip("ᎪᏴᏟᎠᎬᏀᎻᎥᎫᏦᏞᎷᏢᏚᎢᏙᏔᏃᎡᏒᎩ", "ABCDEGHiJKLMPSTVWZRRy", strict=True)},
    # Lisu letters, drawn as Latin capitals
    **dict(zip("ꓮꓐꓚꓓꓰꓝꓖꓧꓲꓙꓗꓡꓟꓠꓳꓑꓣꓢꓔꓴꓦꓪꓫꓬꓜ", "ABCDEFGHIJKLMNOPRSTUVWXYZ", strict=True)),
}


OTHER_SPACES = tuple(chr(cp) for cp in range(0x80, 0x3001) if unicodedata.category(chr(cp)) == "Zs")
"""Spaces other than the ASCII one (no-break, thin, figure, ...): the fold reads each as a space."""


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    # (and the tag characters and variation selectors past the BMP, invisible)
    planes = (range(0x80, 0x10000), range(0x1D400, 0x1D800), range(0xE0000, 0xE0080), range(0xE0100, 0xE01F0))
    for cp in itertools.chain(*planes):
        char = chr(cp)
        category = unicodedata.category(char)
        if category in ("Cf", "Mn", "Me"):
            table[char] = ""
        elif category == "Pd":
            table[char] = "-"
        elif category == "Nd":
            table[char] = str(unicodedata.digit(char))
        else:
            nfkc = unicodedata.normalize("NFKC", char)
            if len(nfkc) == 1 and nfkc.isascii() and (nfkc.isalnum() or nfkc in _KEEP):
                table[char] = nfkc
    table["\u2212"] = "-"  # minus sign (Sm)
    for cp in range(0xE0021, 0xE007F):  # tag characters spell ASCII ("ASCII smuggling"): read as it
        ascii = chr(cp - 0xE0000)
        if ascii.isalnum() or ascii in _KEEP:
            table[chr(cp)] = ascii
    for filler in "\u115f\u1160\u3164\uffa0\u2800":  # letters and a symbol that render blank
        table[filler] = ""
    table.update(_LOOKALIKES)
    for cp in itertools.chain(*planes):  # mathematical forms of those (𝚤, 𝛂): read as they are
        nfkc = unicodedata.normalize("NFKC", chr(cp))
        if chr(cp) not in table and nfkc in _LOOKALIKES:
            table[chr(cp)] = _LOOKALIKES[nfkc]
    table.update(dict.fromkeys(OTHER_SPACES, " "))
    return table


_FOLD = _table()


def _char_class(chars: list[int]) -> str:
    """A regex character class of the code points, as ranges (a class of single characters is tried
    one by one, a class of ranges by a bisection: 400 ranges, not 2,500 characters)."""
    ranges: list[list[int]] = []
    for cp in sorted(chars):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return (
        "[" + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges) + "]"
    )


_FOLDABLE = re.compile("(" + _char_class([ord(c) for c in _FOLD]) + ")")


class _Level(NamedTuple):
    view_ends: list[int]
    source_ends: list[int]
    deletion: bool = False
    """Text left out (``_deleted``), not replaced: a view offset there is where two source offsets meet."""

    def source(self, offset: int) -> int:
        return self._shifted(offset, bisect_right(self.view_ends, offset))

    def source_end(self, offset: int) -> int:
        """``source`` for where a find ends: at a deletion, before the text left out (a find that ends
        where a label's closing mark was deleted, ``**i-0abc…**:``, does not take the mark in)."""
        return self._shifted(offset, (bisect_left if self.deletion else bisect_right)(self.view_ends, offset))

    def _shifted(self, offset: int, k: int) -> int:
        """``offset`` moved past the first ``k`` replacements (or deletions)."""
        return offset + self.source_ends[k - 1] - self.view_ends[k - 1] if k else offset


def _fold_once(
    text: str, pattern: re.Pattern[str], decode: Callable[[list[str]], list[str]]
) -> tuple[str, _Level] | None:
    """``text`` with each match of ``pattern`` (one capturing group) replaced by what ``decode``
    makes of it, and the map back; the splitting and the sums run at C speed."""
    parts = pattern.split(text)
    if len(parts) == 1:
        return None
    source_ends = list(accumulate(map(len, parts)))[1::2]
    parts[1::2] = decode(parts[1::2])
    view_ends = list(accumulate(map(len, parts)))[1::2]
    return "".join(parts), _Level(view_ends, source_ends)


def _percent(escapes: list[str]) -> list[str]:
    return [_identifier_char(_percent_char(e), e) for e in escapes]


def _percent_char(escape: str) -> str:
    if escape[-5:-4] in ("u", "U"):
        return chr(int(escape[-4:], 16))
    if escape.count("%") == 1:  # one byte (its percent sign maybe escaped again: %252F)
        return chr(int(escape[-2:], 16))
    data = bytes.fromhex("".join(part[-2:] for part in escape.split("%")[1:] if len(part) >= 2))
    try:
        char = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return char if len(char) == 1 else ""


def _identifier_char(char: str, escape: str) -> str:
    """``char`` (what ``escape`` decodes to) if it is printable ASCII, a blank, or a character that
    folds to one (a look-alike, a zero-width character), else the escape as it is: identifiers and the
    punctuation around them (a quote: "%22arn:...", "\\x22i-0abc...") read as they would written out,
    and an escape's last hex digit is never glued to an identifier. (Not a backslash or a percent sign:
    the escapes stacked on them are read by ``_stacked``.)"""
    if char and (
        (char.isascii() and (char.isprintable() or char in "\t\n") and char not in "\\%") or char in _FOLD
    ):
        return char
    return escape


_OCTAL = re.compile(r"\\(?!000)[0-3][0-7]{2}")


def backslash_escapes(escapes: list[str]) -> list[str]:
    """Other languages' backslash escapes (``\\xHH``, ``\\u{H...}``, ``\\UHHHHHHHH``, octal ``\\OOO``,
    CSS's ``\\H...``: scanner.py finds them), each as the character it stands for where identifiers are
    made of it, else as it is."""
    out = []
    for escape in escapes:
        if escape[1] in "xuU":
            cp = int(escape[2:].strip("{}"), 16)
        elif _OCTAL.fullmatch(escape):
            cp = int(escape[1:], 8)
        else:
            cp = int(escape[1:].rstrip(" \t"), 16)
        out.append(_identifier_char(chr(cp), escape) if cp < 0x110000 else escape)
    return out


def _entities(refs: list[str]) -> list[str]:
    out = []
    for ref in refs:
        while ref.startswith("&amp;") and len(ref) > 5:
            ref = "&" + ref[5:]
        if ref[1] != "#":
            out.append(_NAMED[ref[1:-1]])
            continue
        cp = int(ref[3:-1], 16) if ref[2] in "xX" else int(ref[2:-1])
        out.append(_identifier_char(chr(cp), ref) if cp < 0x110000 else ref)
    return out


def _unicode(chars: list[str]) -> list[str]:
    return [_FOLD[char] for char in chars]


def folded(text: str, source: Callable[[int], int] | None = None) -> tuple[str, Callable[[int], int] | None]:
    """``text`` folded, and the map from its offsets to the offsets ``source`` maps from (``source``
    composed after the fold's own map; None: the same offsets)."""
    levels: list[_Level] = []
    if "\x1b" in text or ("^" in text and "^[[" in text):  # terminal colours (jq -C, grep --color, terraform)
        spans = [m.span() for m in _TERMINAL_CODE.finditer(text)]
        if spans:
            text, level = _deleted(text, spans)
            levels.append(level)
    if "%" in text:
        for pattern, decode in ((_STACKED[0], _stacked), (_PERCENT, _percent)):  # (stacked ones first)
            once = _fold_once(text, pattern, decode)
            if once is not None:
                text, level = once
                levels.append(level)
    if "&" in text:
        for pattern, decode in ((_STACKED[1], _stacked), (_ENTITY, _entities)):
            once = _fold_once(text, pattern, decode)
            if once is not None:
                text, level = once
                levels.append(level)
    if not text.isascii():
        once = _fold_once(text, _FOLDABLE, _unicode)
        if once is not None:
            text, level = once
            levels.append(level)
    if "+" in text:
        spans = _loose_accounts(text)
        if spans:
            text, level = _deleted(text, spans)
            levels.append(level)
    if "*" in text or "`" in text or "<" in text:  # (one-character tests: each a memchr)
        spans = _label_marks(text)
        if spans:
            text, level = _deleted(text, spans)
            levels.append(level)
    marks = textmarks.marks_of(text)  # (asked again only of a text a fold below changed)
    if "keys" in marks:
        once = _fold_once(text, _KEY_SPELLING, _keys)
        if once is not None:
            text, level = once
            levels.append(level)
            marks = textmarks.marks_of(text)
    if "wrapped" in marks:  # a value behind a wrapper in code, read as the key's value
        unwrapped, wrapped = _unwrapped(text)
        if wrapped is not None:
            levels.append(wrapped)
        if unwrapped is not text:
            text = unwrapped
            marks = textmarks.marks_of(text)
    if "doubled" in marks:  # JSON in a CSV field: its quotes doubled
        spans = [(m.start(), m.start() + 1) for m in _DOUBLED_QUOTES.finditer(text)]
        text, level = _deleted(text, spans)
        levels.append(level)
        marks = textmarks.marks_of(text)
    if "annotation" in marks:
        spans = [m.span(1) for m in _TYPE_ANNOTATION.finditer(text)]
        if spans:
            text, level = _deleted(text, spans)
            levels.append(level)
    if ("|" in text or ">" in text) and ":" in text:
        spans = [m.span("h") for m in _BLOCK_SCALAR.finditer(text)]
        if spans:
            text, level = _deleted(text, spans)
            levels.append(level)
    if not levels:
        return text, source
    ordered = levels[::-1]

    def mapped(offset: int) -> int:
        for level in ordered:
            offset = level.source(offset)
        return source(offset) if source is not None else offset

    def mapped_end(offset: int) -> int:
        for level in ordered:
            offset = level.source_end(offset)
        return getattr(source, "end", source)(offset) if source is not None else offset

    mapped.end = mapped_end  # type: ignore[attr-defined]  # (scanner._mapped maps a find's end with it)
    return text, mapped


# A label in bold, italics or code, in Markdown, Slack or HTML (**Account:** 1234..., *Bucket:* x,
# `Account`: 1234..., <b>Account:</b> 1234...): the marks are deleted from the view, so the label reads as
# the key it is (Account: 1234...). Only around a label that a colon ends, inside the marks or right after.
_MARK = r"(?:\*\*?|``?|<(?:b|strong)>|</(?:b|strong)>)"
_LABEL_MARKS = re.compile(
    r"(?P<o>" + _MARK + r")[A-Za-z][A-Za-z0-9 _./()#-]{0,40}?"
    r"(?::[ \t]*(?P<c>" + _MARK + r")|(?P<d>" + _MARK + r")(?=[ \t]*:))"
)


def _label_marks(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for m in _LABEL_MARKS.finditer(text):
        spans += (m.span("o"), m.span("c") if m.start("c") >= 0 else m.span("d"))
    if "`" in text:  # a value in code marks after its key ("Secret access key: `…`", "Bucket: `…`")
        values = [span for m in _CODE_VALUE.finditer(text) for span in (m.span(1), m.span(2))]
        if values:
            spans = sorted(set(spans + values))
    return spans


_CODE_VALUE = re.compile(r"[A-Za-z0-9_)\]*]:[ \t]{1,4}(`)[^`\s]{1,512}(`)")


# A terminal's control sequence: a colour (ESC[32m), a cursor move or erase (ESC[2K), a title or link
# (ESC]...BEL), a two-character one (ESC(B); also as a pager shows it without -R (^[[32m). Tool output
# an agent captures and CI logs carry them, glued to the identifiers they colour (the "m" of ESC[32m
# would make i-0abc... a word's tail) or inside them (grep --color): deleted from the view.
_TERMINAL_CODE = re.compile(
    r"(?:\x1b|\^\[)"
    r"(?:\[[0-9;:?<=>]{0,32}[ -/]{0,4}[@-~]|\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)|[ -/]{0,2}[0-~])"
)


# Keys spelled other than as the catalogue's key rules know them, read as the key they are: all lower
# or upper case, as Athena, Glue and Postgres columns and env files write them (recipientaccountid,
# OWNERID, ACCOUNT_NUMBER), or their words apart (Owner-Id, "Account ID", cloud.account.id as
# OpenTelemetry and Elastic write it). Only a whole key (before its colon or equals sign; after a dotted
# path's dot) is read so, never part of a longer one (textmarks.KEY_WORDS).
_CANONICAL_KEY = {"".join(words): key for key, words in textmarks.KEY_WORDS}
_KEY_SPELLING = re.compile(r"(?<![A-Za-z0-9_$-])(" + textmarks.KEY_SPELLINGS + r")(?=[\"']?[ \t]*[:=])")


def _keys(spellings: list[str]) -> list[str]:
    return [_CANONICAL_KEY[re.sub("[-_. ]", "", spelling).lower()] for spelling in spellings]


# A value in code behind a wrapper (Go's TableName: aws.String("x"): the wrapper is left out of the
# view), as an SDK builder's argument naming a resource (Java's .tableName("x"), read as
# .tableName="x"; a method named for a name, identifier, ID, ARN or URL; .bucket("x") is patterns.py's
# s3_sdk_call), or as the
# fallback of an environment variable (process.env.TABLE_NAME || "x", read as TABLE_NAME =  "x"): the
# key's rules read the value as theirs.
_GO_STRING = re.compile(r"(aws\.String\([ \t]*)\"[^\"\n]{0,512}\"([ \t]*\))")
_BUILDER_CALL = re.compile(r"\.[a-z][A-Za-z0-9]{0,40}(?:Name|Identifier|Id|Arn|Url)(\()[ \t]*[\"']")
_ENV_FALLBACK = re.compile(r"process\.env\.[A-Za-z0-9_]{1,60}[ \t]*(\|\||\?\?)[ \t]*[\"'`]")


def _unwrapped(text: str) -> tuple[str, _Level | None]:
    """``text`` with code's wrappers read as above: the builders' and fallbacks' operators swapped
    for an equals sign (as long: no map), then the Go wrappers left out (a map back)."""
    swaps = sorted(
        [m.span(1) for m in _BUILDER_CALL.finditer(text)] + [m.span(1) for m in _ENV_FALLBACK.finditer(text)]
    )
    if swaps:
        pieces: list[str] = []
        last = 0
        for start, end in swaps:
            pieces += (text[last:start], "=" + " " * (end - start - 1))
            last = end
        pieces.append(text[last:])
        text = "".join(pieces)
    spans = [span for m in _GO_STRING.finditer(text) for span in (m.span(1), m.span(2))]
    if not spans:
        return text, None
    return _deleted(text, spans)


# JSON in a CSV field (an Athena or Logs Insights export: "{""bucketName"":""acme-logs""}") reads as
# the JSON it is: one quote of each doubled pair is deleted from the view
_DOUBLED_QUOTES = re.compile(r'""')


# A type annotation between a name and its value in code (a pydantic setting, a dataclass field, a
# TypeScript variable): s3_bucket: str = "x" reads as s3_bucket = "x"
_TYPE_ANNOTATION = re.compile(
    r"(?<=[A-Za-z0-9_])(:[ \t]*(?:str|string|SecretStr|Optional\[str\])[ \t]*)(?==)"
)


# A twelve-digit number written with a plus sign (``OwnerId: +483920175526``, ``"AccountId":
# "+0483920175526"``): read as the account it is when a key naming an account or an owner stands right
# before it, so the sign (and any zeros after it) are deleted from the view there. (Leading zeros
# without a sign are read so in a JSON value under its key, jsonbody.py; in text they are not: every
# zero would be a place to look.)
_LOOSE_DIGITS = re.compile(r"\+0*(?=[0-9]{12}(?![0-9]))")
_LOOSE_KEY = re.compile(
    r"(?:[Oo]wner|OWNER|[Aa]ccount|ACCOUNT|[Aa]cct|ACCT)[A-Za-z_-]{0,12}"
    r"[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?\Z"
)
_LOOSE_REACH = 40


def _loose_accounts(text: str) -> list[tuple[int, int]]:
    """The spans of the signs (and zeros after them) of such numbers (see above). A substring search
    per plus sign: they are few in text."""
    spans: list[tuple[int, int]] = []
    at = text.find("+")
    while at >= 0:
        m = _LOOSE_DIGITS.match(text, at)
        if m is not None and _LOOSE_KEY.search(text, max(0, at - _LOOSE_REACH), at):
            spans.append(m.span())
        at = text.find("+", at + 1)
    return spans


# ---- structure: what stands between a key and its value ------------------------------------------
# (a YAML block scalar's indicator is folded away in ``folded``; pair objects get a view of their own)

_NAME = r"[A-Za-z0-9_.:/-]{1,128}"
PAIR_NAME = re.compile(_NAME)
"""What a pair's name member may be, to be read as a key (here, cliformats.py's table rows and text
lines, jsonbody.py's pair objects)."""
# (parameterKey: CloudTrail's records of CreateStack; field: Logs Insights results, {"field":
# "requestParameters.bucketName", "value": ...})
_NAME_KEYS = "(?:ParameterKey|parameterKey|OutputKey|OptionName|Key|key|Name|name|field)"
_VALUE_KEYS = "(?:ParameterValue|parameterValue|OutputValue|Value|value)"
# the same name keys, behind a class of their first letters (the regex module then skips to them)
_NAME_KEY_WORD = r"[PONKkn](?<![A-Za-z0-9_].)(?:(?<=P)arameterKey|(?<=O)utputKey|(?<=[Kk])ey|(?<=[Nn])ame)"
# a JSON name/value pair object: {"ParameterKey": "X", "ParameterValue": ...}, {"name": "X", "value":
# ...}, an SSM parameter's {"Name": "X", "Type": "String", "Value": ...} (only a Type between: the
# deleted text must hold no identifier)
_JSON_PAIR = re.compile(
    r'(?P<h>"' + _NAME_KEYS + r'"\s*:\s*)(?P<n>"' + _NAME + r'")'
    r'(?P<m>(?:\s*,\s*"(?:[Tt]ype|DataType)"\s*:\s*"[A-Za-z]{1,20}")?\s*,\s*"' + _VALUE_KEYS + r'")(?=\s*:)'
)
# an output of `terraform output -json`: {"<name>": {"sensitive": false, "type": "string", "value": ...}},
# named by its own key (looked for only in a text that holds '"sensitive"')
_TF_OUTPUT_PAIR = re.compile(
    r'(?P<h>)(?P<n>"' + _NAME + r'")'
    r'(?P<m>\s*:\s*\{\s*"sensitive"\s*:\s*(?:true|false)\s*,\s*"type"\s*:\s*(?:"[a-z]{1,16}"|\[[^\]{}]{0,120}\])'
    r'\s*,\s*"value")(?=\s*:)'
)
# the same in YAML (- Name: X / Value: ...; a Type line between, as the AWS CLI's YAML output of an SSM
# parameter has: its keys are sorted) and in the AWS CLI's shorthand (ParameterKey=X,ParameterValue=...)
_YAML_PAIR = re.compile(
    r"(?P<h>" + _NAME_KEY_WORD + r":[ \t]+)(?P<n>[\"']?" + _NAME + r"[\"']?)"
    r"(?P<m>[ \t]*\r?\n(?:[ \t]+(?:Type|DataType):[ \t]+[A-Za-z]{1,20}[ \t]*\r?\n)?[ \t]+"
    + _VALUE_KEYS
    + r")(?=:[ \t])"
)
_SHORTHAND_PAIR = re.compile(
    r"(?P<h>" + _NAME_KEY_WORD + r"=)(?P<n>" + _NAME + r")(?P<m>," + _VALUE_KEYS + r")(?==)"
)
# a block of Key, Description and Value lines, columns apart, as `sam deploy` prints a stack's outputs
# (Key  OrdersTableName / Description  ... / Value  orders-prod): the view joins the name and the value
# with a colon (``_JOINED``), as a key and its value are written
_COLUMN_PAIR = re.compile(
    r"(?P<h>(?<![^\n\"'])Key[ \t]+)(?P<n>" + _NAME + r")"  # (at a line's start, or a string's)
    # (a long description wraps onto lines indented to its column)
    r"(?P<m>[ \t]*\r?\n(?:Description[ \t][^\r\n]*\r?\n(?:[ \t]{2,}[^\r\n]*\r?\n){0,4})?"
    r"Value[ \t]+)(?=[^ \t\r\n])"
)
_JOINED = ": "
_PAIRS = (
    (_JSON_PAIR, 'alue"'),
    (_YAML_PAIR, "alue:"),
    (_SHORTHAND_PAIR, "alue="),
    (_COLUMN_PAIR, "alue "),
)
"""Each syntax's pattern, behind the literal its value key ends with."""
# Those literals, in one regex pass (its literal search is as fast as str.find's); a JSON value key's
# with the blanks and colon after it that _JSON_PAIR looks ahead for: where a JSON pair can end.
_VALUE_KEY_END = re.compile(r'alue(?:"\s*:|[:=]|(?<=\nValue)[ \t])')
_JSON_REACH = 256
"""How far before where a JSON pair can end it is looked for first (see ``_json_pairs``)."""
_JSON_SOLID = {p: max_width(p.pattern.replace(r"\s*", "")) for p in (_JSON_PAIR, _TF_OUTPUT_PAIR)}
"""The most characters other than blanks a JSON pair holds (only its ``\\s*`` are unbounded)."""
# a YAML block scalar right after a key (OwnerId: >-, then the value on the next line)
_BLOCK_SCALAR = re.compile(r":[ \t]+(?P<h>[|>][-+]?[1-9]?[-+]?[ \t]*\r?\n[ \t]+)(?=[^ \t\r\n])")


# the pair the other way round, as CloudWatch writes an alarm's dimensions in the JSON it sends to
# SNS: {"value": "orders-db-prod", "name": "DBInstanceIdentifier"} (after the value key's colon)
_VALUE_FIRST_PAIR = re.compile(r'\s*"[^"\\\n]{1,256}"\s*,\s*"name"\s*:\s*(?P<n>"' + _NAME + r'")')


class _ValueFirst(NamedTuple):
    """A value-first pair, read as paired() reads a match of the other syntaxes: its segment is the
    name (``start("n")`` to ``span("m")[0]``), then from the value key's colon (``span("m")[1]``)."""

    begin: int  # where the value key's opening quote stands
    colon: int
    match: re.Match[str]

    def start(self, group: str | None = None) -> int:
        return self.match.start("n") if group == "n" else self.begin

    def end(self) -> int:
        return self.match.end()

    def span(self, group: str) -> tuple[int, int]:  # ("m": what the view leaves out)
        return self.match.end("n"), self.colon


# `cdk diff`: a changed property's key on one line, its old and new values on the lines under it, each
# behind the tree's branch and the change's mark (the key may be a nested member, written with a dot):
#  └─ [~] BucketName (requires replacement)        └─ [~] .DATA_BUCKET:
#      ├─ [-] acme-orders-data                         ├─ [-] acme-orders-data
#      └─ [+] acme-orders-data-v2                      └─ [+] acme-orders-data-v2
# Each value reads as the key's (``BucketName: acme-orders-data``), so the key rules apply to both.
_CDK_KEY = re.compile(r"[├└]─ \[~\] \.?(?P<n>" + _NAME + r"?)(?: \([a-z ]{1,40}\))?:?[ \t]*\r?\n")
_CDK_VALUE = re.compile(r"[ \t│]*[├└]─ \[[-+]\] (?=[^ \t\r\n])")


class _CdkValue(NamedTuple):
    """A value line under a `cdk diff` key line, read as paired() reads a match of the other syntaxes:
    its segment is the key (``start("n")`` to ``span("m")[0]``), then the value (from ``span("m")[1]``)."""

    begin: int  # where the value's line starts
    value: int  # where the value starts
    key: re.Match[str]

    def start(self, group: str | None = None) -> int:
        return self.key.start("n") if group == "n" else self.begin

    def end(self) -> int:
        return self.value

    def span(self, group: str) -> tuple[int, int]:  # ("m": what the view leaves out)
        return self.key.end("n"), self.value


def _cdk_values(text: str) -> Iterator[_CdkValue]:
    """The value lines (``[-]`` and ``[+]``) right under each key line of a `cdk diff`."""
    for key in _CDK_KEY.finditer(text):
        at = key.end()
        for _ in range(2):  # (the old value, the new one)
            line = _CDK_VALUE.match(text, at)
            if line is None:
                break
            yield _CdkValue(at, line.end(), key)
            at = text.find("\n", line.end()) + 1
            if not at:
                break


# An update in a `terraform plan` (``~ identifier = "orders-db-1" -> "orders-db-2"``) or a `pulumi preview
# --diff` (``~ identifier: "orders-db-1" => "orders-db-2"``): the new value reads as the key's, as the old
# one does in the text (``identifier = "orders-db-2"``). Looked for on each line that holds an arrow,
# once per line (a line of many arrows is read once: linear), its blank runs bounded.
_ARROW = re.compile(r"[ \t][-=]>[ \t]")
_ARROW_PAIR = re.compile(
    r"(?<![A-Za-z0-9_.:/-])(?P<n>[\"']?[A-Za-z_][A-Za-z0-9_.:/-]{0,127}[\"']?[ \t]{0,64}[:=][ \t]{0,64})"
    r"(?P<m>(?:\"[^\"\n]{0,256}\"|[^\s\"]{1,256})[ \t]{1,64}[-=]>[ \t]{1,64})(?=[\"'A-Za-z0-9])"
)


# A setting in code, its name a string argument or subscript and its value the next argument or what
# is assigned: os.environ["AWS_SECRET_ACCESS_KEY"] = "...", os.getenv("S3_BUCKET", "acme-uploads"),
# spark.conf.set("fs.s3a.secret.key", "..."), System.setProperty(...), os.Setenv(...), ENV['...'] = '...'
# (after a name: a call or a subscript, not a list). The value reads as the name's: the view joins them
# with a colon (``_JOINED``).
_CALL_PAIR = re.compile(
    # (the name a setting's: with a dot, an underscore, a colon or a capital, AWS_SECRET_ACCESS_KEY,
    # fs.s3a.secret.key, secretAccessKey; not a plain word, print("bucket", ...))
    r"[(\[](?<=[A-Za-z0-9_][(\[])[ \t]*[\"']"
    r"(?P<n>(?=[A-Za-z0-9_.:-]{0,80}[._:A-Z])[A-Za-z][A-Za-z0-9_.:-]{0,80})"
    r"(?P<m>[\"'][ \t]*(?:,|\][ \t]*=)[ \t]*)(?=[\"'])"
)


# `pulumi stack output`: under an OUTPUT / VALUE header, each row's name and value, columns apart
# (at a line's start or a string's: the JSON path scans a value after its key)
_OUTPUTS_HEADER = re.compile(r"(?:^|(?<=[\"']))[ \t]{0,64}OUTPUT[ \t]{1,64}VALUE[ \t]*\r?\n", re.M)
_OUTPUTS_ROW = re.compile(r"[ \t]{1,64}(?P<n>[A-Za-z][A-Za-z0-9_.:-]{0,127})(?P<m>[ \t]{2,64})(?=[^ \t\r\n])")


def _output_rows(text: str) -> Iterator[re.Match[str]]:
    at = 0
    for header in _OUTPUTS_HEADER.finditer(text):
        if header.start() < at:  # (inside the rows of the one before)
            continue
        at = header.end()
        # the rows, up to a line that is not one (another header is not: each line is read once)
        while not _OUTPUTS_HEADER.match(text, at) and (row := _OUTPUTS_ROW.match(text, at)) is not None:
            yield row
            at = text.find("\n", row.end()) + 1
            if not at:
                at = len(text)
                break


_JOINED_SYNTAXES = (_COLUMN_PAIR, _CALL_PAIR, _OUTPUTS_ROW)
"""The syntaxes whose view joins the name and the value with ``_JOINED``."""


def _arrow_pairs(text: str) -> Iterator[re.Match[str]]:
    line_end = -1
    for arrow in _ARROW.finditer(text):
        if arrow.start() < line_end:  # (a line read already)
            continue
        line_start = text.rfind("\n", 0, arrow.start()) + 1
        line_end = text.find("\n", arrow.end())
        if line_end < 0:
            line_end = len(text)
        yield from _ARROW_PAIR.finditer(text, line_start, line_end)


class Paired(NamedTuple):
    view: str
    """The segments, one after the other, a blank line (``_GAP``) between them."""
    source: Callable[[int], int]
    """View offset -> offset in the text the view was made from."""
    starts: list[int]
    """Where in the view each pair reads as a member: from its name (``starts[k]``) to the end of its
    value's line (``ends[k]``, at most ``_SEGMENT`` characters on), the only parts that differ from
    the text."""
    ends: list[int]


_SEGMENT = 512
_GAP = "\n\n"


def paired(text: str) -> Paired | None:
    """A second view of ``text`` (a folded view): the stretch around each name/value pair object, where it
    reads as the member it stands for: ``"ParameterKey": "DBInstanceIdentifier", "ParameterValue":
    "x"`` as ``"DBInstanceIdentifier": "x"`` (also ``{"name": "DATA_BUCKET", "value": ...}``, a
    tag's ``Key``/``Value``, YAML ``- Name: X`` / ``Value: ...``, the CLI's ``Key=X,Value=...``),
    so the catalogue's key rules apply to the value as they are; and the map back. None when there
    is no such pair. Only member keys are deleted, never a value. It is a second view, whose
    segments are scanned besides the first view (scanner.py), because the value's own key may be
    evidence too (``OutputValue``). Cost: a literal search for the value keys' endings, a regex pass
    per other syntax whose value key is there (JSON pairs are looked for just before their value
    keys), and a copy of the segments only."""
    json_ends: list[int] = []  # where each JSON pair can end, and where the colon after it ends
    marks: set[str] = set()
    value_first: list[_ValueFirst] = []
    lower_value = False  # a "value" key: Terraform's outputs may be there (and value-first pairs)
    for m in _VALUE_KEY_END.finditer(text):  # (as fast as a substring search for its literal)
        mark = m[0]
        if mark[4] == '"':
            json_ends += (m.start() + 5, m.end())
            if m.start() >= 2 and text[m.start() - 1] == "v":  # {"value": "x", "name": "Key"}
                lower_value = True
                reversed_pair = _VALUE_FIRST_PAIR.match(text, m.end())
                if reversed_pair is not None:
                    value_first.append(_ValueFirst(m.start() - 2, m.end() - 1, reversed_pair))
        else:
            marks.add(mark if mark[4] in ":=" else "alue ")
    syntaxes: list[Iterable[re.Match[str]]] = [_json_pairs(text, json_ends, _JSON_PAIR)] if json_ends else []
    if lower_value and textmarks.holds(text, "sensitive"):
        syntaxes.append(_json_pairs(text, json_ends, _TF_OUTPUT_PAIR))
    syntaxes += [pattern.finditer(text) for pattern, mark in _PAIRS[1:] if mark in marks]
    if value_first:
        syntaxes.append(value_first)  # type: ignore[arg-type]
    if "─ [" in text:  # (an ASCII text has no "─": then the test takes no search)
        syntaxes.append(_cdk_values(text))  # type: ignore[arg-type]
    if ">" in text and textmarks.holds(text, "arrow"):  # (a one-character test first: a memchr)
        syntaxes.append(_arrow_pairs(text))
    if textmarks.holds(text, "call"):
        syntaxes.append(_CALL_PAIR.finditer(text))
    if textmarks.holds(text, "outputs"):
        syntaxes.append(_output_rows(text))
    if not syntaxes:
        return None
    if len(syntaxes) == 1:  # one syntax: its matches come in order, each used as it comes
        matches = syntaxes[0]
    else:  # all in text order
        matches = sorted((m for found in syntaxes for m in found), key=lambda m: m.start())
    # each pair's segment, from its name to the end of its value's line, with the keys between them
    # left out: built piece by piece (no copy of the whole text), one line apart (a dump has
    # thousands of pairs: the loop does each in a few list operations, and keeps no object per pair)
    parts: list[str] = []
    view_starts: list[int] = []
    text_starts: list[int] = []
    ends: list[int] = []
    add_end = ends.append
    find, size, gap = text.find, len(text), len(_GAP)
    at = 0
    last = 0
    for m in matches:
        if m.start() < last:
            continue
        last = m.end()
        name, (cut, resume) = m.start("n"), m.span("m")
        line_end = find("\n", resume + 1, resume + _SEGMENT)
        stop = line_end if line_end >= 0 else min(size, resume + _SEGMENT)
        # (a joiner maps to the deleted text after the name: no find starts or ends in it)
        joiner = _JOINED if getattr(m, "re", None) in _JOINED_SYNTAXES or type(m) is _CdkValue else ""
        middle = at + cut - name + len(joiner)  # where the value's part starts in the view
        end = middle + stop - resume
        view_starts += (at, middle)
        text_starts += (name, resume)
        parts += (text[name:cut] + joiner, text[resume:stop], _GAP)
        add_end(end)
        at = end + gap
    if not ends:
        return None

    def source(offset: int) -> int:
        k = bisect_right(view_starts, offset) - 1
        return text_starts[k] + offset - view_starts[k]

    return Paired("".join(parts), source, view_starts[0::2], ends)


def _json_pairs(text: str, ends: list[int], pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` (``_JSON_PAIR``, ``_TF_OUTPUT_PAIR``), looked for only before where a
    pair can end: ``ends`` holds, for
    each value key's closing quote followed by blanks and a colon (in text order), the offset after the
    quote and the offset after the colon. A match ends at such a quote and holds no other (a name, a
    type or the key before it may end in "alue", but is followed by a comma or is a name key), so each
    is the one match, if any, in the stretch from the previous such colon to its own. That stretch is
    searched over its last ``_JSON_REACH`` characters first; only if they hold no match and could all
    lie inside one (no more than ``_JSON_SOLID[pattern]`` characters that are not blanks) over all of
    it."""
    lo = 0
    for k in range(0, len(ends), 2):
        end, hi = ends[k], ends[k + 1]
        near = max(lo, end - _JSON_REACH)
        m = pattern.search(text, near, hi)
        if m is None and near > lo and sum(map(len, text[near:end].split())) <= _JSON_SOLID[pattern]:
            m = pattern.search(text, lo, hi)
        if m is not None:
            yield m
        lo = hi


def _deleted(text: str, spans: list[tuple[int, int]]) -> tuple[str, _Level]:
    """``text`` without the (sorted, disjoint) ``spans``, and the map back: a view offset at a deletion
    maps to just after the deleted text."""
    parts: list[str] = []
    view_ends: list[int] = []
    source_ends: list[int] = []
    last = 0
    length = 0
    for start, end in spans:
        parts.append(text[last:start])
        length += start - last
        view_ends.append(length)
        source_ends.append(end)
        last = end
    parts.append(text[last:])
    return "".join(parts), _Level(view_ends, source_ends, True)
