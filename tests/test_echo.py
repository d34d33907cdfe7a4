"""Echoes (plugin/aws_masker/echo.py): a name found by strong context is masked wherever else it stands
in the request, as a whole word, with the same token; and restored exactly."""

from __future__ import annotations

import json

import pytest

from aws_masker import echo
from aws_masker.body import mask_request, restore_body
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.patterns import RULES
from aws_masker.restore import restore_text

CANONICAL = "5c7e9a1b" * 8
SECRET = "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"


def test_a_bare_repeat_gets_the_same_token(masker: Masker) -> None:
    text = "aws s3 cp s3://acme-prod-data/x . fails with 403. Why can't acme-prod-data be read?"
    masked, result = masker.mask_text(text)
    assert "acme-prod-data" not in masked
    (token,) = result.tokens
    assert masked.count(token) == 2
    assert result.counts["s3"] == 2
    assert restore_text(masked, result.tokens)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        '"DBInstanceIdentifier": "orders-db-2"\norders-db-2 is slow; orders-db-2 was fine (orders-db-2).',
        "OWNER\tops\t" + CANONICAL + "\nthe owner is " + CANONICAL + ".",
        "aws_secret_access_key = " + SECRET + "\nI pasted " + SECRET + " by mistake",
        '{"Buckets": [{"Name": "acme-logs-7", "CreationDate": "x"}]}\nis "acme-logs-7" public?',
        '"Bucket": "2024-logs"\nthe 2024-logs bucket',  # digits first, but no version
    ],
)
def test_every_echoed_kind(text: str, masker: Masker) -> None:
    masked, result = masker.mask_text(text)
    (value,) = result.tokens.values()
    assert value not in masked
    assert restore_text(masked, result.tokens)[0] == text


def test_only_whole_names_are_echoed(masker: Masker) -> None:
    text = (
        "s3://acme-data/k. Also: acme-data-eu, x.acme-data, acme-data_old, acme-data.example.com, "
        "acme-data... and acme-data.\n"
    )
    masked, result = masker.mask_text(text)
    (token,) = result.tokens
    others = f"acme-data-eu, x.acme-data, {token}_old, acme-data.example.com"
    # (a bucket's name holds no underscore: one ends it, as in a file named after it)
    assert masked == f"s3://{token}/k. Also: {others}, {token}... and {token}.\n"


def test_a_json_escape_ends_a_word(masker: Masker) -> None:
    """Serialized tool output: "\\n" before and after the name does not make it part of a word."""
    text = 's3://acme-prod-data/k\n{"out": "list:\\nacme-prod-data\\n"}'
    assert "acme-prod-data" not in masker.mask_text(text)[0]


@pytest.mark.parametrize(
    "text",
    [
        "Why does S3 503 so often? nginx also logs 503.",  # prose: not evidence enough to echo
        "S3 us-east-1 is slow. aws ec2 describe-instances --region us-east-1",
        '{"identifier": "v2-api", "text": "use the v2-api"}',  # a generic key
        "2023-01-15 10:30:45 web-01\nssh web-01",  # a lone `aws s3 ls`-shaped line
        '"Bucket": "us-east-1"\n--region us-east-1',  # the shape of a region
        '"Bucket": "v2.1"\nrelease v2.1',  # of a version
    ],
)
def test_weak_evidence_and_word_shapes_are_not_echoed(text: str, masker: Masker) -> None:
    masked, _ = masker.mask_text(text)
    assert masked.endswith(text.rsplit(" ", 1)[1])


def test_plain_words_are_not_echoed(masker: Masker) -> None:
    """A bucket named like a word is masked where the catalogue finds it, not in ordinary prose."""
    line = CANONICAL + " backups [06/Feb/2024:00:00:38 +0000] 10.0.0.1 - 3E57427F33A59F07 REST.GET.OBJECT"
    masked, _ = masker.mask_text(line + "\nwe keep backups for 30 days")
    assert " backups [" not in masked
    assert masked.endswith("we keep backups for 30 days")


def test_kept_identifiers_are_not_cut_into() -> None:
    """An allow-listed ARN, or one whose category is off, stays whole although it holds a name."""
    text = "s3://acme-data-1/x and arn:aws:s3:::acme-data-1/public/*"
    for config in (
        MaskerConfig(token_secret="t", allow_list=["arn:aws:s3:::acme-data-1/public/*"]),
        MaskerConfig(token_secret="t", mask_arns=False),
    ):
        masker = Masker(config)
        masked, _ = masker.mask_text(text)
        assert masked.endswith(" and arn:aws:s3:::acme-data-1/public/*")
        assert masker.mask_text(masked)[0] == masked


def test_a_secret_is_echoed_before_a_name_inside_it(masker: Masker) -> None:
    secret = "Xk3pL9vQ2mR8sT1u/logs2024/yZ6aB0cD5eF7gH"
    text = f"s3://logs2024/k\naws_secret_access_key = {secret}\npasted {secret}"
    masked, _ = masker.mask_text(text)
    assert "Xk3pL9vQ2mR8" not in masked and "yZ6aB0cD5eF7" not in masked


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
    assert json.loads(restore_body(body, result.tokens, "application/json")) == req
    again, _ = mask_request(body, masker)
    assert again == body


def test_echo_follows_the_category_switch_and_the_allow_list() -> None:
    text = "s3://acme-prod-data/k; acme-prod-data again"
    off = Masker(MaskerConfig(token_secret="t", mask_s3_buckets=False))
    assert off.mask_text(text)[0] == text
    allowed = Masker(MaskerConfig(token_secret="t", allow_list=["acme-prod-data"]))
    assert allowed.mask_text(text)[0] == text


def test_many_names_are_looked_up_in_one_pass(masker: Masker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pasted listing of hundreds of buckets: past ``echo.SEARCHES`` names, one pass looks every word
    up; no search per name (that made 5,000 names in 630 KB take 0.9 s)."""

    def no_search(*args: object) -> None:
        raise AssertionError("searched name by name")

    monkeypatch.setattr(echo, "_recurring", no_search)
    monkeypatch.setattr(echo, "_by_search", no_search)
    names = [f"acme-{i:03d}-data" for i in range(3 * echo.SEARCHES)]
    listing = "\n".join(f"BUCKETS\t2024-01-15T10:30:45+00:00\t{n}" for n in names)
    question = "Which of " + ", ".join(reversed(names)) + " are public? Not acme-000-data-eu."
    masked, result = masker.mask_text(listing + "\n\n" + question)
    assert not any(n + " " in masked or n + "," in masked for n in names)
    assert masked.endswith("Not acme-000-data-eu.")
    assert result.counts["s3"] == 2 * len(names)


EDGES = (
    's3://acme-data/k "DBInstanceIdentifier": "orders-db-2"; acme-data. acme-data... (acme-data) '
    "acme-data-eu x.acme-data acme-data_old acme-data.example.com orders-db-2.internal orders-db-2/x "
    '"out": "\\nacme-data\\n" aws_secret_access_key = ' + SECRET + " then " + SECRET + "== and "
    "/" + SECRET + "/ and " + SECRET
)


@pytest.mark.parametrize("searches", [0, 100])
def test_searching_and_looking_up_agree(searches: int, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = Masker(MaskerConfig(token_secret="t")).mask_text(EDGES)
    monkeypatch.setattr(echo, "SEARCHES", searches)
    assert Masker(MaskerConfig(token_secret="t")).mask_text(EDGES) == expected
    masked, result = expected
    assert masked.count(next(t for t in result.tokens if "S3" in t)) == 6  # (acme-data_old: its bucket too)
    assert "acme-data-eu" in masked and "x.acme-data " in masked and SECRET + "==" in masked


def test_which_rules_echo() -> None:
    """Keys, URIs, output formats and flags echo; prose and lone timestamped lines do not."""
    echoing = {rule.name for rule in RULES if rule.echo}
    strong = {"s3_uri", "s3_bucket_key", "s3_cli_flag", "rds_identifier_key", "canonical_user_id_key"}
    assert strong <= echoing
    assert not {"s3_prose", "rds_prose", "rds_name_key", "s3_ls_bucket"} & echoing
    assert all(rule.kind in echo.KINDS or rule.pair_kind in echo.KINDS for rule in RULES if rule.echo)


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        # organizations list-accounts: the member account's Id, and the ARN that names it
        (
            {
                "Accounts": [
                    {
                        "Id": "483920175526",
                        "Arn": "arn:aws:organizations::111122223333:account/o-abc123defg/483920175526",
                        "Name": "prod",
                    }
                ]
            },
            "Id",
        ),
        # describe-images: the owner's account before the AMI's name
        (
            {"Images": [{"ImageLocation": "483920175526/golden-ami", "OwnerId": "483920175526"}]},
            "ImageLocation",
        ),
        # an account in a role ARN, then in a bucket name and under a generic key
        ({"Role": "arn:aws:iam::483920175526:role/deploy", "Value": "logs-483920175526-eu"}, "Value"),
    ],
)
def test_an_account_found_with_evidence_is_masked_where_it_stands_without(
    doc: dict[str, object], where: str, masker: Masker
) -> None:
    for text in (json.dumps(doc, indent=2), json.dumps(doc)):
        masked, result = masker.mask_text(text)
        assert "483920175526" not in masked, where
        assert restore_text(masked, result.tokens)[0] == text
    message = {"role": "user", "content": json.dumps(doc)}
    body = json.dumps({"model": "m", "max_tokens": 1, "messages": [message]})
    assert b"483920175526" not in mask_request(body.encode(), masker)[0]


def test_an_account_is_not_echoed_inside_a_longer_number_or_word(masker: Masker) -> None:
    text = '"OwnerId": "483920175526"\nsize 1483920175526, id x483920175526, order 4839201755260'
    masked, result = masker.mask_text(text)
    assert masked.endswith("size 1483920175526, id x483920175526, order 4839201755260")
    assert result.counts["account"] == 1


def test_an_arn_account_that_recurs_nowhere_gets_no_token(masker: Masker) -> None:
    _, result = masker.mask_text("arn:aws:iam::483920175526:role/deploy and arn:aws:s3:::bucket-x")
    assert len(result.tokens) == 2  # the two ARNs; no token for the account alone


def test_many_accounts_are_looked_up_as_whole_digit_runs(masker: Masker) -> None:
    accounts = [str(483920175526 + 7919 * i) for i in range(echo.SEARCHES + 12)]
    listing = "\n".join(f'"OwnerId": "{a}"' for a in accounts)
    repeats = " ".join(f"{a}/ami x{a} {a}0" for a in accounts)
    masked, result = masker.mask_text(listing + "\n" + repeats)
    tail = masked.rsplit("\n", 1)[1].split(" ")
    # the bare repeat is masked; inside a longer word or number it is not
    assert sum(part.startswith("AWS_ACCOUNT_") for part in tail[0::3]) == len(accounts)
    kept = sum(
        x == f"x{a}" and y == f"{a}0" for a, x, y in zip(accounts, tail[1::3], tail[2::3], strict=True)
    )
    assert kept == len(accounts)
    assert result.counts["account"] == 2 * len(accounts)
