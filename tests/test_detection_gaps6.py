"""Detection gaps of issue 10, sixth round, from a review of infrastructure-as-code output, code and
chat pastes: `cdk diff` (values under their key), `terraform plan` and `pulumi preview` updates (the
new value after the arrow), lists with a plan's change marks, IAM policy documents in HCL, maps of
accounts by name, settings in code (os.getenv("X", "..."), a type annotation), labels in bold, the
account under other keys, CloudFormation's "already exists" messages, CSV and SQL-client headers,
and the false positives the review found (a stack status read as a name, hyphenated English in
prose). The realistic samples are in tests/corpus/aws (tests/test_corpus.py); these are the
variants, the false positives to avoid and the JSON path. Failures report counts, never values.
"""

from __future__ import annotations

import re

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks
from gaps import rule_finds_its_samples_in_every_mode
from gaps import scanner as _scanner

from aws_masker import textmarks
from aws_masker.engine import Masker
from aws_masker.patterns import RULES

BUCKET, BUCKET2 = "acme-orders-prod-data", "acme-orders-prod-data-v2"
DB, DB2 = "orders-prod-db-1", "orders-prod-db-2"


def _cdk_change(key: str, old: str, new: str, indent: str = " ", note: str = "") -> str:
    deeper = indent + "    "
    return f"{indent}└─ [~] {key}{note}\n{deeper}├─ [-] {old}\n{deeper}└─ [+] {new}\n"


@pytest.mark.parametrize(
    ("key", "note", "old", "new"),
    [
        ("BucketName", " (requires replacement)", BUCKET, BUCKET2),
        ("DBInstanceIdentifier", " (requires replacement)", DB, DB2),
        ("DBClusterIdentifier", " (may cause replacement)", DB, DB2),
        (".DATA_BUCKET:", "", BUCKET, BUCKET2),
        (".ORDERS_DB_INSTANCE:", "", DB, DB2),
    ],
)
def test_cdk_diff_values_under_their_key(masker: Masker, key: str, note: str, old: str, new: str) -> None:
    text = (
        "Stack OrdersStack\nResources\n[~] AWS::S3::Bucket Data DataBucket1A2B3C4D replace\n"
        + _cdk_change(key, old, new, note=note)
        + "\n✨  Number of stacks with differences: 1\n"
    )
    assert _leaks(masker, text, [old, new]) == 0
    assert _json_leaks(masker, {"stdout": text}, [old, new]) == 0


def test_cdk_diff_nested_under_environment_variables(masker: Masker) -> None:
    text = (
        "[~] AWS::Lambda::Function OrdersFn OrdersFn1A2B3C4D\n"
        " └─ [~] Environment\n"
        "     └─ [~] .Variables:\n"
        "         ├─ [+] Added: .NEW_FLAG\n"
        + _cdk_change(".DATA_BUCKET:", BUCKET, BUCKET2, indent="         ")
    )
    assert _leaks(masker, text, [BUCKET, BUCKET2]) == 0


def test_cdk_diff_values_of_plain_keys_stay(masker: Masker) -> None:
    text = "[~] AWS::Lambda::Function Fn Fn1A2B3C4D\n" + _cdk_change("Description", "old words", "new words")
    text += _cdk_change("Runtime", "nodejs18.x", "nodejs20.x") + _cdk_change("MemorySize", "128", "256")
    masked, result = masker.mask_text(text)
    assert masked == text
    assert result.total == 0


ACCOUNT, ACCOUNT2, ACCOUNT3 = "483920175526", "219384756102", "730155962418"
KEY_40 = "wJ8x/K2mP9qRvT4yZ7bN3cF6hL1sD5gA0eU+iO2k"


@pytest.mark.parametrize(
    ("line", "new"),
    [
        (
            '      ~ bucket = "acme-orders-old-logs" -> "acme-orders-prod-logs" # forces replacement',
            "acme-orders-prod-logs",
        ),
        ('      ~ identifier             = "orders-prod-db-1" -> "orders-prod-db-2"', "orders-prod-db-2"),
        (f'      ~ owner_id = "{ACCOUNT}" -> "{ACCOUNT2}"', ACCOUNT2),
        (f'      ~ "kms:CallerAccount" = "{ACCOUNT}" -> "{ACCOUNT2}"', ACCOUNT2),
        (f'              ~ AWS = "arn:aws:iam::{ACCOUNT}:root" -> "{ACCOUNT2}"', ACCOUNT2),
        ('      ~ function_name = "orders-old-fn" -> "orders-prod-fn"', "orders-prod-fn"),
        ('      ~ identifier   : "orders-db-8b2f4e1" => "orders-db-2c4e6a8"', "orders-db-2c4e6a8"),
        (
            '      ~ bucket: "orders-artifacts-4f2a9c1" => "orders-artifacts-9d3e7f2"',
            "orders-artifacts-9d3e7f2",
        ),
    ],
)
def test_the_new_value_of_a_plan_update(masker: Masker, line: str, new: str) -> None:
    text = (
        '  # aws_s3_bucket.logs will be updated in-place\n  ~ resource "aws_s3_bucket" "logs" {\n'
        + line
        + "\n    }\n"
    )
    assert _leaks(masker, text, [new]) == 0
    assert _json_leaks(masker, {"plan": text}, [new]) == 0


def test_plan_updates_of_plain_values_stay(masker: Masker) -> None:
    text = (
        '      ~ instance_class = "db.t3.micro" -> "db.t3.small"\n      ~ tags = {} -> (known after apply)\n'
    )
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        f'  + Principal = {{\n      + AWS = [\n          + "{ACCOUNT2}",\n          + "{ACCOUNT3}",\n'
        "        ]\n    }\n",
        f'  + StringEquals = {{\n      + "aws:SourceAccount"  = [\n          + "{ACCOUNT2}",\n'
        f'          + "{ACCOUNT3}",\n'
        "        ]\n    }\n",
        f'  ~ allowed_account_ids = [\n      - "{ACCOUNT}",\n      + "{ACCOUNT2}",\n'
        f'      + "{ACCOUNT3}",\n    ]\n',
    ],
)
def test_lists_of_accounts_with_change_marks(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT, ACCOUNT2, ACCOUNT3]) == 0


@pytest.mark.parametrize(
    "text",
    [
        f'  principals {{\n    type        = "AWS"\n    identifiers = ["{ACCOUNT2}", "{ACCOUNT3}"]\n  }}\n',
        f'  condition {{\n    test     = "StringEquals"\n    variable = "aws:SourceAccount"\n'
        f'    values   = ["{ACCOUNT2}"]\n  }}\n',
    ],
)
def test_iam_policy_document_blocks(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT2, ACCOUNT3]) == 0


def test_policy_document_values_of_other_conditions_stay(masker: Masker) -> None:
    text = (
        '  condition {\n    test     = "StringEquals"\n    variable = "aws:RequestTag/cost"\n'
        '    values   = ["123456789012"]\n  }\n'
    )
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize(
    "template",
    [
        'locals {{\n  accounts = {{\n    prod = "{0}"\n    ci   = "{1}"\n{2}  }}\n}}\n',
        'accounts:\n  prod: "{0}"\n  ci: "{1}"\n{2}',
        'account_ids = {{\n  prod    = "{0}"\n  staging = "{1}"\n{2}}}\n',
        "export const accounts = {{ prod: '{0}', ci: '{1}', {2} }};\n",
        'ACCOUNT_IDS = {{"prod": "{0}", "ci": "{1}", {2}}}\n',
    ],
)
def test_maps_of_accounts_by_name(masker: Masker, template: str) -> None:
    # (ten more entries: the map runs past the window the first entries are read in)
    more = [str(105829374610 + 1111 * k) for k in range(10)]
    if template.startswith(("locals", "account_ids")):
        rest = "".join(f'    env{k} = "{v}"\n' for k, v in enumerate(more))
    elif template.startswith("accounts:"):
        rest = "".join(f'  env{k}: "{v}"\n' for k, v in enumerate(more))
    elif template.startswith("export"):
        rest = ", ".join(f"env{k}: '{v}'" for k, v in enumerate(more))
    else:
        rest = ", ".join(f'"env{k}": "{v}"' for k, v in enumerate(more))
    text = template.format(ACCOUNT, ACCOUNT2, rest)
    assert _leaks(masker, text, [ACCOUNT, ACCOUNT2, *more]) == 0
    assert _json_leaks(masker, {"file": text}, [ACCOUNT, ACCOUNT2, *more]) == 0


def test_a_map_of_other_twelve_digit_numbers_stays(masker: Masker) -> None:
    text = 'limits = {\n  bytes = "123456789012"\n  files = "223456789012"\n}\n'
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{KEY_40}"', [KEY_40]),
        ('BUCKET = os.getenv("S3_BUCKET", "acme-uploads-prod")', ["acme-uploads-prod"]),
        (f'ACCOUNT_ID = os.environ.get("AWS_ACCOUNT_ID", "{ACCOUNT}")', [ACCOUNT]),
        (f'sc._jsc.hadoopConfiguration().set("fs.s3a.secret.key", "{KEY_40}")', [KEY_40]),
        (f'.config("spark.hadoop.fs.s3a.secret.key", "{KEY_40}")', [KEY_40]),
        (f'System.setProperty("aws.secretAccessKey", "{KEY_40}");', [KEY_40]),
        (f'os.Setenv("AWS_SECRET_ACCESS_KEY", "{KEY_40}")', [KEY_40]),
        (f"ENV['AWS_SECRET_ACCESS_KEY'] = '{KEY_40}'", [KEY_40]),
        ('    s3_bucket: str = "acme-uploads-prod"', ["acme-uploads-prod"]),
        (f'    aws_account_id: str = "{ACCOUNT}"', [ACCOUNT]),
        (f'    aws_secret_access_key: SecretStr = "{KEY_40}"', [KEY_40]),
        (f'let secretAccessKey: string = "{KEY_40}";', [KEY_40]),
    ],
)
def test_settings_in_code(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"code": text}, values) == 0


def test_lists_and_plain_calls_stay(masker: Masker) -> None:
    text = (
        'metrics = [["Name", "Team"], ["AWS/EC2", "CPUUtilization"]]\nprint("status", "running")\n'
        'x: str = "hello"\nlog.info("%s took %d ms", name, ms)\n'
    )
    masked, result = masker.mask_text(text)
    assert masked == text
    assert result.total == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f"**Account:** {ACCOUNT}", ACCOUNT),
        ("**Bucket:** acme-web-assets", "acme-web-assets"),
        ("**RDS instance:** orders-prod-db-1", "orders-prod-db-1"),
        (f"*Account ID:* {ACCOUNT}", ACCOUNT),
        (f"**AWS Account ID:** {ACCOUNT}", ACCOUNT),
        (f"`Account`: {ACCOUNT}", ACCOUNT),
        (f"**Account**: {ACCOUNT}", ACCOUNT),
        (f"<b>Account:</b> {ACCOUNT}", ACCOUNT),
        (f"<strong>Account ID:</strong> {ACCOUNT}", ACCOUNT),
        ("**S3 bucket:** acme-web-assets", "acme-web-assets"),
    ],
)
def test_labels_in_bold_or_code(masker: Masker, text: str, value: str) -> None:
    report = f"## Incident 42\n\n{text}\n**Impact:** checkout down for 12 minutes\n"
    assert _leaks(masker, report, [value]) == 0
    assert _json_leaks(masker, {"report": report}, [value]) == 0


def test_emphasis_that_is_no_label_stays(masker: Masker) -> None:
    text = "This is *really* important: **do not** use `foo`, and <b>never</b> run `rm -rf`: ever.\n"
    masked, result = masker.mask_text(text)
    assert masked == text
    assert result.total == 0


@pytest.mark.parametrize(
    "text",
    [
        f'{{"Table": {{"Name": "orders_raw", "CatalogId": "{ACCOUNT}"}}}}',
        f'{{"resourceShareAssociations": [{{"associatedEntity": "{ACCOUNT}", "status": "ASSOCIATED"}}]}}',
        f'{{"Members": [{{"AdministratorId": "{ACCOUNT}", "MasterId": "{ACCOUNT}"}}]}}',
        f"aws organizations attach-policy --policy-id p-a1b2c3d4 --target-id {ACCOUNT}",
        f'{{"cloud": {{"account": {{"uid": "{ACCOUNT}", "type": "AWS Account"}}}}}}',
        f'{{"Principal": "{ACCOUNT}", "Action": "lambda:InvokeFunction"}}',
        f"$s3->putObject(['Bucket' => 'acme-reports-prod', 'ExpectedBucketOwner' => '{ACCOUNT}']);",
    ],
)
def test_the_account_under_other_keys(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT, "acme-reports-prod"]) == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('db_instance_id = "orders-prod-db-1"', "orders-prod-db-1"),
        ('cluster_id = "billing-aurora-prod"', "billing-aurora-prod"),
        ('rds_cluster_id = "billing-aurora-prod"', "billing-aurora-prod"),
        ('{"ParameterKey": "DBInstanceName", "ParameterValue": "orders-prod-db-9"}', "orders-prod-db-9"),
        ('s3_bucket_id = "acme-alb-logs-prod"', "acme-alb-logs-prod"),
        ("storage_config:\n  aws:\n    bucketnames: acme-data-lake-raw\n", "acme-data-lake-raw"),
        ('output { s3 { bucket => "acme-alb-logs-prod" } }', "acme-alb-logs-prod"),
        (f"      <SecretAccessKey>{KEY_40}</SecretAccessKey>", KEY_40),
        (f"'credentials' => ['key' => 'AKIAXZQ5HB7R2LMN4P6T', 'secret' => '{KEY_40}'],", KEY_40),
        (f'    secret_access_key => "{KEY_40}"', KEY_40),
        (f"  aws_sec_key {KEY_40}\n", KEY_40),
    ],
)
def test_names_under_more_keys(masker: Masker, text: str, value: str) -> None:
    assert _leaks(masker, text, [value]) == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "CREATE_FAILED | AWS::DynamoDB::Table | OrdersTable (OrdersTable1A2B3C4D) Resource handler "
            "returned message: \"Resource of type 'AWS::DynamoDB::Table' with identifier 'orders-prod-table' "
            'already exists."',
            "orders-prod-table",
        ),
        (
            "Resource of type 'AWS::S3::Bucket' with identifier 'acme-orders-artifacts' already exists.",
            "acme-orders-artifacts",
        ),
        (
            "ArtifactsBucket\tCREATE_FAILED\tResource handler returned message: "
            '"acme-uploads-prod already exists" '
            "(RequestToken: 1a2b3c4d, HandlerErrorCode: AlreadyExists)",
            "acme-uploads-prod",
        ),
        (
            "Role with name orders-prod-processor-role already exists. (Service: Iam, Status Code: 409)",
            "orders-prod-processor-role",
        ),
        ("Function already exist: orders-prod-processor", "orders-prod-processor"),
    ],
)
def test_cloudformation_already_exists_messages(masker: Masker, text: str, value: str) -> None:
    assert _leaks(masker, text + f"\nretrying {value} later\n", [value]) == 0  # (echoed too)


@pytest.mark.parametrize(
    "text",
    [
        '"Linked account","Linked account name","2024-03","2024-04","Total costs($)"\n'
        f'"{ACCOUNT}","orders-prod","19611.04","18431.22","38042.26"\n'
        f'"{ACCOUNT2}","ci-tooling","2291.06","2310.01","4601.07"\n',
        "|   | line_item_usage_account_id | line_item_unblended_cost |\n|---|---|---|\n"
        f"| 1 | {ACCOUNT} | 1841.22 |\n"
        f"| 2 | {ACCOUNT2} | 12.5 |\n",
        '"eventtime","eventname","useridentity.accountid","recipientaccountid"\n'
        f'"2024-05-01T12:00:00Z","GetObject","{ACCOUNT}","{ACCOUNT2}"\n',
        "  account_id  | linked_account_name | unblended_cost\n"
        "--------------+---------------------+----------------\n"
        f" {ACCOUNT} | staging             |        1234.56\n {ACCOUNT2} | prod |  12.00\n(2 rows)\n",
        "+--------------+---------+\n| account_id   | name    |\n+--------------+---------+\n"
        f"| {ACCOUNT} | staging |\n"
        f"| {ACCOUNT2} | prod |\n+--------------+---------+\n",
    ],
)
def test_account_columns_of_exports_and_sql_clients(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT, ACCOUNT2]) == 0


def test_a_sql_client_column_that_only_says_account_stays(masker: Masker) -> None:
    # (psql's account numbers of some other system: only a column named for an account ID is read)
    text = "   id   |  owner  |   account    \n--------+---------+--------------\n"
    text += " 104211 | marta   | 400012345678\n"
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-02 10:02:40 UTC+0200\tOrdersFunction\tCREATE_COMPLETE\t-\n"
        "The stack is CREATE_COMPLETE.\n",  # (a stack's name after "Stack" is one: test_detection_gaps7)
        "OrdersTable   UPDATE_ROLLBACK_IN_PROGRESS\n",
        "We use RDS multi-az and RDS read-replicas; should we try RDS blue-green deployments?\n",
        "The S3 multi-part upload failed and S3 cross-region replication lags; S3 server-side encryption.\n",
        "RDS point-in-time recovery; the database is read-only; the database is up-to-date.\n",
        "DB instance auto-scaling storage; S3 object-level logging; the bucket owner-enforced setting.\n",
    ],
)
def test_review_false_positives(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert masked == text
    assert result.total == 0


@pytest.mark.parametrize(
    ("text", "marks"),
    [
        ("aws ce get-cost-and-usage --query 'ResultsByTime'", {"query"}),
        ("--group-by Type=DIMENSION,Key=LINKED_ACCOUNT", {"linked"}),
        ('{"bucket": {"sensitive": false}}', {"sensitive"}),
        ('os.getenv("X", "y")', {"call"}),
        ('env[ "X"] = 1', {"call"}),
        ('x = ["a", "b"]', set()),
        ('~ a = "b" -> "c"', {"arrow"}),
        ("a: 'b' => 'c'", {"arrow"}),
        ("a->b", set()),
        ('s3_bucket: str = "x"', {"annotation"}),
        ('name:string="x"', {"annotation"}),
        ("name: str\n", set()),
        ("-" * 100_000 + "\u00e9 --query", {"query"}),
    ],
)
def test_textmarks_agree_with_their_regexes(text: str, marks: set[str]) -> None:
    assert {name for name in textmarks.MARKS if textmarks.holds(text, name)} == marks
    assert {name for name, pattern in textmarks.MARKS.items() if re.search(pattern, text)} == marks


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "    s3.download_file('acme-data-lake-raw', 'events/part-0000.parquet', '/tmp/p.parquet')",
            "acme-data-lake-raw",
        ),
        ("    s3.upload_file('/tmp/report.csv', 'acme-reports-prod', key)", "acme-reports-prod"),
        ("    s3.upload_fileobj(buf, 'acme-reports-prod', key)", "acme-reports-prod"),
        ("s3.copy_object(CopySource='acme-media-prod/avatars/42.png', Bucket=dst, Key=k)", "acme-media-prod"),
        (
            'out, err := svc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("acme-uploads-prod")})',
            "acme-uploads-prod",
        ),
        (
            'GetObjectRequest req = GetObjectRequest.builder().bucket("acme-media-prod").key(key).build();',
            "acme-media-prod",
        ),
        ('S3Object o = s3Client.getObject("acme-uploads-prod", key);', "acme-uploads-prod"),
        ('s3.putObject(new PutObjectRequest("acme-uploads-prod", key, file));', "acme-uploads-prod"),
    ],
)
def test_buckets_passed_to_sdk_calls(masker: Masker, text: str, value: str) -> None:
    trace = f'Traceback (most recent call last):\n  File "etl.py", line 12, in <module>\n{text}\n'
    assert _leaks(masker, trace, [value]) == 0
    assert _json_leaks(masker, {"code": trace}, [value]) == 0


def test_sdk_calls_with_variables_stay(masker: Masker) -> None:
    text = "s3.download_file(bucket, key, path)\ns3.upload_file(path, bucket, key)\nbucket(name)\n"
    assert masker.mask_text(text)[0] == text


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (f"Trusted accounts for deployment: {ACCOUNT2}\nTrusted accounts for lookup: (none)", [ACCOUNT2]),
        (
            '{"DBSnapshotAttributes": [{"AttributeName": "restore", "AttributeValues": '
            f'["{ACCOUNT2}", "{ACCOUNT3}"]}}]}}',
            [ACCOUNT2, ACCOUNT3],
        ),
        (
            '{"environmentVariables":[{"name":"ARTIFACT_BUCKET","type":"PLAINTEXT","value":"acme-orders-artifacts"},'
            f'{{"name":"AWS_ACCOUNT_ID","type":"PLAINTEXT","value":"{ACCOUNT}"}}]}}',
            ["acme-orders-artifacts", ACCOUNT],
        ),
        (
            '{"OptionSettings": [{"Namespace": "aws:elasticbeanstalk:application:environment", '
            '"OptionName": "DATA_BUCKET", "Value": "acme-orders-data"}]}',
            ["acme-orders-data"],
        ),
        (
            '{"Evaluations":[{"ComplianceResourceType":"AWS::S3::Bucket","ComplianceResourceId":"acme-data-lake-raw",'
            '"ComplianceType":"NON_COMPLIANT"}]}',
            ["acme-data-lake-raw"],
        ),
        (
            "botocore.errorfactory.DBSnapshotAlreadyExistsFault: An error occurred (DBSnapshotAlreadyExists) "
            "when "
            "calling the CreateDBSnapshot operation: Cannot create the snapshot because a snapshot with the "
            "identifier orders-prod-db-1-final-2024-05-01 already exists.",
            ["orders-prod-db-1-final-2024-05-01"],
        ),
        (
            "An error occurred (InvalidDBClusterStateFault) when calling the FailoverDBCluster operation: "
            "DbCluster orders-aurora-cluster is not currently in the available state.",
            ["orders-aurora-cluster"],
        ),
        ("SpotFleetRequestId: sfr-73fbd2ce-aa30-494c-8788-1cee4a1b2c3d", ["aa30-494c-8788-1cee4a1b2c3d"]),
        ('"FleetId": "fleet-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"', ["5e6f-7a8b-9c0d-1e2f3a4b5c6d"]),
        ("NAME          SIZE SERIAL\nnvme0n1        20G vol0f3e2d1c0b9a87654\n", ["vol0f3e2d1c0b9a87654"]),
        (
            "    service.beta.kubernetes.io/aws-load-balancer-access-log-s3-bucket-name: "
            "acme-alb-logs-prod\n",
            ["acme-alb-logs-prod"],
        ),
        ("Bucket name: acme-reports-prod\n", ["acme-reports-prod"]),
        ("S3 buckets acme-web-assets and others are public\n", ["acme-web-assets"]),
        (
            "✔ Service deployed to stack orders-service-prod (112s)\n\nfunctions:\n"
            "  getOrders: orders-service-prod-getOrders (1.2 MB)\n"
            "  createOrder: orders-service-prod-createOrder (1.2 MB)\n",
            ["orders-service-prod-getOrders", "orders-service-prod-createOrder"],
        ),
        (
            "Current stack outputs (4):\n    OUTPUT            VALUE\n"
            "    bucketName        orders-artifacts-4f2a9c1\n"
            "    tableName         orders-table-5c9a0e4\n    functionName      orders-handler-7e1b3d2\n",
            ["orders-artifacts-4f2a9c1", "orders-table-5c9a0e4", "orders-handler-7e1b3d2"],
        ),
    ],
)
def test_more_shapes_from_the_review(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0


def test_ecs_environment_pairs_in_text_output(masker: Masker) -> None:
    text = (
        "TASKDEFINITION\tarn:aws:ecs:us-east-1:483920175526:task-definition/orders:7\tEC2\torders\n"
        "ENVIRONMENT\tORDERS_BUCKET\tacme-orders-prod-artifacts\nENVIRONMENT\tS3_BUCKET\tacme-orders-prod-data\n"
        "ENVIRONMENT\tLOG_LEVEL\tinfo\n"
    )
    assert _leaks(masker, text, ["acme-orders-prod-artifacts", "acme-orders-prod-data"]) == 0
    assert "LOG_LEVEL\tinfo" in masker.mask_text(text)[0]


def test_lambda_environment_variables_in_text_output(masker: Masker) -> None:
    # (the CLI prints a map's values without their keys)
    text = (
        "arn:aws:lambda:us-east-1:483920175526:function:orders-prod-processor\torders-prod-processor\t"
        "index.handler\t512\tpython3.12\t30\nENVIRONMENT\n"
        "VARIABLES\tacme-orders-prod-artifacts\torders-prod-table\tinfo\t8080\ttrue\tus-east-1\n"
    )
    assert _leaks(masker, text, ["acme-orders-prod-artifacts", "orders-prod-table"]) == 0
    masked = masker.mask_text(text)[0]
    assert masked.endswith("\tinfo\t8080\ttrue\tus-east-1\n")
    assert "index.handler\t512\tpython3.12" in masked


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            '$ terraform state list\naws_s3_bucket.buckets["acme-orders-prod-artifacts"]\n'
            'aws_s3_bucket_versioning.this["acme-orders-prod-logs"]\naws_db_instance.dbs["orders-prod-db-1"]\n',
            ["acme-orders-prod-artifacts", "acme-orders-prod-logs", "orders-prod-db-1"],
        ),
        (
            '  # aws_s3_bucket_public_access_block.this["acme-orders-prod-logs"] will be created\n',
            ["acme-orders-prod-logs"],
        ),
        (
            'Outputs:\n\ns3_buckets = [\n  "acme-orders-prod-artifacts",\n  "acme-orders-prod-logs",\n]\n'
            'lambda_function_names = [\n  "orders-prod-processor",\n  "orders-prod-api",\n]\n',
            [
                "acme-orders-prod-artifacts",
                "acme-orders-prod-logs",
                "orders-prod-processor",
                "orders-prod-api",
            ],
        ),
    ],
)
def test_terraform_state_keys_and_output_lists(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0


def test_terraform_object_keys_stay(masker: Masker) -> None:
    text = 'aws_s3_object.pages["index-html"]\naws_s3_bucket_object.page["about-page"]\n'
    assert masker.mask_text(text)[0] == text


# ---- the hostile review of this round -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "- `i-0123456789abcdef0`: running",
        "**i-0123456789abcdef0**: stopped",
        "<b>i-0123456789abcdef0</b>: stopped",
        "*sg-0123456789abcdef0*: open",
        "`AKIAQ3EGT5XJ2LMN7RP4`: old key",
        "i-0123456789abcdef0: str = x",
    ],
)
def test_a_mark_right_after_an_identifier_stays_in_the_text(masker: Masker, text: str) -> None:
    # (the folded view leaves the mark out; the identifier's end maps to before it, not after it)
    masked, result = masker.mask_text(text)
    assert result.total == 1
    token = next(iter(result.tokens))
    assert masked == text.replace(result.tokens[token], token)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "make",
    [
        lambda n: " " * n + "a -> " * (n // 5),
        lambda n: "k =" + " " * n + "a -> " * (n // 5),
        lambda n: 'f("a", "b")\n' + "    OUTPUT  VALUE\n" * (n // 18),
        lambda n: "a,b\n" + "111111111111,1\n---\n" * (n // 19),
        lambda n: " a | b\n" + " 111111111111 | 1\n---+---\n" * (n // 26),
        lambda n: "111111111111,1\n" * (n // 15),
    ],
    ids=[
        "arrows-after-blanks",
        "arrows-after-a-key",
        "output-headers",
        "csv-rules",
        "psql-rules",
        "headerless-csv",
    ],
)
@pytest.mark.parametrize("mode", ["anchors", "words"])
def test_hostile_shapes_of_the_new_readings_stay_linear(make, mode: str) -> None:  # type: ignore[no-untyped-def]
    # (each took seconds to minutes at 100 KB before: quadratic)
    from aws_masker.config import MaskerConfig

    masker = Masker(MaskerConfig(token_secret="x"), _scanner(mode))
    text = make(100_000)
    masked, result = masker.mask_text(text)
    assert len(masked) >= len(text) - 13 * result.total


@pytest.mark.parametrize(
    "name",
    [
        "s3_cfn_already_exists",
        "cfn_already_exists",
        "iam_already_exists",
        "lambda_already_exists",
        "rds_with_identifier",
        "s3_sdk_call",
        "s3_sdk_copy_source",
        "s3_terraform_block_id",
        "s3_terraform_for_each_key",
        "rds_terraform_for_each_key",
        "s3_bucket_list",
        "ec2_fleet_uuid",
        "ebs_nvme_serial",
        # (older: built without words(), the fallback scanner skipped their lead words)
        "s3_sdk_bucket",
        "lambda_log_stream",
        # (older: their lead words have two words, "DynamoDB Table", and the fallback scanner skipped
        # the first)
        *(rule.name for rule in RULES if rule.name.startswith("terraform_message_")),
    ],
)
def test_the_new_rules_in_every_scanner_mode(name: str) -> None:
    rule_finds_its_samples_in_every_mode(name)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('\tBucket:               aws.String("acme-uploads-prod"),', "acme-uploads-prod"),
        ("s3.copy_object(CopySource       = 'acme-media-prod/avatars/42.png')", "acme-media-prod"),
        (
            'resource      "aws_s3_bucket_policy" "a" {\n  id = "acme-orders-artifacts"\n',
            "acme-orders-artifacts",
        ),
    ],
)
def test_aligned_sdk_and_terraform_shapes(masker: Masker, text: str, value: str) -> None:
    assert _leaks(masker, text, [value]) == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('      ~ bucket = "acme-orders-old-logs" -> "acme-orders-prod-logs"', "acme-orders-prod-logs"),
        ("    OUTPUT      VALUE\n    bucketName  acme-uploads-prod\n", "acme-uploads-prod"),
    ],
)
def test_a_view_on_the_first_line_of_a_json_string(masker: Masker, text: str, value: str) -> None:
    assert _json_leaks(masker, {"stdout": text}, [value]) == 0
    assert _json_leaks(masker, text, [value]) == 0


@pytest.mark.parametrize(
    "text",
    [
        "The RDS instance postgres-replica is lagging",
        "Failover of the RDS instance mysql-standby",
        "the database cluster-backup is full",
        "the S3 bucket server-access-logs and the bucket event-logs",
    ],
)
def test_names_made_of_nouns_are_names_in_prose(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert result.total >= 1
    assert not any(
        name in masked for name in ("postgres-replica", "mysql-standby", "cluster-backup", "event-logs")
    )


@pytest.mark.parametrize(
    "text",
    [
        f"Cost report,,\nLinkedAccount,Name,Cost\n{ACCOUNT},prod,12.5\n",
        f'"AWS cost report",,\n"LinkedAccount","Name","Cost"\n"{ACCOUNT}","prod","12.5"\n',
        f"Linked accounts, Q1\n-------------------\nLinkedAccount,Cost\n{ACCOUNT},12.5\n",
        " line_item_usage_account_id | cost\n----------------------------+------\n"
        f" {ACCOUNT}               | 1.0\n",
        "+---------------+------+\n| LinkedAccount | Cost |\n+---------------+------+\n"
        f"| {ACCOUNT}  | 12.5 |\n",
    ],
)
def test_csv_headers_under_titles_and_in_boxes(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT]) == 0


def test_twelve_digit_values_after_an_owner_are_not_a_map(masker: Masker) -> None:
    text = f'{{"OwnerId": "{ACCOUNT}", "SizeInBytes": "223456789012", "Used": "323456789012"}}'
    masked = masker.mask_text(text)[0]
    assert ACCOUNT not in masked
    assert '"SizeInBytes": "223456789012", "Used": "323456789012"' in masked


@pytest.mark.parametrize(
    "text",
    [
        f'ACCOUNTS = {{\n  "prod" => "{ACCOUNT}",\n  "ci" => "{ACCOUNT2}"\n}}\n',
        f'account_map = {{\n  prod = "{ACCOUNT}"\n  ci = "{ACCOUNT2}"\n}}\n',
        f'      + principals {{\n          + identifiers = [\n              + "{ACCOUNT}",\n'
        f'              + "{ACCOUNT2}",\n'
        '            ]\n          + type        = "AWS"\n        }\n',
        f'  condition {{\n    test     = "StringEquals"\n    values   = ["{ACCOUNT}", "{ACCOUNT2}"]\n'
        '    variable = "aws:SourceAccount"\n  }\n',
    ],
)
def test_more_account_maps_and_sorted_policy_blocks(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, [ACCOUNT, ACCOUNT2]) == 0


def test_calls_with_plain_word_names_stay(masker: Masker) -> None:
    text = 'print("bucket", "my-data-files")\nconfig.get("database", "orders-replica-2")\n'
    text += "Role with name admin already exists\n"
    masked, result = masker.mask_text(text)
    assert masked == text
    assert result.total == 0
