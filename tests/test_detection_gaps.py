"""Detection gaps of issue 10: identifier classes seen in real CLI output and prose that passed before.

Each test names what must be masked (and what must not); failures report categories and counts, never
the values (tests/test_corpus.py's rule).
"""

from __future__ import annotations

import json
import re

import pytest

from aws_masker import echo
from aws_masker.body import mask_request
from aws_masker.engine import Masker
from aws_masker.patterns import EC2_LONG_PREFIXES, EC2_PREFIXES
from aws_masker.restore import restore_text


def _survivors(masker: Masker, text: str, values: list[str]) -> int:
    """How many of ``values`` pass unmasked (and the masking restores exactly)."""
    masked, result = masker.mask_text(text)
    assert restore_text(masked, result.tokens)[0] == text
    return sum(value in masked for value in values)


def _untouched(masker: Masker, text: str) -> bool:
    return masker.mask_text(text)[0] == text


# ---- EC2-family prefixes --------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", sorted(EC2_PREFIXES))
def test_every_ec2_prefix_is_masked_with_17_hex_and_the_older_ones_with_8(
    masker: Masker, prefix: str
) -> None:
    short, long = f"{prefix}-1a2b3c4d", f"{prefix}-0123456789abcdef0"
    found = {f.value: f.kind for f in masker.find(f"ids: {short}, {long}.") if f.mask}
    assert found.get(long) == EC2_PREFIXES[prefix], prefix
    if prefix in EC2_LONG_PREFIXES:
        assert short not in found, prefix  # (a shorter prefix inside may still match: ami- in export-ami-)
    else:
        assert found.get(short) == EC2_PREFIXES[prefix], prefix


def test_a_date_after_a_new_prefix_is_no_id(masker: Masker) -> None:
    assert _untouched(masker, "restore pg-20240115.sql, then mi-20240115 and op-12345678")


@pytest.mark.parametrize(
    "prefix",
    ["iip-assoc", "eipassoc", "rtbassoc", "subnet-cidr-assoc", "vpc-cidr-assoc", "tgw-attach", "lt", "fl",
     "dopt", "pcx", "vpce", "eigw", "cgw", "vgw", "ipam", "ipam-pool", "ipam-scope", "pl", "cvpn-endpoint",
     "tmf", "eice", "mi", "op"],
)  # fmt: skip
def test_ec2_prefixes_named_in_the_issue_are_known(prefix: str) -> None:
    assert prefix in EC2_PREFIXES


def test_a_longer_prefix_wins(masker: Masker) -> None:
    (found,) = [f for f in masker.find("assoc iip-assoc-0e7736511a8b1c2d3 done") if f.mask]
    assert found.kind == "IIP_ASSOC"
    assert found.value.startswith("iip-assoc-")


# ---- RDS ------------------------------------------------------------------------------------------


def test_automated_snapshot_masks_the_db_name_and_keeps_the_date(masker: Masker) -> None:
    text = '"DBSnapshotIdentifier": "rds:ledger-pg-main-2024-05-01-03-12"\nthe ledger-pg-main instance'
    masked, _result = masker.mask_text(text)
    assert "ledger-pg-main" not in masked
    assert re.search(r"rds:AWS_RDS_[0-9a-f]{12}-2024-05-01-03-12", masked)
    assert masked.count(masked.split("rds:", 1)[1][:19]) == 2  # the bare name is echoed, same token


@pytest.mark.parametrize(
    "key",
    ["SourceDBSnapshotIdentifier", "TargetDBSnapshotIdentifier", "SourceDBClusterSnapshotIdentifier",
     "TargetDBInstanceIdentifier", "GlobalClusterIdentifier", "ReadReplicaSourceDBInstanceIdentifier",
     "DBClusterSnapshotIdentifier", "final_snapshot_identifier", "replicate_source_db"],
)  # fmt: skip
def test_rds_identifier_keys(masker: Masker, key: str) -> None:
    assert _survivors(masker, f'"{key}": "ledger-copy-0501"', ["ledger-copy-0501"]) == 0


@pytest.mark.parametrize(
    "flag",
    ["--source-db-snapshot-identifier", "--target-db-snapshot-identifier", "--global-cluster-identifier"],
)
def test_rds_identifier_flags(masker: Masker, flag: str) -> None:
    assert _survivors(masker, f"aws rds x {flag} ledger-copy-0501 --y", ["ledger-copy-0501"]) == 0


def test_rds_event_source_only_for_db_sources(masker: Masker) -> None:
    """An event source is an RDS name only where its type is a DB one; another source is still a
    resource's name under an *Identifier key (named_suffix_key), masked without the RDS kind."""
    rds = '{"SourceIdentifier": "ledger-replica-1", "SourceType": "db-instance"}'
    other = '{"SourceIdentifier": "web-deploy-1", "SourceType": "lambda-function"}'
    masked, result = masker.mask_text(rds)
    assert "ledger-replica-1" not in masked and any(t.startswith("AWS_RDS_") for t in result.tokens)
    masked, result = masker.mask_text(other)
    assert "web-deploy-1" not in masked and not any(t.startswith("AWS_RDS_") for t in result.tokens)


@pytest.mark.parametrize(
    "host",
    ["payments-aurora.cluster-cx8yzu1mnb2q.us-east-2.rds.amazonaws.com",
     "payments-aurora.cluster-ro-cx8yzu1mnb2q.us-east-2.rds.amazonaws.com",
     "analytics.cluster-custom-cx8yzu1mnb2q.us-east-2.rds.amazonaws.com"],
)  # fmt: skip
def test_rds_cluster_endpoints_are_masked_whole(masker: Masker, host: str) -> None:
    masked, _ = masker.mask_text(f"psql -h {host} -p 5432")
    assert re.fullmatch(r"psql -h AWS_RDS_HOST_[0-9a-f]{12} -p 5432", masked)


# ---- ARNs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    ["arn:aws:iam:<region>:373728194576:role/ami-builder", "arn:aws:sns:REGION:484839205687:ami-events",
     "arn:${AWS::Partition}:logs:${AWS::Region}:595940316798:log-group:/ami/builder",
     "arn:aws:Lambda:eu-west-1:606051427809:function:ami-notify",
     "arn:aws:my_svc:us-east-1a:606051427809:x/y"],
)  # fmt: skip
def test_an_arn_with_a_malformed_field_is_masked_whole(masker: Masker, arn: str) -> None:
    masked, _ = masker.mask_text(f"see {arn} now")
    assert re.fullmatch(r"see AWS_[A-Z_]*ARN_[0-9a-f]{12} now", masked)


# ---- account IDs ----------------------------------------------------------------------------------

ACCOUNTS = ["518273649021", "629384750132", "740495861243"]


@pytest.mark.parametrize(
    "flag",
    ["--owners", "--owner-ids", "--owner-id", "--restorable-by-user-ids", "--accounts", "--account-ids",
     "--source-account", "--expected-bucket-owner", "--principals", "--transit-gateway-owner-id"],
)  # fmt: skip
@pytest.mark.parametrize("separator", [" ", ",", ", "])
def test_every_account_after_an_owner_or_account_flag(masker: Masker, flag: str, separator: str) -> None:
    count = 1 if flag.endswith(("-id", "account", "owner")) else 3
    text = f"aws x y {flag} {separator.join(ACCOUNTS[:count])} --region eu-west-1"
    assert _survivors(masker, text, ACCOUNTS[:count]) == 0


@pytest.mark.parametrize(
    "text",
    ['provider "aws" {\n  allowed_account_ids = ["518273649021", "629384750132", "740495861243"]\n}',
     'allowed_account_ids:\n  - "518273649021"\n  - "629384750132"\n  - "740495861243"\n',
     '{"Accounts": ["518273649021", "629384750132", "740495861243"]}'],
)  # fmt: skip
def test_lists_under_account_keys(masker: Masker, text: str) -> None:
    assert _survivors(masker, text, ACCOUNTS) == 0


def test_a_list_continued_on_the_next_shell_line(masker: Masker) -> None:
    text = "aws ec2 describe-images --owners 518273649021 \\\n  629384750132 740495861243 \\\n  --output text"
    assert _survivors(masker, text, ACCOUNTS) == 0


def test_filter_values_naming_an_owner(masker: Masker) -> None:
    text = "--filters Name=resource-owner-id,Values=518273649021,629384750132 Name=state,Values=available"
    assert _survivors(masker, text, ACCOUNTS[:2]) == 0


def test_a_long_list_is_masked_to_its_last_item(masker: Masker) -> None:
    accounts = [f"{500000000000 + 7919 * i}" for i in range(300)]
    text = "aws ec2 describe-images --owners " + " ".join(accounts) + " --output json"
    assert _survivors(masker, text, accounts) == 0
    as_json = json.dumps({"Condition": {"StringEquals": {"aws:SourceAccount": accounts}}}, indent=2)
    assert _survivors(masker, as_json, accounts) == 0


def test_a_list_without_account_context_stays(masker: Masker) -> None:
    assert _untouched(masker, "order numbers 518273649021 629384750132, 740495861243 shipped")
    assert _untouched(masker, "aws ec2 describe-images --owners self amazon --max-items 518273649021")
    # a list continues on its line (or as YAML items), not into the next line's numbers
    assert _survivors(masker, "--owners 518273649021\n629384750132 bytes", ACCOUNTS[1:2]) == 1


@pytest.mark.parametrize(
    "text",
    ['The workload accounts are "518273649021", "629384750132" and "740495861243".',
     "Affected accounts\n(prod only): `518273649021`, `629384750132`, `740495861243`.",
     "account IDs in scope: 518273649021, 629384750132, 740495861243",
     "Accounts in the org:\n  * 518273649021 (prod)\n  * 629384750132 (staging)\n  * 740495861243\n",
     "Member accounts: 518273649021 (prod), 629384750132 (staging), 740495861243 (dev)",
     "The sandbox accounts are\n1. 518273649021\n2. 629384750132\n3. 740495861243"],
)  # fmt: skip
def test_accounts_in_prose_a_few_words_before_a_list(masker: Masker, text: str) -> None:
    assert _survivors(masker, text, ACCOUNTS) == 0


def test_prose_about_other_numbers_stays(masker: Masker) -> None:
    assert _untouched(masker, "The account team called about invoice 518273649021, 629384750132.")


@pytest.mark.parametrize(
    "text",
    ['{"Key": "AWSLogs/518273649021/CloudTrail/eu-west-1/2024/05/02/x.json.gz"}',
     "s3://trail-bucket-1/AWSLogs/o-a1b2c3d4e5/518273649021/CloudTrail/",
     "2024/05/02/518273649021_CloudTrail_eu-west-1_20240502T1015Z_kq3vX9.json.gz",
     "518273649021_elasticloadbalancing_eu-west-1_app.my-alb.5f1a2b3c_20240502T1015Z_1.2.3.4_x.log.gz"],
)  # fmt: skip
def test_accounts_in_aws_log_object_keys(masker: Masker, text: str) -> None:
    assert _survivors(masker, text, ACCOUNTS[:1]) == 0


@pytest.mark.parametrize(
    "text",
    ['"Condition": {"StringEquals": {"aws:SourceAccount": "518273649021"}}',
     '"Condition": {"StringEquals": {"aws:SourceOwner": ["518273649021", "629384750132", "740495861243"]}}',
     "Condition:\n  StringEquals:\n    aws:SourceAccount:\n      - '518273649021'\n      - '629384750132'\n"
     "      - '740495861243'\n",
     'Condition:\n  StringEquals:\n    AWS:SourceOwner: "518273649021"\n'],
)  # fmt: skip
def test_source_account_and_owner_conditions(masker: Masker, text: str) -> None:
    values = [a for a in ACCOUNTS if a in text]
    assert _survivors(masker, text, values) == 0


def test_source_account_conditions_in_a_json_body(masker: Masker) -> None:
    policy = {"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNTS, "aws:SourceOwner": ACCOUNTS[0]}}}
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    body["tools"] = [{"name": "t", "input_schema": {"type": "object"}, "description": "d"}]
    body["messages"].append({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "t",
                                                               "input": policy}]})  # fmt: skip
    out = mask_request(json.dumps(body).encode(), masker)[0].decode()
    assert sum(a in out for a in ACCOUNTS) == 0


# ---- generic keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["ARTIFACTS_BUCKET=acme-ci-artifacts-0425", 'STATIC_ASSETS_BUCKET_NAME="acme-ci-artifacts-0425"',
     "export REPORTS_BUCKET='acme-ci-artifacts-0425'", 'terraform_state_bucket = "acme-ci-artifacts-0425"',
     "  mediaBucket: acme-ci-artifacts-0425", '{"ArtifactsBucketName": "acme-ci-artifacts-0425"}',
     '{"OutputKey": "Uploads", "OutputValue": "acme-ci-artifacts-0425"}',
     '{"PhysicalResourceId": "acme-ci-artifacts-0425", "ResourceType": "AWS::S3::Bucket"}'],
)  # fmt: skip
def test_bucket_names_under_generic_keys(masker: Masker, line: str) -> None:
    found = [f for f in masker.find(line) if f.mask]
    assert [(f.category, f.kind) for f in found] == [("s3", "S3_BUCKET")]
    assert found[0].value == "acme-ci-artifacts-0425"


def test_an_rds_stack_resource_is_an_rds_name(masker: Masker) -> None:
    text = '{"PhysicalResourceId": "media-metadatadb-8h7g6f5d", "ResourceType": "AWS::RDS::DBInstance"}'
    assert [f.kind for f in masker.find(text) if f.mask] == ["RDS"]


@pytest.mark.parametrize(
    "line",
    ["RATE_LIMIT_BUCKET=100", "TOKEN_BUCKET_SIZE=500", '"histogramBucket": 10', "DEFAULT_BUCKET=v2.7.0",
     '"OutputValue": "t3.micro"', '"OutputValue": "enabled"', '"OutputValue": "2.4.1"',
     '"OutputValue": "eu-west-1"', '"PhysicalResourceId": "Enabled"'],
)  # fmt: skip
def test_generic_keys_with_values_that_are_no_names_stay(masker: Masker, line: str) -> None:
    assert _untouched(masker, line)


# ---- names in prose -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "category"),
    [("the DB cluster named ``ledger`` is the one", "ledger", "rds"),
     ("the snapshot named `nightly` is kept 7 days", "nightly", "rds"),
     ('the DB instance called "warehouse" is retired', "warehouse", "rds"),
     ("a bucket called 'invoices' holds the PDFs", "invoices", "s3"),
     ("a bucket called ``invoices`` holds the PDFs", "invoices", "s3"),
     ("the bucket named \u201cinvoices\u201d is public", "invoices", "s3"),
     ("the cluster snapshot named prerelease-ledger-0502 can go", "prerelease-ledger-0502", "rds")],
)  # fmt: skip
def test_names_given_with_strong_evidence_in_prose(
    masker: Masker, text: str, name: str, category: str
) -> None:
    found = [f for f in masker.find(text) if f.mask]
    assert [(f.category, f.value == name) for f in found] == [(category, True)]


@pytest.mark.parametrize(
    "text",
    ["The bucket is named after the team.", "A snapshot called for a rollback.",
     "the snapshot named in the ticket was fine", "The DB is called by the worker."],
)  # fmt: skip
def test_named_and_called_without_a_name_stay(masker: Masker, text: str) -> None:
    assert _untouched(masker, text)


# ---- echoes ---------------------------------------------------------------------------------------


def test_a_word_shaped_name_under_a_strong_key_is_echoed(masker: Masker) -> None:
    text = '{"DBClusterIdentifier": "ordersdb"}\nwhy is ordersdb slow? the orders table is big'
    masked, result = masker.mask_text(text)
    assert "ordersdb" not in masked
    assert "the orders table" in masked
    assert result.counts["rds"] == 2


@pytest.mark.parametrize("name", ["ledger", "invoices", "postgres", "warehouses", "billing"])
def test_common_words_are_not_echoed(masker: Masker, name: str) -> None:
    masked, result = masker.mask_text(f'{{"Bucket": "{name}"}}\nthe {name} is slow')
    assert masked.endswith(f"the {name} is slow")
    assert result.counts["s3"] == 1


def test_the_common_word_list_is_shipped_with_its_licence() -> None:
    words = echo.common_words()
    assert len(words) > 20_000
    assert {"the", "orders", "ledger"} <= words.keys()
    assert not echo.is_common_word("ordersdb")
    assert echo.is_common_word("invoices") and echo.is_common_word("Postgres")


def test_echo_sees_through_json_escapes(masker: Masker) -> None:
    text = (
        '{"DBInstanceIdentifier": "orders-prod-db-1"} then {\\"note\\": \\"orders\\u002dprod-db-1 is down\\"}'
    )
    masked, result = masker.mask_text(text)
    assert "prod-db-1" not in masked
    assert result.counts["rds"] == 2
    assert restore_text(masked, result.tokens)[0].count("orders-prod-db-1") == 2


def test_echo_in_a_raw_body_with_escapes(masker: Masker) -> None:
    raw = (
        r'{"model":"m","messages":[{"role":"user","content":"x {\"DBClusterIdentifier\": \"ledgerxyz\"} '
        r"then \"ledgerxyz\\u0020down\" and orders\\u002dprod-db-1 {\"DBInstanceIdentifier\": "
        r'\"orders-prod-db-1\"}"}]}'
    )
    out = mask_request(raw.encode(), masker)[0].decode()
    assert "ledgerxyz" not in out
    assert "prod-db-1" not in out
