"""Echoes (plugin/aws_masker/echo.py): a name found by its context is masked wherever else it stands in
the request, as a whole word, with the same token; and restored exactly."""

from __future__ import annotations

import json

import pytest

from aws_masker import echo
from aws_masker.body import mask_request, restore_response
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.restore import restore_text

CANONICAL = "5c7e9a1b" * 8
SECRET = "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"


def test_a_bare_repeat_gets_the_same_token(masker: Masker) -> None:
    text = "S3 bucket acme-prod-data returns 403. Why can't acme-prod-data be read?"
    masked, result = masker.mask_text(text)
    assert "acme-prod-data" not in masked
    (token,) = result.tokens
    assert masked.count(token) == 2
    assert result.counts["s3"] == 2
    assert restore_text(masked, result.tokens)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        "RDS orders-db-2 is slow; orders-db-2 was fine yesterday (orders-db-2).",
        "OWNER\tops\t" + CANONICAL + "\nthe owner is " + CANONICAL + ".",
        "aws_secret_access_key = " + SECRET + "\nI pasted " + SECRET + " by mistake",
        '$ aws s3 ls\n2023-01-15 10:30:45 acme-logs-7\n\nis "acme-logs-7" public? see /acme-logs-7/x',
    ],
)
def test_every_echoed_kind(text: str, masker: Masker) -> None:
    masked, result = masker.mask_text(text)
    (value,) = result.tokens.values()
    assert value not in masked
    assert restore_text(masked, result.tokens)[0] == text


def test_only_whole_names_are_echoed(masker: Masker) -> None:
    text = (
        "S3 bucket acme-data. Also: acme-data-eu, x.acme-data, acme-data_old, acme-data.example.com, "
        "acme-data.\n"
    )
    masked, result = masker.mask_text(text)
    (token,) = result.tokens
    others = "acme-data-eu, x.acme-data, acme-data_old, acme-data.example.com"
    assert masked == f"S3 bucket {token}. Also: {others}, {token}.\n"


def test_plain_words_are_not_echoed(masker: Masker) -> None:
    """A bucket named like a word is masked where the catalogue finds it, not in ordinary prose."""
    line = CANONICAL + " backups [06/Feb/2024:00:00:38 +0000] 10.0.0.1 - 3E57427F33A59F07 REST.GET.OBJECT"
    masked, _ = masker.mask_text(line + "\nwe keep backups for 30 days")
    assert " backups [" not in masked
    assert masked.endswith("we keep backups for 30 days")


def test_names_echo_across_the_strings_of_a_json_request(masker: Masker) -> None:
    req = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": '{"Buckets": [{"Name": "acme-prod-data", "CreationDate": "2024"}]}'},
            {"role": "assistant", "content": "Which one?"},
            {"role": "user", "content": "acme-prod-data: why is it slow?"},
        ],
    }
    body, result = mask_request(json.dumps(req).encode(), masker)
    assert b"acme-prod-data" not in body
    assert json.loads(restore_response(body, result.tokens, "application/json").body) == req
    again, _ = mask_request(body, masker)
    assert again == body


def test_echo_follows_the_category_switch_and_the_allow_list() -> None:
    text = "S3 bucket acme-prod-data; acme-prod-data again"
    off = Masker(MaskerConfig(token_secret="t", mask_s3_buckets=False))
    assert off.mask_text(text)[0] == text
    allowed = Masker(MaskerConfig(token_secret="t", allow_list=["acme-prod-data"]))
    assert allowed.mask_text(text)[0] == text


def test_many_names_are_looked_up_in_one_pass(masker: Masker) -> None:
    """A pasted listing of hundreds of buckets: past ``echo.SEARCHES`` names, one pass looks every
    word up instead of one search per name."""
    names = [f"acme-{i:03d}-data" for i in range(3 * echo.SEARCHES)]
    listing = "\n".join(f"2024-01-15 10:30:45 {n}" for n in names)
    question = "Which of " + ", ".join(reversed(names)) + " are public? Not acme-000-data-eu."
    masked, result = masker.mask_text(listing + "\n\n" + question)
    assert not any(n + " " in masked or n + "," in masked for n in names)
    assert masked.endswith("Not acme-000-data-eu.")
    assert result.counts["s3"] == 2 * len(names)


EDGES = (
    "S3 bucket acme-data and RDS orders-db-2; acme-data. acme-data... (acme-data) acme-data-eu "
    "x.acme-data acme-data_old acme-data.example.com orders-db-2.internal orders-db-2/x "
    "aws_secret_access_key = " + SECRET + " then " + SECRET + "== and /" + SECRET + "/ and " + SECRET
)


@pytest.mark.parametrize("searches", [0, 100])
def test_searching_and_looking_up_agree(searches: int, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Masker(MaskerConfig(token_secret="t")).mask_text(EDGES)
    monkeypatch.setattr(echo, "SEARCHES", searches)
    assert Masker(MaskerConfig(token_secret="t")).mask_text(EDGES) == expected
    masked, result = expected
    assert masked.count(next(t for t in result.tokens if "S3" in t)) == 4
    assert "acme-data-eu" in masked and "x.acme-data " in masked and SECRET + "==" in masked
