"""load/payloads.py: the load test's request bodies are deterministic, of the size asked for, and come
with exactly the identifiers the gateway masks in them (checked here against the engine's own
masking and restore, not against the generator's intentions)."""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))

import payloads
from payloads import COMPLEX_TEXT, SIZE_SLACK, identifiers_of, payload, sizes, user_body

from aws_masker.body import mask_request, restore_body
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.tokens import TOKEN_RE

SIZES = (1024, 1500, 2048, 4096, 10_000, 33_000, 102_400)


def test_the_same_seed_and_size_give_the_same_body() -> None:
    first = payload(5, 6000)
    payload.cache_clear()
    identifiers_of.cache_clear()
    again = payload(5, 6000)
    assert first is not again and first.data == again.data and first.identifiers == again.identifiers
    assert payload(6, 6000).data != first.data and payload(5, 6001).data != first.data


@pytest.mark.parametrize("size", SIZES)
def test_a_body_is_of_the_size_asked_for(size: int) -> None:
    for seed in range(3):
        p = payload(seed, size)
        assert size - SIZE_SLACK <= len(p.data) <= size
        doc = json.loads(p.data)
        assert doc["messages"] == [{"role": "user", "content": p.text}] and "stream" not in doc
        assert json.loads(p.stream_data) == {**doc, "stream": True}


def test_sizes_out_of_range_are_refused() -> None:
    for size in (1023, 100 * 1024 + 1):
        with pytest.raises(ValueError):
            payload(1, size)


@pytest.mark.parametrize("size", SIZES)
def test_the_identifiers_are_what_the_gateway_masks(size: int) -> None:
    """An independent masker (another secret): every listed original is masked (gone from the
    masked body), every token stands for a listed original, and restoring gives the body back."""
    masker = Masker(MaskerConfig(token_secret="another-secret"))
    for seed in range(3):
        p = payload(seed, size)
        values = [i.value for i in p.identifiers]
        assert len(set(values)) == len(values) > 0
        assert sum(v not in p.text for v in values) == 0
        masked, result = mask_request(p.data, masker)
        # (compared as counts and booleans: a failure must not print the values)
        assert sorted(result.tokens.values()) == sorted(values), "listed and masked originals differ"
        assert set(TOKEN_RE.findall(masked.decode())) == set(result.tokens)
        # each is masked where it stands (some, like a bucket listed by `aws s3 ls` and named again
        # in a log line without context, are masked in one place only: the gateway does the same)
        text = masked.decode()
        assert sum(text.count(v) >= p.data.decode().count(v) for v in values) == 0
        assert restore_body(masked, result.tokens, "application/json") == p.data


def test_the_stub_would_count_no_leak_in_the_masked_bodies() -> None:
    """The stub's leak scan (every string, default config) finds nothing the list missed."""
    masker = Masker(MaskerConfig(token_secret="another-secret"))
    for seed in range(4):
        masked, _ = mask_request(payload(seed, 20_000).data, masker)
        text = json.loads(masked)["messages"][0]["content"]
        assert sum(f.mask for f in masker.find(text)) == 0


def test_the_complex_request() -> None:
    ids = identifiers_of(user_body(COMPLEX_TEXT))  # the test plan's own values, published
    assert [(i.category, i.value) for i in ids] == [
        ("ec2", "i-1234567890abcdef0"),
        ("s3", "my-bucket"),
        ("rds", "prod-db"),
        ("private_ip", "10.0.1.100"),
    ]


def test_bodies_mix_every_kind_of_identifier() -> None:
    seen: Counter[str] = Counter()
    for seed in range(6):
        seen.update(payload(seed, 30_000).categories())
    assert {"ec2", "s3", "rds", "private_ip", "public_ip", "arn", "account", "credentials"} <= set(seen)


def test_credentials_are_aws_documented_examples_only() -> None:
    for seed in range(6):
        p = payload(seed, 30_000)
        for key in re.findall(r"\bAKIA[A-Z0-9]{16}\b", p.text):
            assert key.endswith("EXAMPLE")
        secrets = re.findall(r"aws_secret_access_key = (\S+)", p.text)
        assert all(s.endswith("EXAMPLEKEY") for s in secrets)


def test_an_identifier_keeps_its_value_out_of_repr() -> None:
    p = payload(1, 4096)
    assert p.identifiers and all(i.value not in repr(i) for i in p.identifiers)
    assert p.text not in repr(p)


def test_sizes_are_in_range_and_mostly_small() -> None:
    drawn = sizes(random.Random(3), 2000, payloads.KB, 100 * payloads.KB)
    assert drawn == sizes(random.Random(3), 2000, payloads.KB, 100 * payloads.KB)
    assert min(drawn) >= payloads.KB and max(drawn) <= 100 * payloads.KB
    assert sum(s <= 4 * payloads.KB for s in drawn) > len(drawn) / 2
    assert sum(s > 32 * payloads.KB for s in drawn) > 0
    assert sizes(random.Random(1), 5, 2048, 2048) == [2048] * 5
