"""Detection gaps of issue 10, third round (a red-team review with the AWS CLI's own formatter): lists
of names under their key, a policy's principals after an ARN, SSM parameters in YAML and table output,
``terraform output -json``, name/value pairs in text and table output, paths echoed, key names with a
prefix. The realistic samples are in tests/corpus/aws (tests/test_corpus.py); these are the variants
and the JSON path (a tool_use input), which must reach the same verdicts as pasted text. Failures
report counts, never values (tests/test_corpus.py's rule).
"""

from __future__ import annotations

import json

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks

from aws_masker import cliformats
from aws_masker.engine import Masker

SECRET = "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"  # (tests/stack/secrets.py: a known fake)


TABLES = ["orders-prod", "customers-prod", "audit_log_v2"]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"TableNames": TABLES}, indent=4),
        json.dumps({"TableNames": TABLES}),
        "TableNames:\n- orders-prod\n- customers-prod\n- audit_log_v2\n",
        "TableNames: [orders-prod, customers-prod, audit_log_v2]\n",
        "TABLENAMES\torders-prod\nTABLENAMES\tcustomers-prod\nTABLENAMES\taudit_log_v2\n",
        json.dumps({"o": json.dumps({"TableNames": TABLES})}),  # escaped, in a log record
    ],
    ids=["json", "json-compact", "yaml-block", "yaml-flow", "text", "escaped"],
)
def test_every_name_of_a_list_under_its_key_is_masked(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, TABLES) == 0


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("StreamNames", ["clickstream-prod", "audit-events-2"]),
        ("DeliveryStreamNames", ["logs-to-s3-prod"]),
        ("JobNames", ["nightly-etl-prod", "backfill_2024"]),
        ("CrawlerNames", ["raw-zone-crawler"]),
        ("LoadBalancerNames", ["prod-web-clb"]),
        ("MemberClusters", ["sessions-redis-prod-001", "sessions-redis-prod-002"]),
    ],
)
def test_other_lists_of_names(masker: Masker, key: str, names: list[str]) -> None:
    assert _leaks(masker, json.dumps({key: names}, indent=2), names) == 0
    assert _json_leaks(masker, {key: names}, names) == 0


def test_plain_words_in_a_list_of_names_are_kept(masker: Masker) -> None:
    """As under the singular key: a plain word is not taken for a name (a table called "orders")."""
    masked, _ = masker.mask_text('{"TableNames": ["orders", "orders-prod"]}')
    assert '"orders"' in masked and "orders-prod" not in masked


PRINCIPALS = ["691827364510", "304958172634", "111122223333"]


@pytest.mark.parametrize(
    "text",
    [
        '"Principal": {"AWS": ["arn:aws:iam::691827364510:root", "304958172634", "111122223333"]}',
        "Principal:\n  AWS:\n  - arn:aws:iam::691827364510:root\n  - '304958172634'\n  - '111122223333'\n",
        '"AWS": [\n  "arn:aws:iam::691827364510:role/deploy",\n  "304958172634",\n  "111122223333"\n]',
    ],
    ids=["json", "yaml", "json-role"],
)
def test_accounts_after_an_arn_in_a_principal_list(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, PRINCIPALS) == 0


def test_principal_list_on_the_json_path(masker: Masker) -> None:
    value = {"Principal": {"AWS": ["arn:aws:iam::691827364510:root", "304958172634"]}}
    assert _json_leaks(masker, value, PRINCIPALS[:2]) == 0


def test_ssm_parameter_yaml_with_its_type_between_name_and_value(masker: Masker) -> None:
    text = (
        "Parameters:\n- ARN: arn:aws:ssm:eu-west-1:520394817263:parameter/ci/aws_secret_access_key\n"
        "  DataType: text\n  Name: /ci/aws_secret_access_key\n  Type: SecureString\n"
        f"  Value: {SECRET}\n  Version: 3\n- Name: /ci/upload_bucket\n  Type: String\n"
        "  Value: acme-uploads-prod\n"
    )
    assert _leaks(masker, text, [SECRET, "acme-uploads-prod"]) == 0


TF_OUTPUT = {
    "bucket_name": {"sensitive": False, "type": "string", "value": "acme-prod-logs-eu"},
    "ci_secret_access_key": {"sensitive": True, "type": "string", "value": SECRET},
}


def test_terraform_output_json(masker: Masker) -> None:
    values = ["acme-prod-logs-eu", SECRET]
    assert _leaks(masker, json.dumps(TF_OUTPUT, indent=2), values) == 0
    assert _json_leaks(masker, TF_OUTPUT, values) == 0


@pytest.mark.parametrize(
    "line",
    [
        f"CI_AWS_SECRET_ACCESS_KEY={SECRET}",
        f'"prod_secret_access_key": "{SECRET}"',
        f"deployerSecretAccessKey: {SECRET}",
        f"export STAGING_AWS_SECRET_KEY='{SECRET}'",
    ],
)
def test_a_secret_key_under_a_prefixed_key_name(masker: Masker, line: str) -> None:
    assert _leaks(masker, line, [SECRET]) == 0


def test_name_value_pairs_in_text_output(masker: Masker) -> None:
    text = (
        "PARAMETERS\tArtifactBucket\tacme-artifacts-eu-west-1\n"
        "PARAMETERS\tDBInstanceIdentifier\torders-db-prod\n"
        "TAGS\tbackup-bucket\tacme-backups-eu\n"
    )
    assert _leaks(masker, text, ["acme-artifacts-eu-west-1", "orders-db-prod", "acme-backups-eu"]) == 0


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "$ aws ssm get-parameter --name /orders/prod/db_password\nWhy does /orders/prod/db_password "
            "return ParameterNotFound? The console shows /orders/prod/db_password.",
            "/orders/prod/db_password",
        ),
        (
            '{"ARN": "arn:aws:secretsmanager:eu-west-1:520394817263:secret:'
            'orders-prod/db-credentials-Ab12Cd", "Name": "orders-prod/db-credentials"}',
            "orders-prod/db-credentials",
        ),
        (
            '"logGroupArn": "arn:aws:logs:eu-west-1:520394817263:log-group:/ecs/orders-api-prod:*"\n'
            "aws logs tail /ecs/orders-api-prod --follow",
            "/ecs/orders-api-prod",
        ),
    ],
    ids=["ssm", "secret", "log-group"],
)
def test_paths_are_echoed(masker: Masker, text: str, name: str) -> None:
    assert _leaks(masker, text, [name]) == 0


def test_many_paths_are_echoed_by_lookup(masker: Masker) -> None:
    """Past echo.SEARCHES names the echo looks runs up instead of searching each name: a run of path
    characters must hold the whole path."""
    paths = [f"/svc{n}/prod/db_password" for n in range(60)]
    text = "\n".join(f"aws ssm get-parameter --name {p}" for p in paths) + "\n" + " ".join(paths)
    assert _leaks(masker, text, paths) == 0


def test_ids_of_credentials_and_their_service_user(masker: Masker) -> None:
    text = (
        '{"ServiceUserName": "ci-deployer-at-520394817263", '
        '"ServiceSpecificCredentialId": "ACCAQFODXMPL4YFHP7DZE"}'
    )
    assert _leaks(masker, text, ["520394817263", "ACCAQFODXMPL4YFHP7DZE"]) == 0


def test_a_line_far_shorter_than_a_structure_is_not_aligned_to_it(masker: Masker) -> None:
    """A tab-separated export whose first word is a structure's name (INSTANCES: EC2's has 38 scalar
    members) is not text output: four values fit that structure in many ways, one of them a KeyName."""
    text = "INSTANCES\tweb-1\t3\trunning\tFalse\n"
    assert not [f for f in masker.find(text) if f.mask]


def test_query_aliases_name_table_columns() -> None:
    command = (
        'aws rds describe-db-instances --query "DBInstances[*].{ID:DBInstanceIdentifier,Engine:Engine}"\n'
    )
    assert cliformats.query_aliases(command) == {"ID": "DBInstanceIdentifier"}


# ---- second review (material beyond the AWS CLI): its realistic samples are in tests/corpus/aws ----


@pytest.mark.parametrize(
    "text",
    [
        'df = df[["table_name", "row_count", "size_mb"]]',
        '"required": ["TableName", "KeySchema", "AttributeDefinitions"]',
        'fields = ("function_name", "memory_size", "timeout")',
        'keys: ["StackName", "StackStatus"]',
    ],
)
def test_a_list_of_key_names_is_not_a_key_and_its_value(masker: Masker, text: str) -> None:
    """Only a CloudWatch metrics array ("AWS/Lambda", "Errors", "FunctionName", "x") pairs a key with
    the next item."""
    assert not [f for f in masker.find(text) if f.mask]


def test_a_metrics_array_still_pairs_a_dimension_with_its_value(masker: Masker) -> None:
    text = '["AWS/Lambda", "Errors", "FunctionName", "acme-billing-sync", {"stat": "Sum"}]'
    assert _leaks(masker, text, ["acme-billing-sync"]) == 0


@pytest.mark.parametrize(
    ("text", "service"),
    [
        (
            '{"VpcEndpointId": "vpce-0a1b2c3d4e5f60718", "ServiceName": "com.amazonaws.eu-west-1.s3"}',
            "com.amazonaws.eu-west-1.s3",
        ),
        (
            '{"AwsApiCallAction": {"Api": "ListBuckets", "ServiceName": "lambda.amazonaws.com"}}',
            "lambda.amazonaws.com",
        ),
    ],
)
def test_an_aws_service_name_is_not_a_resource_name(masker: Masker, text: str, service: str) -> None:
    masked, _ = masker.mask_text(text)
    assert f'"ServiceName": "{service}"' in masked


def test_alarm_dimensions_value_first_also_escaped_in_an_sns_message(masker: Masker) -> None:
    alarm = {
        "AlarmName": "db-cpu-high",
        "Trigger": {
            "Namespace": "AWS/RDS",
            "Dimensions": [{"value": "orders-db-prod", "name": "DBInstanceIdentifier"}],
        },
    }
    text = json.dumps({"Type": "Notification", "Message": json.dumps(alarm)})
    assert _leaks(masker, text, ["orders-db-prod"]) == 0
    assert _json_leaks(masker, alarm, ["orders-db-prod"]) == 0
