"""Helpers of the detection-gap tests: how many given originals pass unmasked, in pasted text and on
the JSON path (a tool_use input in a Messages body). Failures report counts, never values."""

from __future__ import annotations

import json

from aws_masker.body import mask_request
from aws_masker.engine import Masker
from aws_masker.restore import restore_text


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
