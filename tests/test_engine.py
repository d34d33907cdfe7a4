"""Tokens, configuration fields, collisions and the per-request token map."""

from __future__ import annotations

import logging

import pytest

from aws_masker import tokens as tokens_mod
from aws_masker.config import CATEGORY_TOGGLES, MaskerConfig
from aws_masker.engine import Masker
from aws_masker.restore import restore_text
from aws_masker.tokens import TOKEN_RE, TokenIssuer, token_for

# One sample per category toggle: (field, text, identifier that the field controls)
TOGGLE_SAMPLES = {
    "mask_ec2_instances": ("EC2 i-0a1b2c3d4e5f67890 is down", "i-0a1b2c3d4e5f67890"),
    "mask_s3_buckets": ("copy to s3://acme-prod-data/x", "acme-prod-data"),
    "mask_rds_instances": ('"DBInstanceIdentifier": "orders-db"', "orders-db"),
    "mask_private_ips": ("IP 10.0.1.100 timed out", "10.0.1.100"),
    "mask_public_ips": ("EIP 54.239.28.85 attached", "54.239.28.85"),
    "mask_ipv6": ("VPC block 2600:1f18:24e6:a200::/56", "2600:1f18:24e6:a200::/56"),
    "mask_arns": ("assume arn:aws:iam::123456789012:role/Admin now", "arn:aws:iam::123456789012:role/Admin"),
    "mask_account_ids": ("in account 123456789012 today", "123456789012"),
    "mask_credentials": ("key AKIA2OGYBAH6XQ7TV4MZ leaked", "AKIA2OGYBAH6XQ7TV4MZ"),
    "mask_hostnames": ("GET d111111abcdef8.cloudfront.net", "d111111abcdef8.cloudfront.net"),
}


def test_every_toggle_has_a_sample() -> None:
    assert set(TOGGLE_SAMPLES) == set(CATEGORY_TOGGLES)


@pytest.mark.parametrize("field", sorted(CATEGORY_TOGGLES))
def test_toggle_switches_its_category(field: str) -> None:
    text, value = TOGGLE_SAMPLES[field]
    on = Masker(MaskerConfig(token_secret="s"))
    off = Masker(MaskerConfig(token_secret="s", **{field: False}))
    assert value not in on.mask_text(text)[0]
    masked_off, result = off.mask_text(text)
    assert value in masked_off
    assert CATEGORY_TOGGLES[field] not in result.counts


def test_disabled_category_is_not_carved_up_by_other_rules() -> None:
    """With ARNs off, the account ID inside an ARN is not masked on its own: the ARN stays whole."""
    m = Masker(MaskerConfig(token_secret="s", mask_arns=False))
    text = "role arn:aws:iam::123456789012:role/Admin"
    assert m.mask_text(text)[0] == text


def test_allow_list_keeps_exact_values() -> None:
    m = Masker(MaskerConfig(token_secret="s", allow_list=("10.0.0.2",)))
    masked, _ = m.mask_text("10.0.0.1 and 10.0.0.2")
    assert "10.0.0.1" not in masked
    assert masked.endswith("and 10.0.0.2")


def test_config_from_mapping_ignores_kong_keys_and_empty_secret() -> None:
    conf = MaskerConfig.from_mapping(
        {"__seq__": 3, "route_id": "x", "mask_ipv6": False, "allow_list": ["a"], "token_secret": ""}
    )
    assert conf.mask_ipv6 is False
    assert conf.allow_list == ("a",)
    assert conf.token_secret is None


def test_tokens_are_deterministic_typed_and_keyed() -> None:
    a = Masker(MaskerConfig(token_secret="one"))
    b = Masker(MaskerConfig(token_secret="one"))
    c = Masker(MaskerConfig(token_secret="two"))
    text = "i-0a1b2c3d4e5f67890 and ami-0a1b2c3d4e5f67890"
    ta, tb, tc = (m.mask_text(text)[0] for m in (a, b, c))
    assert ta == tb != tc
    kinds = [t.split("_")[1] for t in TOKEN_RE.findall(ta)]
    assert kinds == ["EC2", "AMI"]
    assert token_for(b"one", "EC2", "i-0a1b2c3d4e5f67890") in ta


def test_same_value_same_token_within_a_request(masker: Masker) -> None:
    masked, result = masker.mask_text("10.0.0.1 10.0.0.1 10.0.0.1")
    assert len(result.tokens) == 1
    assert result.counts["private_ip"] == 3
    assert len(set(masked.split())) == 1


def test_random_secret_warns_once(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_mod, "_process_secret", None)
    with caplog.at_level(logging.WARNING, logger="aws_masker.tokens"):
        a = Masker(MaskerConfig())
        b = Masker(MaskerConfig())
    warnings = [r for r in caplog.records if "random per-process secret" in r.getMessage()]
    assert len(warnings) == 1
    assert a.mask_text("10.0.0.1")[0] == b.mask_text("10.0.0.1")[0]  # same process, same secret


def test_collisions_inside_a_request_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tokens_mod.token_for

    def colliding(secret: bytes, kind: str, value: str, attempt: int = 0) -> str:
        # every first attempt collides; later attempts are the real ones
        return f"AWS_{kind}_000000000000" if attempt == 0 else real(secret, kind, value, attempt)

    monkeypatch.setattr(tokens_mod, "token_for", colliding)
    issuer = TokenIssuer(b"s")
    t1, t2, t3 = issuer.issue("EC2", "i-1"), issuer.issue("EC2", "i-2"), issuer.issue("EC2", "i-1")
    assert t1 == "AWS_EC2_000000000000"
    assert t2 != t1 and t3 == t1
    assert issuer.collisions == 1
    assert issuer.by_token == {t1: "i-1", t2: "i-2"}


def test_token_shaped_input_is_never_confused_with_a_real_token(masker: Masker) -> None:
    """A client that sends the very token an identifier would get does not get the identifier back
    in its place: the identifier is issued a different token."""
    real_token = masker.mask_text("10.0.0.1")[0]
    text = f"{real_token} is not 10.0.0.1"
    masked, result = masker.mask_text(text)
    assert masked.startswith(real_token + " is not ")
    issued = masked.rsplit(" ", 1)[1]
    assert issued != real_token and TOKEN_RE.fullmatch(issued)
    assert restore_text(masked, result.tokens)[0] == text


def test_a_value_whose_token_is_taken_gets_one_other_token_throughout(masker: Masker) -> None:
    real_token = masker.mask_text("10.0.0.1")[0]
    masked, result = masker.mask_text(f"{real_token} 10.0.0.1 and again 10.0.0.1")
    first, second = masked.split(" ")[1], masked.split(" ")[-1]
    assert first == second != real_token
    assert result.collisions == 1
    assert result.tokens == {first: "10.0.0.1"}


def test_restore_uses_only_this_requests_tokens(masker: Masker) -> None:
    other_masked, _other = masker.mask_text("secret host 10.9.9.9")
    other_token = TOKEN_RE.search(other_masked).group()
    masked, result = masker.mask_text(f"my IP 10.0.0.1, and {other_token}")
    assert other_token in masked  # passes through untouched
    restored, n = restore_text(masked, result.tokens)
    assert "10.9.9.9" not in restored and other_token in restored
    assert n == 1


def test_restore_of_originals_with_special_characters_is_literal(masker: Masker) -> None:
    text = "arn:aws:s3:::acme-data/reports/%Y$1\\x"
    masked, result = masker.mask_text(text)
    assert "acme-data" not in masked
    assert restore_text(masked, result.tokens)[0] == text


def test_masking_is_idempotent(masker: Masker) -> None:
    text = (
        'EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, "OwnerId": "123456789012", AKIA2OGYBAH6XQ7TV4MZ'
    )
    once = masker.mask_text(text)[0]
    twice, result = masker.mask_text(once)
    assert twice == once
    assert result.total == 0


def test_cached_minter_agrees_with_token_for() -> None:
    mint = tokens_mod.cached_minter(b"k3y")
    for kind, value in [("EC2", "i-1"), ("S3_BUCKET", "résumé-bucket"), ("ARN", "arn:aws:s3:::x")]:
        assert mint(kind, value) == token_for(b"k3y", kind, value)


def test_cached_minter_stays_within_its_size_and_agrees_after_emptying() -> None:
    mint = tokens_mod.cached_minter(b"k3y", maxsize=3)
    values = [("EC2", f"i-{n}") for n in range(8)] + [("ACCOUNT", "123456789012"), ("EC2", "i-0")]
    for _ in range(2):
        assert [mint(kind, value) for kind, value in values] == [token_for(b"k3y", k, v) for k, v in values]
    (cache,) = [cell.cell_contents for cell in mint.__closure__ or () if isinstance(cell.cell_contents, dict)]
    assert 0 < sum(map(len, cache.values())) <= 3


def test_cached_minter_agrees_with_token_for_on_long_secrets() -> None:
    secret = b"x" * 100  # longer than a BLAKE2s key: the key is the secret's hash
    assert tokens_mod.cached_minter(secret)("EC2", "i-1") == token_for(secret, "EC2", "i-1")
    # ...and a different secret sharing its first 32 bytes gives other tokens
    assert token_for(b"x" * 99, "EC2", "i-1") != token_for(secret, "EC2", "i-1")


def test_tokens_are_keyed_blake2s_of_kind_and_value() -> None:
    """The documented construction (README, "Tokens"), so another implementation can check one."""
    import hashlib

    mac = hashlib.blake2s(b"EC2\x00i-1", key=b"k3y", digest_size=6).hexdigest()
    assert token_for(b"k3y", "EC2", "i-1") == f"AWS_EC2_{mac}"
    assert token_for(b"k3y", "EC2", "i-1") != token_for(b"k3z", "EC2", "i-1")
    assert token_for(b"k3y", "EC2", "i-1") != token_for(b"k3y", "EC2", "i-2")


def test_short_strings_masked_from_the_cache_as_from_a_fresh_scan() -> None:
    """What a scan found in a short string is cached per Masker; everything per request (tokens,
    the echo of names across strings, reservations, counts) is still worked out per request."""
    from aws_masker import engine

    texts = [
        '"DBInstanceIdentifier": "orders-db"',  # a name found by its key, echoed below
        "orders-db is slow",
        "EC2 i-0a1b2c3d4e5f67890 is down",
        "AWS_EC2_0123456789ab is a token-shaped string: reserved",
        "application/json",
        "in account 123456789012 today",
    ]
    fresh = Masker(MaskerConfig(token_secret="s"))
    cached = Masker(MaskerConfig(token_secret="s"))
    for _ in range(3):  # the first round fills the cache, the others are served from it
        for order in (texts, texts[::-1], texts[1:]):
            got, got_result = cached.mask_texts(list(order))
            want, want_result = Masker(MaskerConfig(token_secret="s")).mask_texts(list(order))
            assert got == want
            assert got_result.tokens == want_result.tokens
            assert got_result.counts == want_result.counts
    assert cached._short_finds.cache_info().hits > 0
    assert fresh._short_finds is None  # (made on a Masker's first short string)
    # a string over the limit is scanned every time (nothing of it is cached)
    long_text = "EC2 i-0a1b2c3d4e5f67890 is down " * (engine.SHORT_SOURCE // 16)
    before = cached._short_finds.cache_info().currsize
    assert "i-0a1b2c3d4e5f67890" not in cached.mask_text(long_text)[0]
    assert cached._short_finds.cache_info().currsize == before


def test_the_short_strings_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_masker import engine

    monkeypatch.setattr(engine, "SHORT_SOURCES_CACHED", 8)
    masker = Masker(MaskerConfig(token_secret="s"))
    for i in range(50):
        masker.mask_text(f"EC2 i-0a1b2c3d4e5f6{i:04d} is down")
    assert masker._short_finds.cache_info().currsize == 8
