"""One pass over the text with one combined regular expression.

The catalogue's rules are compiled into a single alternation. A possessive "skipper" in front of it
jumps from word start to word start inside the regex engine, so rules are only tried where an
identifier can begin, and every rule starts with a literal or a character class, so a rule that
cannot match there is rejected on its first character. At each word start the first rule (in
catalogue order) that matches wins and its whole match is consumed. A validator may reject a match;
then the remaining rules get a try at the same position before the scan moves on.

Token-shaped text is found by a separate literal search (``TOKEN_RE``, anchored on ``AWS_``), so it
is reserved exactly where the restore would find it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .patterns import LEAD_WORDS, POSSESSIVE, RULES, Rule, Verdict, literal_trie, run
from .tokens import TOKEN_RE

_GROUP_DEF = re.compile(r"\(\?P<([a-z]+)>")
_ESCAPE = re.compile(r"\\(?:[nrtbf]|u[0-9a-fA-F]{4})")

# Between word starts: punctuation runs, then words (or a lone ':', where an IPv6 address may start).
_PUNCT = run("[^A-Za-z0-9:]")
_WORD = run("[A-Za-z0-9]", at_least_one=True)
# A "plain" word is followed by whitespace, a quote, a bracket, a comma or similar, or by sentence
# punctuation before whitespace. No rule can start at a plain word unless the word begins with one of
# the rules' leading literals (``LEAD_WORDS``: keys like "OwnerId", prose words like "bucket", key
# prefixes like "AKIA") or is a 12-digit number (an account ID):
# every other rule needs a "-", ".", ":" or "_" inside its first word. So all other plain words are
# skipped without trying the rules.
# tests/test_corpus.py and tests/test_properties.py check this shortcut against the word-by-word scan.
_PLAIN_SEPARATORS = r"(?:[\s\"',;{}\[\]()<>|!?=&@#%+*]|[.:](?:\s|\Z))"


def _skipper(fast: bool) -> str:
    if not fast:
        return _PUNCT + r"(?:(?:" + _WORD + "|:)" + _PUNCT + r")*?"
    leads = {w for w in LEAD_WORDS if w.isalnum()}
    # value-anchored rules: 12-digit account IDs, 40-character secret keys
    guard = literal_trie(leads) + "|[0-9]{12}(?![0-9])"
    plain = r"(?:(?!" + guard + r")" + _WORD + "(?=" + _PLAIN_SEPARATORS + ")" + _PUNCT + r")*" + POSSESSIVE
    return _PUNCT + plain + r"(?:(?:" + _WORD + "|:)" + _PUNCT + plain + r")*?"


def _namespaced(regex: str, prefix: str) -> str:
    return _GROUP_DEF.sub(lambda m: f"(?P<{prefix}{m[1]}>", regex)


class Found(NamedTuple):
    """One recognised identifier: ``text[start:end]`` is the value to replace."""

    start: int
    end: int
    rule: Rule
    category: str
    kind: str
    value: str
    mask: bool  # False: recognised but kept verbatim (category off, allow-listed, KEEP verdict)


class Scanner:
    """Compiled catalogue. Thread-safe and reusable: holds no per-request state."""

    def __init__(self, rules: tuple[Rule, ...] = RULES, fast_skip: bool = True) -> None:
        self.rules = rules
        alts = [f"{_namespaced(rule.regex, f'r{i}')}(?P<r{i}>)" for i, rule in enumerate(rules)]
        self._combined = re.compile(_skipper(fast_skip) + r"(?P<s>)(?:" + "|".join(alts) + r"|\Z)", re.S)
        self._singles = [re.compile(a, re.S) for a in alts]
        self._index = {f"r{i}": i for i in range(len(rules))}
        # per rule, for the combined pattern and for its own pattern: group numbers of the end marker,
        # the value group and the tail group (0 when the rule has none)
        self._groups = [self._group_numbers(self._combined, i) for i in range(len(rules))]
        self._single_groups = [self._group_numbers(p, i) for i, p in enumerate(self._singles)]
        self._start_group = self._combined.groupindex["s"]

    @staticmethod
    def _group_numbers(pattern: re.Pattern[str], i: int) -> tuple[int, int, int, int]:
        index = pattern.groupindex
        return index[f"r{i}"], index.get(f"r{i}v", 0), index.get(f"r{i}t", 0), index.get(f"r{i}p", 0)

    def scan(self, text: str, enabled: frozenset[str], allow: frozenset[str]) -> tuple[list[Found], set[str]]:
        """All identifiers in ``text`` (in order, non-overlapping) and the token-shaped strings in it."""
        reserved = set(TOKEN_RE.findall(text)) if "AWS_" in text else set()
        if "\\" in text:
            # A JSON-style escape ("\n", "\t", "\u0027", ...) ends a word: scan a same-length view
            # where the escape is blanked, so "\n10.0.0.1" or "\u0027i-0abc..." in JSON text (serialized
            # tool output, or a body that does not parse) cannot hide an identifier.
            text = _ESCAPE.sub(lambda m: "\\" + "\x00" * (len(m.group()) - 1), text)
        found: list[Found] = []
        match, accept = self._combined.match, self._accept
        index, groups, s_group = self._index, self._groups, self._start_group
        pos = 0
        n = len(text)
        while pos < n:
            m = match(text, pos)
            if m is None:  # pragma: no cover - the pattern always reaches \Z
                break
            name = m.lastgroup
            if name == "s":
                break  # reached the end: no identifier in the rest of the text
            start = m.start(s_group)
            i = index[name]  # type: ignore[index]
            end = accept(i, m, start, groups[i], text, enabled, allow, found)
            j = i + 1
            # Rejected: the later rules get a try at the same position, then the scan moves on.
            while end < 0 and j < len(self.rules):
                m2 = self._singles[j].match(text, start)
                if m2 is not None:
                    end = accept(j, m2, start, self._single_groups[j], text, enabled, allow, found)
                j += 1
            pos = end if end >= 0 else start + 1
        return found, reserved

    def _accept(
        self,
        i: int,
        m: re.Match[str],
        start: int,
        groups: tuple[int, int, int, int],
        text: str,
        enabled: frozenset[str],
        allow: frozenset[str],
        found: list[Found],
    ) -> int:
        """Validate rule ``i``'s match; if accepted, append what it found and return where the match
        ends, else return -1."""
        rule = self.rules[i]
        validate = rule.validate
        marker, vgroup, tgroup, pgroup = groups
        end = m.start(marker)
        if vgroup and m.start(vgroup) >= 0:
            start, end = m.span(vgroup)
        elif tgroup and m.start(tgroup) >= 0:
            end = m.start(tgroup)
        value = text[start:end]
        verdict = validate(value, text, start) if validate else Verdict.MASK
        if verdict is Verdict.REJECT:
            return -1
        category, kind = rule.classify(value)
        mask = verdict is Verdict.MASK and category in enabled and value not in allow
        found.append(Found(start, end, rule, category, kind, value, mask))
        if pgroup and m.start(pgroup) >= 0:
            p_start, p_end = m.span(pgroup)
            second = text[p_start:p_end]
            mask2 = category in enabled and second not in allow
            found.append(Found(p_start, p_end, rule, category, rule.pair_kind or kind, second, mask2))
        return m.end()
