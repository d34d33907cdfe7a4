"""Restore tokens to originals, for one request's token map only.

A token that this request did not issue (someone else's token, or token-shaped text the client sent)
is left exactly as it is. Restoring is one regex pass, so it is linear in the body size.

``StreamRestorer`` does the same on a body that arrives in chunks cut at any byte: it holds back
only the longest tail that could still become one of this request's tokens (at most the length of
the longest token minus one), so what it emits never depends on where the chunks were cut. It is
the reference for the Lua restore plugin (``kong/plugins/aws-masker-restore/``), which must produce
the same bytes for the same chunks; ``TokenMap`` holds what both need to know about the tokens.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from collections.abc import Mapping

from .tokens import TOKEN_PATTERN, TOKEN_RE

_TOKEN_BYTES = re.compile(TOKEN_PATTERN.encode("ascii"))


def restore_text(text: str, tokens: Mapping[str, str]) -> tuple[str, int]:
    """Replace this request's tokens in plain text. Returns the text and the number restored."""
    if not tokens:
        return text, 0
    count = 0

    def repl(m) -> str:
        nonlocal count
        original = tokens.get(m.group())
        if original is None:
            return m.group()
        count += 1
        return original

    return TOKEN_RE.sub(repl, text), count


def restore_json_text(text: str, tokens: Mapping[str, str]) -> tuple[str, int]:
    """Replace tokens inside serialized JSON, escaping each original as a JSON string fragment.

    Tokens contain no character JSON escapes, so a token in the raw text is always a whole token of
    some decoded string; escaping the original keeps the document valid whatever it contains.
    """
    if not tokens:
        return text, 0
    return restore_text(text, json_escaped(tokens))


def json_escape(value: str) -> str:
    """``value`` as the inside of a JSON string: ``"`` ``\\`` and control characters escaped, the
    rest (non-ASCII included) as it is."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def json_escaped(tokens: Mapping[str, str]) -> dict[str, str]:
    """The token map with each original escaped as the inside of a JSON string."""
    return {t: json_escape(o) for t, o in tokens.items()}


def token_kind(token: str) -> str:
    """``AWS_<KIND>_<12 hex>`` -> ``KIND``."""
    return token[4:-13]


class TokenMap:
    """One request's tokens as the byte-level restorers use them."""

    def __init__(self, tokens: Mapping[str, str], categories: Mapping[str, str], escaped: bool) -> None:
        """``categories`` maps a token kind to its category (for the per-category counts);
        ``escaped`` restores each original JSON-escaped (for JSON and SSE bodies)."""
        self.replacement = {
            t.encode("ascii"): (json_escape(o) if escaped else o).encode("utf-8") for t, o in tokens.items()
        }
        self.category = {t.encode("ascii"): categories.get(token_kind(t), "") for t in tokens}
        self._sorted = sorted(self.replacement)
        self._longest = max((len(t) for t in self._sorted), default=0)
        self.counts: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self.replacement)

    def restore(self, data: bytes) -> bytes:
        """Every whole token of this map in ``data`` replaced (and counted)."""
        if not self.replacement or b"AWS_" not in data:
            return data

        def repl(m: re.Match[bytes]) -> bytes:
            token = m.group()
            new = self.replacement.get(token)
            if new is None:
                return token
            self.counts[self.category[token]] += 1
            return new

        return _TOKEN_BYTES.sub(repl, data)

    def carry_len(self, data: bytes) -> int:
        """Length of the longest suffix of ``data`` that is a proper prefix of one of our tokens."""
        for i in range(max(0, len(data) - self._longest + 1), len(data)):
            if data[i] == 0x41 and self._is_prefix(data[i:]):  # "A"
                return len(data) - i
        return 0

    def _is_prefix(self, tail: bytes) -> bool:
        k = bisect.bisect_left(self._sorted, tail)
        return k < len(self._sorted) and self._sorted[k].startswith(tail) and self._sorted[k] != tail


class StreamRestorer:
    """Restore a JSON or text body chunk by chunk."""

    def __init__(self, tokens: TokenMap) -> None:
        self.tokens = tokens
        self.passed = False  # never set: a text restore holds at most one token's length
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        if not self.tokens:
            return data
        data = self._carry + data
        cut = len(data) - self.tokens.carry_len(data)
        self._carry = data[cut:]
        return self.tokens.restore(data[:cut])

    def finish(self) -> bytes:
        out, self._carry = self._carry, b""
        return out
