"""Detection gaps of issue 10, second round: identifier forms a model reads as the same identifier.

Upper-case forms, account IDs in digit groups, an account under a nested owner object, YAML block
scalars, ARNs with spaces or line breaks around the colons, and name/value pair objects whose name
member says what the value member holds. Failures report counts and rule names, never the values
(tests/test_corpus.py's rule).
"""

from __future__ import annotations

import json

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks

from aws_masker.engine import Masker


def _case(_value: object) -> str:
    """Test IDs name no value (pytest numbers the duplicates)."""
    return "case"


def _masked_rules(masker: Masker, text: str) -> list[str]:
    return [f.rule.name for f in masker.find(text) if f.mask]


# ---- 1. upper-case forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("Instance I-0123456789ABCDEF0 is down", "I-0123456789ABCDEF0"),
     ("VPC-0A1B2C3D peers with vpc-1a2b3c4d", "VPC-0A1B2C3D"),
     ("the volume Vol-0123456789AbCdEf0.", "Vol-0123456789AbCdEf0"),
     ("SUBNET-0A1B2C3D4E5F67890, SG-0A1B2C3D", "SUBNET-0A1B2C3D4E5F67890"),
     ("ROLE: ARN:AWS:IAM::483920175526:ROLE/X", "483920175526"),
     ("Arn:Aws:Lambda:EU-WEST-1:483920175526:Function:F", "483920175526"),
     ("ARN:AWS:S3:::ACME-DATA-PROD/logs", "ACME-DATA-PROD"),
     ("copy S3://ACME-DATA/x there", "ACME-DATA"),
     ("S3://Acme-Data-Prod/", "Acme-Data-Prod")],
    ids=_case,
)  # fmt: skip
def test_upper_case_forms(masker: Masker, text: str, value: str) -> None:
    assert _leaks(masker, text, [value]) == 0


@pytest.mark.parametrize(
    "text",
    ["SG-1 and I-95 are roads", "SG-12345 is a ticket", "I-0123456789 is short", "CVE-2024-12345678",
     "ISO-8859-1 or ASCII", "VPC-ABCDEFGHIJ", "the I-DEADBEEFS", "ARN: the resource name",
     "ARN:AWS:IAM::AWS:POLICY/ADMINISTRATORACCESS", "ARN:AWS:S3:::*", "S3://", "HTTP://ACME-DATA/x",
     "NAT-GATEWAY-0A1B2C3D", "OP-12345678 and MI-20240115"],
    ids=_case,
)  # fmt: skip
def test_upper_case_words_that_are_no_ids_stay(masker: Masker, text: str) -> None:
    assert _masked_rules(masker, text) == []


# ---- 2. account IDs in digit groups ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["account 4839 2017 5526", "Account ID: 483 920 175 526.", '"AccountId": "4839\u00a02017\u00a05526"',
     "OwnerId: 4839\u202f2017\u202f5526\n", "aws account 4839-2017-5526", "account 483-920-175-526 is prod"],
    ids=_case,
)  # fmt: skip
def test_account_ids_in_digit_groups(masker: Masker, text: str) -> None:
    digits = "".join(c for c in text if c.isdigit())
    assert digits.endswith("483920175526")
    masked = masker.mask_text(text)[0]
    assert "".join(c for c in masked if c.isdigit()).count("483920175526") == 0
    assert _leaks(masker, text, []) == 0  # restores exactly


@pytest.mark.parametrize(
    "text",
    ["call 4839 2017 5526 now", "card 4839 2017 5526 1234", "it had 483 920 175 526 bytes in 2024",
     "order 4839-2017-5526", "phone: 483 920 175 526"],
    ids=_case,
)  # fmt: skip
def test_digit_groups_without_account_evidence_stay(masker: Masker, text: str) -> None:
    assert _masked_rules(masker, text) == []


# ---- 3. an account ID under a nested owner object -------------------------------------------------

OWNER_TEXTS = [
    '{"Owner": {"ID": "483920175526"}}',
    '{"Owner": {"DisplayName": "ops-team", "ID": "483920175526"}}',
    '"Owner": {\n    "DisplayName": "ops",\n    "ID": "483920175526"\n}',
    "Owner:\n  ID: 483920175526\n",
    "Owner:\n  DisplayName: ops-team\n  ID: '483920175526'\n",
]


@pytest.mark.parametrize("text", OWNER_TEXTS, ids=_case)
def test_an_account_under_an_owner_object(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, ["483920175526"]) == 0


@pytest.mark.parametrize("text", OWNER_TEXTS[:3], ids=_case)
def test_an_account_under_an_owner_object_in_a_json_body(masker: Masker, text: str) -> None:
    value = json.loads(text if text.startswith("{") else "{" + text + "}")
    assert _json_leaks(masker, value, ["483920175526"]) == 0


def test_an_id_under_other_objects_stays(masker: Masker) -> None:
    assert _masked_rules(masker, '{"Order": {"ID": "483920175526"}}') == []
    assert _masked_rules(masker, "Invoice:\n  ID: 483920175526\n") == []


# ---- 4. YAML block scalars ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("OwnerId: >-\n  483920175526\n", "483920175526"),
     ("Bucket: |\n  acme-data-prod\n", "acme-data-prod"),
     ("DBInstanceIdentifier: >\n    orders-prod-db-1\n", "orders-prod-db-1"),
     ("Resources:\n  X:\n    Properties:\n      BucketName: |-\n        acme-logs-eu\n", "acme-logs-eu"),
     ("AccountId: |+\r\n  483920175526\r\n", "483920175526")],
    ids=_case,
)  # fmt: skip
def test_yaml_block_scalars_after_a_key(masker: Masker, text: str, value: str) -> None:
    assert _leaks(masker, text, [value]) == 0


def test_a_block_scalar_under_another_key_stays(masker: Masker) -> None:
    assert _masked_rules(masker, "Description: >-\n  483920175526\nNote: |\n  acme-data-prod\n") == []


# ---- 5. ARNs with spaces or line breaks around the colons -----------------------------------------


@pytest.mark.parametrize(
    "text",
    ["role arn : aws : iam :: 483920175526 : role/x done", "arn: aws: iam:: 483920175526: role/x",
     "arn:aws:iam::\n483920175526:role/x", "Resource: arn:aws:sns:eu-west-1:\n    483920175526:alerts\n",
     "arn:aws:iam::483920175526:\nrole/deploy"],
    ids=_case,
)  # fmt: skip
def test_arns_with_spaces_or_breaks(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, ["483920175526"]) == 0


def test_spaced_arn_words_without_an_account_stay(masker: Masker) -> None:
    assert _masked_rules(masker, "the arn : aws : iam :: role/x and arn: aws docs: 2024 :: 12") == []


# ---- 6. name/value pair objects -------------------------------------------------------------------

PAIRS = [
    ({"ParameterKey": "DBInstanceIdentifier", "ParameterValue": "orders-prod-db-1"}, "orders-prod-db-1"),
    ({"OutputKey": "BucketName", "OutputValue": "acmex"}, "acmex"),
    ({"name": "DATA_BUCKET", "value": "acme-orders-data"}, "acme-orders-data"),
    ({"Name": "ACCOUNT_ID", "Value": "483920175526"}, "483920175526"),
    ({"Key": "OwnerId", "Value": "483920175526"}, "483920175526"),
    ({"Name": "/app/prod/S3_BUCKET", "Type": "String", "Value": "acme-orders-data"}, "acme-orders-data"),
]


@pytest.mark.parametrize(("pair", "value"), PAIRS, ids=_case)
@pytest.mark.parametrize("indent", [None, 2])
def test_name_value_pairs_as_pasted_json(
    masker: Masker, pair: dict[str, str], value: str, indent: int | None
) -> None:
    text = json.dumps({"Items": [pair]}, indent=indent)
    assert _leaks(masker, text, [value]) == 0
    assert _leaks(masker, json.dumps(json.dumps(pair)), [value]) == 0  # escaped JSON in a string


@pytest.mark.parametrize(("pair", "value"), PAIRS, ids=_case)
def test_name_value_pairs_in_a_json_body(masker: Masker, pair: dict[str, str], value: str) -> None:
    assert _json_leaks(masker, {"Items": [pair]}, [value]) == 0
    reordered = dict(reversed(list(pair.items())))
    assert _json_leaks(masker, {"Items": [reordered]}, [value]) == 0


@pytest.mark.parametrize(
    "text",
    ["aws cloudformation create-stack --parameters ParameterKey=DBInstanceIdentifier,"
     "ParameterValue=orders-prod-db-1",
     "Environment:\n  - Name: DATA_BUCKET\n    Value: orders-prod-db-1\n",
     "aws ec2 create-tags --tags Key=OwnerId,Value=483920175526"],
    ids=_case,
)  # fmt: skip
def test_name_value_pairs_in_cli_and_yaml(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, ["orders-prod-db-1", "483920175526"]) == 0


@pytest.mark.parametrize(
    "pair",
    [{"Key": "Name", "Value": "web-server-1"}, {"Key": "Environment", "Value": "production"},
     {"name": "LOG_LEVEL", "value": "debug-verbose"}, {"Name": "TIMEOUT", "Value": "483920175526"},
     {"ParameterKey": "InstanceType", "ParameterValue": "t3.micro"},
     {"OutputKey": "ApiUrl", "OutputValue": "https://example.com/v1"}],
    ids=_case,
)  # fmt: skip
def test_name_value_pairs_naming_nothing_stay(masker: Masker, pair: dict[str, str]) -> None:
    assert _masked_rules(masker, json.dumps({"Tags": [pair]}, indent=2)) == []
    assert _json_leaks(masker, {"Tags": [pair]}, [pair[k] for k in pair if "alue" in k]) == 1


def test_an_output_value_keeps_its_own_evidence(masker: Masker) -> None:
    pair = {"OutputKey": "Uploads", "OutputValue": "media-uploads-x7k2"}
    assert _leaks(masker, json.dumps({"Outputs": [pair]}), ["media-uploads-x7k2"]) == 0
    assert _json_leaks(masker, {"Outputs": [pair]}, ["media-uploads-x7k2"]) == 0


def test_a_deleted_member_never_hides_a_value(masker: Masker) -> None:
    text = '{"Name": "S3_BUCKET", "Owner": "483920175526", "Value": "acme-orders-data"}'
    assert _leaks(masker, text, ["483920175526"]) == 0
