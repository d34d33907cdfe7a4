"""The lenient JSON tokenizer accepts exactly what Python's ``json`` accepts (strict=False), at any
depth, and reports every literal's raw span and decoded value."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_masker import jsontext

CASES = [
    "{}", "[]", "[1,]", '{"a":1,}', '{"a" 1}', '{"a":1 "b":2}', "[1 2]", '{,"a":1}', "[,1]", '{"a":}',
    '{"a"}', '[{"a":[1,{"b":"\\u0041"}]}, "x", NaN, -Infinity, 1e400]', '{"a":"\\x"}', '{"a":"\\u12"}',
    '"x"', "1", "[1] x", "[1]  \n", '{"a":{"b":[]},"c":"d"}', "[[],[[]],{}]", '{"a":1}{"b":2}', "[-]",
    "[01]", "[1.]", "[.5]", '{"a":"\x01"}', "[true,false,null]", "[tru]", '{"a":1:2}', '["a":1]',
    '{"a":"b","a":"c"}', '{"a" : 1 , "b" : [ 1 , 2 ] }', "[1,,2]", '{"a":1,,"b":2}', "[}", "{]",
    '{"a":[}', '["\\ud800"]', '["unterminated]', '{"k":"v" , }',
]  # fmt: skip


def accepted(text: str) -> bool:
    try:
        return isinstance(json.loads(text, strict=False), (dict, list))
    except (ValueError, RecursionError):
        return False


@pytest.mark.parametrize("text", CASES)
def test_accepts_what_json_accepts(text: str) -> None:
    assert (jsontext.parse(text) is not None) is accepted(text)


def test_no_depth_limit() -> None:
    doc = jsontext.parse("[" * 100_000 + '"x"' + "]" * 100_000)
    assert doc is not None and doc.literals[0].value == "x"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
_docs = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(doc=_docs, indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans(), cut=st.integers(0, 400))
def test_matches_json_on_generated_documents(
    doc: object, indent: int | None, ascii_only: bool, cut: int
) -> None:
    text = json.dumps([doc], indent=indent, ensure_ascii=ascii_only)
    parsed = jsontext.parse(text)
    assert parsed is not None
    for literal in parsed.literals:  # each literal's span decodes to its value
        raw = text[literal.start : literal.end]
        if literal.kind == jsontext.NUMBER:
            assert raw == literal.value
        else:
            assert json.loads(raw) == literal.value
    mutated = text[:cut] + text[cut + 1 :]  # one character dropped: valid or not, both agree
    assert (jsontext.parse(mutated) is not None) is accepted(mutated)
