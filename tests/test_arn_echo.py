"""The names inside masked ARNs (plugin/aws_masker/arnnames.py) and the buckets of an ``aws s3 ls``
listing are echoed: masked wherever else they stand in the request, bare, and restored exactly; names
shaped like ordinary words are not."""

from __future__ import annotations

import json

import pytest

from aws_masker.arnnames import arn_name
from aws_masker.body import mask_request, restore_body
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.restore import restore_text

ACCOUNT = "483920175526"


@pytest.mark.parametrize(
    ("arn", "name", "kind"),
    [
        ("arn:aws:s3:::acme-prod-data", "acme-prod-data", "AWS_S3_BUCKET_"),
        ("arn:aws:s3:::acme-prod-data/logs/*", "acme-prod-data", "AWS_S3_BUCKET_"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod-db-1", "orders-prod-db-1", "AWS_RDS_"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:ledger-aurora-2", "ledger-aurora-2", "AWS_RDS_"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders-Prod", "Orders-Prod", "AWS_DYNAMODB_ARN_"),
        (
            f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders-Prod/stream/2024-01-15T10:30:45.123",
            "Orders-Prod",
            "AWS_DYNAMODB_ARN_",
        ),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:payments-prod-handler",
            "payments-prod-handler",
            "AWS_LAMBDA_ARN_",
        ),
        (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:payments-prod-handler:live",
            "payments-prod-handler",
            "AWS_LAMBDA_ARN_",
        ),
        (f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders-queue", "orders-queue", "AWS_SQS_ARN_"),
        (f"arn:aws:sns:us-east-1:{ACCOUNT}:billing-alerts", "billing-alerts", "AWS_SNS_ARN_"),
        (f"arn:aws:iam::{ACCOUNT}:role/deploy-prod", "deploy-prod", "AWS_IAM_ROLE_ARN_"),
        (f"arn:aws:iam::{ACCOUNT}:role/ci/deploy-prod", "deploy-prod", "AWS_IAM_ROLE_ARN_"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy-prod/ci-run-7", "deploy-prod", "AWS_IAM_ROLE_ARN_"),
        (f"arn:aws:iam::{ACCOUNT}:user/svc-etl-2", "svc-etl-2", "AWS_IAM_USER_ARN_"),
        # paths (names with slashes): an SSM parameter, a log group, a secret (without AWS's suffix)
        (
            f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/orders/prod/db_password",
            "/orders/prod/db_password",
            "AWS_SSM_ARN_",
        ),
        (f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/orders_db_url", "orders_db_url", "AWS_SSM_ARN_"),
        (
            f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/orders-api-prod:*",
            "/ecs/orders-api-prod",
            "AWS_LOG_GROUP_ARN_",
        ),
        (
            f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:orders-prod/db-credentials-AbC12f",
            "orders-prod/db-credentials",
            "AWS_SECRET_ARN_",
        ),
        # an EventBridge rule (on the default bus and on a custom one), a Redshift cluster, an
        # OpenSearch domain, an Athena workgroup, a CodeCommit repository, SageMaker resources
        (
            f"arn:aws:events:us-east-1:{ACCOUNT}:rule/orders-nightly-export",
            "orders-nightly-export",
            "AWS_EVENTS_ARN_",
        ),
        (
            f"arn:aws:events:us-east-1:{ACCOUNT}:rule/payments-bus/failed-to-slack",
            "failed-to-slack",
            "AWS_EVENTS_ARN_",
        ),
        (f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/payments-bus-2", "payments-bus-2", "AWS_EVENTS_ARN_"),
        (
            f"arn:aws:redshift:us-east-1:{ACCOUNT}:cluster:analytics-dw-prod",
            "analytics-dw-prod",
            "AWS_REDSHIFT_ARN_",
        ),
        (f"arn:aws:es:us-east-1:{ACCOUNT}:domain/search-logs-prod", "search-logs-prod", "AWS_ES_DOMAIN_ARN_"),
        (f"arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/finance-wg-1", "finance-wg-1", "AWS_ATHENA_ARN_"),
        (
            f"arn:aws:codecommit:us-east-1:{ACCOUNT}:orders-service-repo",
            "orders-service-repo",
            "AWS_CODECOMMIT_ARN_",
        ),
        (
            f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/churn-model-v3",
            "churn-model-v3",
            "AWS_SAGEMAKER_ARN_",
        ),
        (
            f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:notebook-instance/ds-team-nb-2",
            "ds-team-nb-2",
            "AWS_SAGEMAKER_ARN_",
        ),
    ],
)
def test_the_name_inside_a_masked_arn_is_echoed(arn: str, name: str, kind: str, masker: Masker) -> None:
    text = f"The policy grants {arn}.\nWhy is {name} slow? put object to {name} took 812 ms"
    masked, result = masker.mask_text(text)
    assert name not in masked
    (token,) = (t for t, v in result.tokens.items() if v == name)
    assert token.startswith(kind)
    assert masked.count(token) == 2
    assert restore_text(masked, result.tokens)[0] == text


def test_names_inside_arns_echo_across_a_json_request(masker: Masker) -> None:
    req = {
        "model": "m",
        "max_tokens": 1,
        "messages": [
            {"role": "user", "content": json.dumps({"Resource": "arn:aws:s3:::acme-prod-data/logs/*"})},
            {"role": "user", "content": "put object to acme-prod-data took 812 ms"},
        ],
    }
    body, result = mask_request(json.dumps(req).encode(), masker)
    assert b"acme-prod-data" not in body
    assert json.loads(restore_body(body, result.tokens, "application/json")) == req
    assert mask_request(body, masker)[0] == body


@pytest.mark.parametrize(
    ("arn", "word"),
    [
        (f"arn:aws:iam::{ACCOUNT}:role/admin", "admin"),
        (f"arn:aws:iam::{ACCOUNT}:role/Admin", "Admin"),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:handler", "handler"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/users", "users"),
        (f"arn:aws:sns:us-east-1:{ACCOUNT}:alerts", "alerts"),
        (f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders", "orders"),
        (f"arn:aws:rds:us-east-1:{ACCOUNT}:db:postgres", "postgres"),
        ("arn:aws:s3:::v2.1/x", "v2.1"),  # a version's shape
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:us-east-1", "us-east-1"),  # a region's
        (
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
            "AWSServiceRoleForECS",
        ),
    ],
)
def test_a_word_shaped_name_inside_an_arn_is_not_echoed(arn: str, word: str, masker: Masker) -> None:
    text = f"{arn} is attached. Ask the {word} about it"
    masked, _ = masker.mask_text(text)
    assert masked.endswith(f" is attached. Ask the {word} about it")


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/ap-prod-1",  # an access point, not a bucket
        "arn:aws:s3:::acme-*",  # a wildcard
        f"arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:snap-prod-1",  # an RDS type other than db/cluster
        f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",  # an ID
    ],
)
def test_arns_whose_resource_is_not_a_name_give_none(arn: str) -> None:
    assert arn_name(arn) is None


def test_an_arn_name_that_recurs_nowhere_gets_no_token(masker: Masker) -> None:
    _, result = masker.mask_text(f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod-db-1 is up")
    assert list(result.tokens.values()) == [f"arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod-db-1"]


def test_a_name_found_by_a_key_keeps_its_own_token(masker: Masker) -> None:
    """An ARN's name that a rule marked echo also finds gets one token, the same as that rule gives."""
    text = '"Resource": "arn:aws:s3:::acme-prod-data/x"\n"Bucket": "acme-prod-data"\nacme-prod-data'
    masked, result = masker.mask_text(text)
    assert "acme-prod-data" not in masked
    (token,) = (t for t, v in result.tokens.items() if v == "acme-prod-data")
    assert masked.count(token) == 2
    assert result.names["acme-prod-data"][0] == token


@pytest.mark.parametrize(
    "listing",
    [
        "2024-01-15 10:32:01 acme-prod-data\n2024-02-01 08:00:00 acme-logs-7\n",
        "$ aws s3 ls\n2024-01-15 10:32:01 acme-prod-data\n",
        '{"output": "2024-01-15 10:32:01 acme-prod-data\\n2024-02-01 08:00:00 acme-logs-7"}\n',
        '{"output": "x\\n2024-01-14 10:32:01 acme-logs-7\\n2024-01-15 10:32:01 acme-prod-data\\n"}\n',
        "  2024-01-14 10:32:01 acme-logs-7\r\n  2024-01-15 10:32:01 acme-prod-data\r\n",
    ],
)
def test_the_buckets_of_an_s3_ls_listing_are_echoed(listing: str, masker: Masker) -> None:
    text = listing + "Why is acme-prod-data slow?"
    masked, result = masker.mask_text(text)
    assert "acme-prod-data" not in masked
    assert restore_text(masked, result.tokens)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15 10:32:01 web-01\nssh web-01",  # a lone line: a log line may end in a host
        "2024-01-15 10:32:00 ready\n2024-01-15 10:32:01 web-01\nssh web-01",  # the other line is no listing
        "2024-01-15 10:32:00 INFO up\n2024-01-15 10:32:01 web-01\nssh web-01",
        "$ aws s3 ls\n2024-01-15 10:32:01 backups\nbackups",  # a plain word: masked there only
    ],
)
def test_lone_or_word_shaped_s3_ls_names_are_not_echoed(text: str, masker: Masker) -> None:
    masked, _ = masker.mask_text(text)
    assert masked.endswith("\n" + text.rsplit("\n", 1)[1])


def test_an_arn_name_follows_its_category_switch_and_the_allow_list() -> None:
    text = "arn:aws:s3:::acme-prod-data/x; acme-prod-data again"
    for config in (
        MaskerConfig(token_secret="t", mask_s3_buckets=False),
        MaskerConfig(token_secret="t", allow_list=["acme-prod-data"]),
    ):
        masked, _ = Masker(config).mask_text(text)
        assert masked.endswith("; acme-prod-data again")
        assert "arn:aws:s3" not in masked  # (the ARN itself is still masked)


def test_an_s3_ls_listing_echoes_across_a_json_request(masker: Masker) -> None:
    listing = "2024-01-15 10:32:01 acme-prod-data\n2024-02-01 08:00:00 acme-logs-7"
    req = {
        "model": "m",
        "max_tokens": 1,
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": listing}]},
            {"role": "user", "content": "Why is acme-prod-data slow?"},
        ],
    }
    body, result = mask_request(json.dumps(req).encode(), masker)
    assert b"acme-prod-data" not in body and b"acme-logs-7" not in body
    assert json.loads(restore_body(body, result.tokens, "application/json")) == req


@pytest.mark.parametrize(
    "config",
    [{"mask_account_ids": False}, {"allow_list": ["483920175526"]}],
    ids=["accounts off", "account allow-listed"],
)
def test_an_arns_account_is_not_echoed_where_accounts_are_off_or_allowed(config: dict[str, object]) -> None:
    masker = Masker(MaskerConfig(token_secret="arn-echo-secret-0123456789", **config))
    # no "account" word before the bare number: only the echo of the ARN's account could mask it
    masked, _ = masker.mask_text("arn:aws:iam::483920175526:role/x-1 and 483920175526")
    assert masked.endswith(" and 483920175526") and "arn:aws" not in masked


def test_an_arns_account_is_echoed_by_default(masker: Masker) -> None:
    masked, _ = masker.mask_text("arn:aws:iam::483920175526:role/x-1 and 483920175526")
    assert "483920175526" not in masked
