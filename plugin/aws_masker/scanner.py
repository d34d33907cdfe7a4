"""One pass over the text: the catalogue's rules tried where an identifier can begin.

At each position tried, the first rule (in catalogue order) that matches wins and its whole match is
consumed. A validator may reject a match; then the later rules get a try at the same position before
the scan moves on.

Which positions and rules are tried depends on the mode; all three find exactly the same identifiers:
- ``anchors`` (the default where the ``hyperscan`` package is installed): only where prefilter.py
  reports that a rule's anchor starts, and there only the rules whose anchors start there. Hyperscan
  finds those in one compiled pass; Python's ``re`` then runs each reported rule's own pattern.
- ``words``: the rules compiled into one alternation, behind a possessive "skipper" that jumps from
  word start to word start inside the regex engine and skips plain words no rule can start with.
  Every rule starts with a literal or a character class, so one that cannot match is rejected on its
  first character. Pure ``re``: the fallback where Hyperscan has no wheel.
- ``plain``: the same alternation at every word start, no shortcut. The reference the tests hold the
  other two to.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from json.decoder import scanstring
from typing import NamedTuple

from . import prefilter
from .errors import InvalidEncodingError
from .patterns import LEAD_WORDS, POSSESSIVE, RULES, WORD_GUARDS, Rule, Verdict, literal_trie, run
from .textview import OTHER_SPACES, Paired, backslash_escapes, folded, paired

MODES = ("anchors", "words", "plain")
DEFAULT_MODE = "anchors" if prefilter.AVAILABLE else "words"

_GROUP_DEF = re.compile(r"\(\?P<([a-z]+)>")
_ESCAPE_U = re.compile(r"\\u[0-9a-fA-F]{4}")
_ESCAPE_SHORT = re.compile(r"\\[nrtbf]")

# Between word starts: punctuation runs, then words (or a lone ':', where an IPv6 address may start).
_PUNCT = run("[^A-Za-z0-9:]")
_WORD = run("[A-Za-z0-9]", at_least_one=True)
# A "plain" word is followed by whitespace, a quote, a bracket, a comma or similar, or by sentence
# punctuation before whitespace. No rule can start at a plain word unless the word begins with one of
# the rules' leading literals (``LEAD_WORDS``: keys like "OwnerId", prose words like "bucket", key
# prefixes like "AKIA"), is a 12-digit number (an account ID) or 64 hex digits (a canonical user ID),
# or follows such 64 hex digits and a space (an S3 access log's bucket field): every other rule needs
# a "-", ".", ":" or "_" inside its first word. So all other plain words are skipped without trying
# the rules.
# tests/test_corpus.py and tests/test_properties.py check this shortcut against the word-by-word scan.
_PLAIN_SEPARATORS = r"(?:[\s\"',;{}\[\]()<>|!?=&@#%+*]|[.:](?:\s|\Z))"


_FIRST_WORD = re.compile("[A-Za-z0-9]+")


def _skipper(fast: bool) -> str:
    if not fast:
        return _PUNCT + r"(?:(?:" + _WORD + "|:)" + _PUNCT + r")*?"
    # (a lead word's first word: "DynamoDB" of "DynamoDB Table", a lead of the Terraform provider's
    # messages; the first word is plain, followed by a blank, and would be skipped)
    leads = {m[0] for m in map(_FIRST_WORD.match, LEAD_WORDS) if m is not None}
    # value-anchored rules: 12-digit account IDs and 64-hex canonical user IDs; and the word after
    # such an ID (an S3 access log's bucket field)
    guard = (
        literal_trie(leads)
        + "|[0-9]{12}(?![0-9])|[0-9a-f]{64}(?![0-9a-z])|(?<=[0-9a-f]{64} )|"
        + "|".join(WORD_GUARDS)
    )
    plain = r"(?:(?!" + guard + r")" + _WORD + "(?=" + _PLAIN_SEPARATORS + ")" + _PUNCT + r")*" + POSSESSIVE
    return _PUNCT + plain + r"(?:(?:" + _WORD + "|:)" + _PUNCT + plain + r")*?"


def _namespaced(regex: str, prefix: str) -> str:
    return _GROUP_DEF.sub(lambda m: f"(?P<{prefix}{m[1]}>", regex)


# an escaped surrogate pair is one escape (it decodes to one character: split, its halves would not)
_UNESCAPE = re.compile(
    r"(\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}" + r'|u[0-9a-fA-F]{4}|["\\/bfnrt]))'
)
# a backslash escape of another language, left after JSON's: \xHH (Python, C, JavaScript, shell),
# \u{H...} (JavaScript, Rust, Swift), \UHHHHHHHH (Python, C), \OOO (octal: C, Python, shell's printf;
# three digits, as they read it; CSS's six-digit form of an ASCII character begins 0000; not before
# ".<digit>": a UNC path's address, \\172.31.5.20\share) and CSS's \H... (six hex digits, or fewer and
# the blank that ends them: a Windows path's \AKIA... or \arn:... is no escape)
_OTHER_ESCAPE = re.compile(
    r"(\\(?:x[0-9A-Fa-f]{2}|u\{[0-9A-Fa-f]{1,6}\}|U[0-9A-Fa-f]{8}|(?!000)[0-3][0-7]{2}(?!\.[0-9])"
    r"|[0-9A-Fa-f]{6}[ \t]?|[0-9A-Fa-f]{1,5}[ \t]))"
)
ESCAPE_LEVELS = 16
"""How many levels of JSON string escaping the scan sees through (JSON in a string in a string ...).
A text still escaped past that is refused (``unescaped``): each level costs a pass over the text, and
``\\u005c`` makes a new escape from an old one, so a client could nest levels without bound."""


class _Level(NamedTuple):
    """One level of unescaping: view offset -> offset in the text it was made from."""

    view_ends: list[int]  # where each decoded escape ends in the view
    source_ends: list[int]  # and where it ended in the text

    def source(self, offset: int) -> int:
        k = bisect_right(self.view_ends, offset)  # the escapes that start before the offset
        return offset + self.source_ends[k - 1] - self.view_ends[k - 1] if k else offset


def unescape_once(text: str) -> tuple[str, _Level] | None:
    """``text`` with each JSON escape decoded, and the map back. All at C speed: the escapes are split
    out, decoded together by the json module (each to one character: an escaped surrogate pair is one
    escape, and an "x" between escapes keeps two halves written apart from joining), and the offsets
    are running sums."""
    parts = _UNESCAPE.split(text)
    if len(parts) == 1:
        return None
    source_ends = list(accumulate(map(len, parts)))[1::2]
    parts[1::2] = scanstring("x".join(parts[1::2]) + '"', 0, False)[0][0::2]
    view_ends = list(accumulate(map(len, parts)))[1::2]
    return "".join(parts), _Level(view_ends, source_ends)


def unescaped(text: str) -> tuple[str, Callable[[int], int] | None]:
    """The text the rules see, and how to map its offsets back to ``text`` (None: the same offsets).

    JSON string escapes (``\\"``, ``\\/``, ``\\\\``, ``\\n``, ``\\u0069``, ...) are decoded, level
    after level (JSON inside a string inside a string, up to ``ESCAPE_LEVELS``; a text still escaped
    past that is refused with ``InvalidEncodingError``), so a key written as
    ``\\"OwnerId\\": \\"483920175526\\"`` in a pasted CloudWatch record gives its value context as it
    does unescaped, and an escaped newline ends a line as a newline does. JSON escapes left after that
    are blanked (``escapes_blanked``); other languages' (``\\x2d``, ``\\u{2d}``, ``\\U0000002d``) are
    decoded where they stand for a character identifiers are made of. An identifier found in the view
    maps back to the whole range of the text it was decoded from, escapes included, and its value is
    the decoded one. A few C-speed passes per level."""
    if "\\" not in text:
        return text, None
    levels: list[_Level] = []
    view = text
    while len(levels) < ESCAPE_LEVELS and "\\" in view:
        once = unescape_once(view)
        if once is None:
            break
        view, level = once
        levels.append(level)
    if len(levels) == ESCAPE_LEVELS and _UNESCAPE.search(view):
        raise InvalidEncodingError(
            f"a string in the request is JSON-escaped more than {ESCAPE_LEVELS} levels deep; it cannot "
            "be masked and was not forwarded"
        )
    view = escapes_blanked(view)
    parts = _OTHER_ESCAPE.split(view)
    if len(parts) > 1:  # other languages' escapes: the characters of identifiers they stand for
        source_ends = list(accumulate(map(len, parts)))[1::2]
        parts[1::2] = backslash_escapes(parts[1::2])
        view = "".join(parts)
        levels.append(_Level(list(accumulate(map(len, parts)))[1::2], source_ends))
    if not levels:
        return view, None
    if len(levels) == 1:
        return view, levels[0].source
    ordered = levels[::-1]

    def source(offset: int) -> int:
        for level in ordered:
            offset = level.source(offset)
        return offset

    return view, source


def escapes_blanked(text: str) -> str:
    """A JSON-style escape ("\\n", "\\t", "\\u0027", ...) ends a word, so it is blanked in a
    same-length view (how the rules see the escapes ``unescaped`` leaves; echo.py's view of a text):
    "\\n10.0.0.1" or "\\u0027i-0abc..." in JSON text cannot hide an identifier."""
    if "\\" not in text:
        return text
    return _ESCAPE_SHORT.sub("\\\\\x00", _ESCAPE_U.sub("\\\\\x00\x00\x00\x00\x00", text))


class Found(NamedTuple):
    """One recognised identifier: ``text[start:end]`` is the value to replace."""

    start: int
    end: int
    rule: Rule
    category: str
    kind: str
    value: str
    mask: bool  # False: recognised but kept verbatim (category off, allow-listed, KEEP verdict)


_MASK, _REJECT = Verdict.MASK, Verdict.REJECT
_NO_SPAN = (-1, -1)
Emit = Callable[[int, int, Rule, str, str, str, bool], object]
"""Receives the fields of one ``Found``: start, end, rule, category, kind, value, mask."""
# a rule's single-pattern match method, the rule, the group numbers of its value, tail and pair groups
# (0 if it has none), its validator, kind_of, category_of, kind, category and items pattern
_Plan = tuple[
    Callable[[str, int], "re.Match[str] | None"],
    Rule,
    int,
    int,
    int,
    Callable[[str, str, int], Verdict] | None,
    Callable[[str], str] | None,
    Callable[[str], str] | None,
    str,
    str,
    "re.Pattern[str] | None",
]


_BLANKS = str.maketrans(dict.fromkeys(OTHER_SPACES, " "))


def _mapped(emit: Emit, source: Callable[[int], int], original: str) -> Emit:
    """``emit`` with view offsets mapped back to the scanned text's (``original``). A value the fold
    changed only by reading other blanks as spaces ("4839\u00a02017\u00a05526") is issued as written,
    so its token restores the client's own characters."""

    # (a find's end maps with the view's own end map where it has one: textview.folded's, which does not
    # carry an end across text the view left out)
    source_end = getattr(source, "end", source)

    def mapped(start: int, end: int, rule: Rule, category: str, kind: str, value: str, mask: bool) -> object:
        start, end = source(start), source_end(end)
        if " " in value:
            raw = original[start:end]
            if raw != value and raw.translate(_BLANKS) == value:
                value = raw
        return emit(start, end, rule, category, kind, value, mask)

    return mapped


class Scanner:
    """Compiled catalogue. Thread-safe and reusable: holds no per-request state."""

    def __init__(self, rules: tuple[Rule, ...] = RULES, mode: str = DEFAULT_MODE) -> None:
        if mode not in MODES:
            raise ValueError(f"scanner mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.rules = rules
        self.mode = mode
        # per rule, what accepting one of its matches needs (see _take)
        self._plans: list[_Plan] = []
        for i, rule in enumerate(rules):
            single = re.compile(_namespaced(rule.regex, f"r{i}"), re.S)
            group = single.groupindex.get
            self._plans.append(
                (
                    single.match,
                    rule,
                    group(f"r{i}v", 0),
                    group(f"r{i}t", 0),
                    group(f"r{i}p", 0),
                    rule.validate,
                    rule.kind_of,
                    rule.category_of,
                    rule.kind,
                    rule.category,
                    re.compile(rule.items) if rule.items else None,
                )
            )
        if mode == "anchors":
            self._prefilter = prefilter.Prefilter(rules)
        else:
            # the rules one after the other, each followed by an empty group that names it
            alts = [f"{_namespaced(rule.regex, f'r{i}')}(?P<r{i}>)" for i, rule in enumerate(rules)]
            skipper = _skipper(fast=mode == "words")
            self._combined = re.compile(skipper + r"(?P<s>)(?:" + "|".join(alts) + r"|\Z)", re.S)
            self._index = {f"r{i}": i for i in range(len(rules))}
            # what each rule can begin with (None: anything), and per rule and character the later
            # rules that can begin with it (filled as needed): where a rule's validator rejects its
            # match, only those are tried, not every later rule
            self._firsts = [prefilter.first_chars(rule.regex) for rule in rules]
            self._later: dict[tuple[int, str], tuple[int, ...]] = {}

    def scan(self, text: str, enabled: frozenset[str], allow: frozenset[str]) -> list[Found]:
        """All identifiers in ``text``, in order and non-overlapping."""
        found: list[Found] = []
        add = found.append
        self.each(text, enabled, allow, lambda *fields: add(Found(*fields)))
        return found

    def each(self, text: str, enabled: frozenset[str], allow: frozenset[str], emit: Emit) -> None:
        """Call ``emit`` with the fields of each ``Found`` in ``text``, in order: the engine renders as
        it goes, without collecting them. The rules see ``text`` unescaped (``unescaped``) and folded
        (textview.py: percent-encoding, HTML references, unicode look-alikes)."""
        original = text
        text, source = folded(*unescaped(text))
        pairs = paired(text)
        if pairs is not None:
            self._scan_both(text, pairs, source, original, enabled, allow, emit)
            return
        if source is not None:
            emit = _mapped(emit, source, original)
        self._scan(text, enabled, allow, emit)

    def _scan(self, text: str, enabled: frozenset[str], allow: frozenset[str], emit: Emit) -> None:
        if self.mode == "anchors":
            self._scan_candidates(text, enabled, allow, emit)
        else:
            self._scan_words(text, enabled, allow, emit)

    def _scan_both(
        self,
        text: str,
        pairs: Paired,
        source: Callable[[int], int] | None,
        original: str,
        enabled: frozenset[str],
        allow: frozenset[str],
        emit: Emit,
    ) -> None:
        """Scan the view, and the segments of its paired view (textview.paired) where pairs read as
        members, and emit the union, in order and non-overlapping: where both find something, the
        earlier start wins, then the longer match, then the one that masks."""
        view, to_text, starts, ends = pairs
        # the segments in one scan (a dump of thousands of tags is thousands of segments); a match
        # across the blank line between two is dropped
        extra: list[tuple] = []  # type: ignore[type-arg]

        def add_segment(start: int, end: int, *fields: object) -> None:
            if end <= ends[bisect_right(starts, start) - 1]:
                extra.append((to_text(start), to_text(end), *fields))

        self._scan(view, enabled, allow, add_segment)
        if source is not None:
            emit = _mapped(emit, source, original)
        if not extra:  # the usual case (tags and parameters whose values hold no identifier)
            self._scan(text, enabled, allow, emit)
            return
        # then the view, merged with those in order as it goes (it finds in order): no list of its
        # thousands of finds, no sort
        order = lambda f: (f[0], -f[1], not f[6])  # noqa: E731
        extra.sort(key=order)
        end = 0
        i = 0
        upcoming = extra[0][0] if extra else -1  # where the next segment find starts (-1: none left)

        def merged(*f: object) -> None:
            nonlocal end, i, upcoming
            start = f[0]
            if 0 <= upcoming <= start:  # segment finds that come first (in the order above)
                key = order(f)
                while i < len(extra) and order(extra[i]) < key:  # (ties: the view first)
                    g = extra[i]
                    i += 1
                    if g[0] >= end:
                        emit(*g)
                        end = g[1]
                upcoming = extra[i][0] if i < len(extra) else -1
            if start >= end:  # type: ignore[operator]
                emit(*f)
                end = f[1]  # type: ignore[assignment]

        self._scan(text, enabled, allow, merged)
        for g in extra[i:]:
            if g[0] >= end:
                emit(*g)
                end = g[1]

    def _scan_candidates(self, text: str, enabled: frozenset[str], allow: frozenset[str], emit: Emit) -> None:
        take, rule_of, shift, mask = self._take, self._prefilter.rule_of, prefilter.SHIFT, prefilter.MASK
        resume = 0
        # each hit: an offset and a rule that may start there; at one offset, in catalogue order
        for hits in self._prefilter.windows(text):
            for hit in hits:
                start = hit >> shift
                if start >= resume:  # else: inside an identifier already consumed, or taken here
                    end = take(text, start, rule_of[hit & mask], enabled, allow, emit)
                    if end >= 0:
                        resume = end

    def _scan_words(self, text: str, enabled: frozenset[str], allow: frozenset[str], emit: Emit) -> None:
        match, take, index = self._combined.match, self._take, self._index
        pos = 0
        n = len(text)
        while pos < n:
            m = match(text, pos)
            if m is None:  # pragma: no cover - the pattern always reaches \Z
                break
            if m.lastgroup == "s":
                break  # reached the end: no identifier in the rest of the text
            start = m.start("s")
            # the combined pattern found the first rule that matches here: it, else (its validator
            # rejected the match) the later ones that can begin with this character
            i = index[m.lastgroup]  # type: ignore[index]
            end = take(text, start, i, enabled, allow, emit)
            if end < 0:
                for j in self._later_rules(i, text[start]):
                    end = take(text, start, j, enabled, allow, emit)
                    if end >= 0:
                        break
            pos = end if end >= 0 else start + 1

    def _later_rules(self, i: int, char: str) -> tuple[int, ...]:
        """The rules after rule ``i`` that a match can begin with ``char``, in catalogue order."""
        later = self._later.get((i, char))
        if later is None:
            firsts = self._firsts
            later = tuple(j for j in range(i + 1, len(firsts)) if firsts[j] is None or char in firsts[j])  # type: ignore[operator]
            if char.isascii():  # (a bounded table: 128 characters per rule at most)
                self._later[(i, char)] = later
        return later

    def _take(
        self,
        text: str,
        start: int,
        i: int,
        enabled: frozenset[str],
        allow: frozenset[str],
        emit: Emit,
    ) -> int:
        """Try rule ``i`` at ``start``. If it matches and its validator does not reject the match,
        emit what it found and return where the match ends; else return -1."""
        (
            match,
            rule,
            value_group,
            tail_group,
            pair_group,
            validate,
            kind_of,
            category_of,
            kind,
            category,
            items,
        ) = self._plans[i]
        m = match(text, start)
        if m is None:
            return -1
        end = m.end()
        # (a group that did not take part in the match spans (-1, -1))
        value_start, value_end = m.span(value_group) if value_group else _NO_SPAN
        if value_start < 0:
            value_start, value_end = start, end
            if tail_group and m.start(tail_group) >= 0:
                value_end = m.start(tail_group)
        if items is not None:  # (the scan goes on after the last item taken: a word the list took
            # in, such as the next sentence's "databases x", may start another find)
            return self._take_items(text, value_start, value_end, i, enabled, allow, emit)
        value = text[value_start:value_end]
        verdict = validate(value, text, value_start) if validate else _MASK
        if verdict is _REJECT:
            return -1
        if kind_of:  # rule.classify, inlined (this is the engine's hot path)
            kind = kind_of(value)
            if category_of:
                category = category_of(kind)
        mask = verdict is _MASK and category in enabled and value not in allow
        emit(value_start, value_end, rule, category, kind, value, mask)
        if pair_group and m.start(pair_group) >= 0:
            pair_start, pair_end = m.span(pair_group)
            pair = text[pair_start:pair_end]
            pair_mask = category in enabled and pair not in allow
            emit(pair_start, pair_end, rule, category, rule.pair_kind or kind, pair, pair_mask)
        return end

    def _take_items(
        self,
        text: str,
        start: int,
        end: int,
        i: int,
        enabled: frozenset[str],
        allow: frozenset[str],
        emit: Emit,
    ) -> int:
        """Emit each item of rule ``i``'s list at ``text[start:end]`` that its validator does not
        reject; where the last one emitted ends (-1: none was, the rule did not match here)."""
        _match, rule, _v, _t, _p, validate, kind_of, category_of, kind, category, items = self._plans[i]
        found = -1
        for m in items.finditer(text, start, end):  # type: ignore[union-attr]
            item_start, item_end = m.span("v") if "v" in m.re.groupindex else m.span()
            value = text[item_start:item_end]
            verdict = validate(value, text, item_start) if validate else _MASK
            if verdict is _REJECT:
                continue
            item_kind = kind_of(value) if kind_of else kind
            item_category = category_of(item_kind) if kind_of and category_of else category
            mask = verdict is _MASK and item_category in enabled and value not in allow
            emit(item_start, item_end, rule, item_category, item_kind, value, mask)
            found = item_end
        return found
