"""Helpers of the detection-gap tests: how many given originals pass unmasked, in pasted text and on
the JSON path (a tool_use input in a Messages body). Failures report counts, never values."""

from __future__ import annotations

import functools
import json

from aws_masker.body import mask_request
from aws_masker.engine import Masker
from aws_masker.restore import restore_text
from aws_masker.scanner import Scanner


def leaks(masker: Masker, text: str, values: list[str]) -> int:
    """How many of ``values`` pass unmasked in ``text`` (and the masking restores exactly)."""
    masked, result = masker.mask_text(text)
    assert restore_text(masked, result.tokens)[0] == text
    return sum(value in masked for value in values)


def json_leaks(masker: Masker, value: object, values: list[str]) -> int:
    """The same, for ``value`` as a tool_use input in a Messages body (the JSON path)."""
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "t", "input": value}]},
        ],
    }
    out = mask_request(json.dumps(body).encode(), masker)[0].decode()
    return sum(v in out for v in values)


@functools.cache
def scanner(mode: str) -> Scanner:
    """A scanner of ``mode`` (made once per test process: compiling the catalogue takes a while)."""
    return Scanner(mode=mode)


def rule_finds_its_samples_in_every_mode(name: str) -> None:
    """Every sample of the catalogue rule ``name`` is found alike by the default scanner, the plain
    regex scan and the fallback (``words``) scanner, and its value is among the finds."""
    from aws_masker.config import MaskerConfig
    from aws_masker.patterns import RULES

    (rule,) = [r for r in RULES if r.name == name]
    enabled = MaskerConfig().enabled_categories
    for sample, value in rule.must_match:
        found = {
            mode: scanner(mode).scan(sample, enabled, frozenset()) for mode in ("plain", "anchors", "words")
        }
        assert found["anchors"] == found["plain"] == found["words"]
        assert value in [f.value for f in found["plain"]]
