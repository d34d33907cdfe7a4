"""Fuzz: the catalogue's samples in Messages requests, wrapped in the encodings of issue #10 (JSON
escaped one to three levels, ``\\u``-escaped characters, split across adjacent text blocks, duplicate
keys, numbers Python's json writes but strict parsers refuse). No sample's identifier may survive in
the body, in any decoded form."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.patterns import RULES

MASKER = Masker(MaskerConfig(token_secret="fuzz-secret-0123456789"))


def _masked_plainly(text: str, value: str) -> bool:
    """The baseline: is ``value`` masked when ``text`` is sent as a plain text block?"""
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}
    )
    out = json.loads(mask_request(body.encode(), MASKER)[0])
    return value not in out["messages"][0]["content"][0]["text"]


# (a rule anchored at a line start, such as RESERVATIONS in text output, misses the first line of a
# JSON string today: that is the catalogue's to fix, not an encoding's)
SAMPLES = [(text, value) for rule in RULES for text, value in rule.must_match if _masked_plainly(text, value)]
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def unescape(text: str) -> str:
    return _ESCAPE.sub(
        lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" and len(m[1]) == 5 else _SIMPLE.get(m[1], m[1]),
        text,
    )


def forms(out: bytes) -> list[str]:
    text = out.decode("utf-8", "surrogatepass")
    found = [text]
    for _ in range(4):
        found.append(unescape(found[-1]))
    return found


def u_escaped(text: str, every: int) -> str:
    """``text`` as a JSON string's content with every ``every``-th character written as ``\\uXXXX``."""
    out = []
    for i, ch in enumerate(text):
        if i % every == 0 and ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(json.dumps(ch, ensure_ascii=False)[1:-1])
    return "".join(out)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str]:
    text, value = draw(st.sampled_from(SAMPLES))
    levels = draw(st.integers(0, 3))
    for _ in range(levels):
        text = json.dumps({"message": text})
    cut = draw(st.integers(0, len(text)))
    split = draw(st.booleans()) and 0 < cut < len(text)
    parts = [text[:cut], text[cut:]] if split else [text]
    blocks = ", ".join(
        '{"type": "text", "text": "' + u_escaped(p, draw(st.integers(1, 7))) + '"}'
        if draw(st.booleans())
        else json.dumps({"type": "text", "text": p})
        for p in parts
    )
    messages = '[{"role": "user", "content": [' + blocks + "]}]"
    odd = draw(st.sampled_from(["", ', "n": 1e400', ', "n": NaN', ', "n": ' + "9" * 400, ', "n": -Infinity']))
    if draw(st.booleans()):  # the identifiers in the first copy, a harmless second copy
        body = (
            '{"model": "m", "messages": '
            + messages
            + odd
            + ', "messages": [{"role": "user", "content": "hi"}]}'
        )
    else:
        body = '{"model": "m"' + odd + ', "messages": ' + messages + "}"
    if draw(st.booleans()):
        body = "\ufeff" + body
    return body.encode("utf-8"), value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=requests())
def test_no_sample_identifier_survives_any_encoding(case: tuple[bytes, str]) -> None:
    body, value = case
    out, _ = mask_request(body, MASKER)
    assert not [form for form in forms(out) if value in form], "an identifier survived"
