"""Restore tokens to originals, for one request's token map only.

A token that this request did not issue (someone else's token, or token-shaped text the client sent)
is left exactly as it is. Restoring is one regex pass, so it is linear in the body size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .tokens import TOKEN_RE


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


def json_escaped(tokens: Mapping[str, str]) -> dict[str, str]:
    """The token map with each original escaped as the inside of a JSON string."""
    return {t: json.dumps(o, ensure_ascii=False)[1:-1] for t, o in tokens.items()}
