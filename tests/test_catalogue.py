"""Every rule's own samples, checked the way gitleaks checks its rules: a rule that misses one of its
true positives or hits one of its false positives fails here."""

from __future__ import annotations

import re

import pytest

from aws_masker.config import CATEGORY_TOGGLES
from aws_masker.engine import Masker
from aws_masker.patterns import (
    _ACCOUNT_CONTEXT_FIRST,
    _ACCOUNT_CONTEXT_TEXT,
    _HOST_KINDS,
    HOST_ANCHORS,
    RULES,
    Rule,
)
from aws_masker.prefilter import first_chars
from aws_masker.tokens import KINDS, TOKEN_RE


def _ids(rule: Rule) -> str:
    return rule.name


@pytest.mark.parametrize("rule", RULES, ids=_ids)
def test_rule_has_samples_both_ways(rule: Rule) -> None:
    assert rule.must_match, f"{rule.name} has no true-positive sample"
    assert rule.must_not_match, f"{rule.name} has no false-positive sample"
    assert rule.description


@pytest.mark.parametrize("rule", RULES, ids=_ids)
def test_rule_masks_its_true_positives(rule: Rule, masker: Masker) -> None:
    for text, value in rule.must_match:
        assert value in text, "sample value must occur in its text"
        hits = [(f.rule.name, f.value, f.mask) for f in masker.find(text)]
        assert (rule.name, value, True) in hits, f"{rule.name} missed {text!r}: {hits}"
        masked, result = masker.mask_text(text)
        assert value not in masked
        assert result.tokens, "a masked sample must issue a token"


@pytest.mark.parametrize("rule", RULES, ids=_ids)
def test_rule_ignores_its_false_positives(rule: Rule, masker: Masker) -> None:
    for text in rule.must_not_match:
        hits = [f for f in masker.find(text) if f.rule is rule and f.mask]
        assert not hits, f"{rule.name} masked {[h.value for h in hits]} in {text!r}"


def test_every_category_has_a_toggle_and_every_toggle_a_rule() -> None:
    categories = {r.category for r in RULES}
    for rule in RULES:
        categories |= {rule.classify(v)[0] for _t, v in rule.must_match}
    assert categories == set(CATEGORY_TOGGLES.values())


def test_every_host_suffix_holds_a_host_anchor() -> None:
    """The hostname rule's prefilter anchors (patterns.HOST_ANCHORS) must cover every suffix it knows."""
    for suffix, kind, _category in _HOST_KINDS:
        assert any(re.escape(anchor) in suffix for anchor in HOST_ANCHORS), kind


def test_account_context_is_searched_behind_all_its_first_letters() -> None:
    """patterns._ACCOUNT_CONTEXT finds its context only where one of these letters stands."""
    firsts = first_chars(_ACCOUNT_CONTEXT_TEXT)
    assert firsts is not None and firsts <= set(_ACCOUNT_CONTEXT_FIRST[1:-1])


def test_token_grammar_is_closed_and_prefix_free() -> None:
    assert len(set(KINDS)) == len(KINDS)
    for kind in KINDS:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*[A-Z0-9]", kind), kind
        assert "AWS" not in kind
    tokens = [f"AWS_{k}_0123456789ab" for k in KINDS]
    for a in tokens:
        assert TOKEN_RE.fullmatch(a)
        for b in tokens:
            assert a == b or not b.startswith(a)


def test_tokens_match_no_rule(masker: Masker) -> None:
    text = " ".join(f"AWS_{k}_0123456789ab" for k in KINDS)
    assert [f for f in masker.find(text) if f.mask] == []
