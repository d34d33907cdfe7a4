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
    assert (jsontext._parse_checked(text) is not None) is accepted(text)  # the walk parse falls back on


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
    assert (jsontext._parse_checked(mutated) is not None) is accepted(mutated)


def _shape(doc: jsontext.Document | None) -> object:
    if doc is None:
        return None
    containers = [(c.is_object, c.parent, c.key, c.position, c.strings) for c in doc.containers]
    return doc.literals, containers


# Strings right at the length where the walk leaves them to the json module's scanner, escapes just
# before, at and after it, keys and values of every kind, duplicated keys, NaN and -Infinity.
_EDGE = [
    '"' + "a" * n + esc + "b" * m + '"'
    for n in (0, 1, jsontext._PLAIN_MAX - 1, jsontext._PLAIN_MAX, jsontext._PLAIN_MAX + 1)
    for esc in ("", "\\n", "\\u00e9", '\\"', "\\\\")
    for m in (0, 1, jsontext._PLAIN_MAX)
]


@pytest.mark.parametrize("string", _EDGE)
def test_fast_walk_matches_checked_walk_at_string_thresholds(string: str) -> None:
    text = (
        f'{{{string}: {string}, "k": {string}, {string}: 1, "n": NaN, {string}: [{string}, -Infinity, '
        f'{{{string}: {{}}}}, 2.5e3, {string}], "k": "dup", "t": true, "x": {string}}}'
    )
    assert _shape(jsontext.parse(text)) == _shape(jsontext._parse_checked(text))


_long_text = st.text(st.sampled_from('ab"\\\n\u00e9'), min_size=250, max_size=262)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.recursive(
        st.one_of(_scalars, _long_text),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.one_of(st.text(max_size=4), _long_text), inner, max_size=4)
        ),
        max_leaves=20,
    ),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_fast_walk_matches_checked_walk(doc: object, indent: int | None, ascii_only: bool) -> None:
    """What the json module reads is walked without checking the grammar again: the same literals
    and containers as the walk that checks every step."""
    text = json.dumps({"d": doc, "a": [doc, 1]}, indent=indent, ensure_ascii=ascii_only)
    assert _shape(jsontext.parse(text)) == _shape(jsontext._parse_checked(text))


def test_falls_back_past_the_json_modules_limits() -> None:
    """Deeper than the json module's recursion, or an integer past its digit limit: still parsed."""
    deep = '{"a": ' + "[" * 5000 + '"x"' + "]" * 5000 + ', "b": "y"}'
    doc = jsontext.parse(deep)
    assert doc is not None and [lit.value for lit in doc.literals] == ["a", "x", "b", "y"]
    big = '{"n": ' + "7" * 5000 + "}"
    doc = jsontext.parse(big)
    assert doc is not None and doc.literals[1].value == "7" * 5000
    assert jsontext.parse('{"a": 1} x') is None
    assert jsontext.parse("\ufeff" + '{"a": 1}', 1) is not None


@pytest.mark.parametrize("text", ['{"a": [1}', '{"a": "unterminated}', '[{"a": 1]', '{"a": 1', "[[]"])
def test_fast_walk_fails_closed(text: str) -> None:
    """The fast walk trusts the json module's reading; should it ever not end where the document
    does, it gives up (and parse asks the checking walk) instead of returning part of a document."""
    assert jsontext._walk(text, 0) is None
    assert jsontext.parse(text) is None
