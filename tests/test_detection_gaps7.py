"""Detection gaps of issue 10, seventh round: tables and prose as a chat holds them. A Markdown table
(as Claude writes one and the next turn sends back) or a SQL client's table gives its cells the key
their column header names, as the AWS CLI's own tables do (mdtables.py, read by cliformats.py); names
listed in prose after "S3 buckets" or "RDS instances"; a name before its type in parentheses; an
Aurora cluster's reader and writer instances; IAM's "A policy called <name> already exists". Then the
false positives to avoid and the JSON path. Failures report counts, never values.
"""

from __future__ import annotations

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks
from gaps import rule_finds_its_samples_in_every_mode

from aws_masker.engine import Masker
from aws_masker.mdtables import cells, keys_of
from aws_masker.patterns import _PROSE_NAME_LEADS

ACCOUNT, ACCOUNT2 = "483920175526", "739204615583"
BUCKET, BUCKET2 = "acme-prod-invoices-eu1", "acme-stg-invoices-eu1"
DB, DB2 = "orders-prod-db-1", "orders-stg-db-1"


@pytest.mark.parametrize(
    ("header", "rule", "value"),
    [
        ("Bucket", "---", BUCKET),
        ("S3 Bucket", ":---", BUCKET),
        ("**Bucket name**", "---:", BUCKET),
        ("Account ID", ":---:", ACCOUNT),
        ("AWS Account", "---", ACCOUNT),
        ("`account_id`", "---", ACCOUNT),
        ("RDS Instance", "---", DB),
        ("DB Cluster", "---", DB),
    ],
)
def test_a_markdown_column_gives_its_cells_its_key(
    masker: Masker, header: str, rule: str, value: str
) -> None:
    text = (
        f"Here is the inventory:\n\n| Environment | {header} | Notes |\n| --- | {rule} | --- |\n"
        f"| prod | {value} | primary |\n| staging | `{value}` | **standby** |\n\nAnything else?"
    )
    assert _leaks(masker, text, [value]) == 0
    assert _json_leaks(masker, {"table": text}, [value]) == 0


def test_a_two_column_table_gives_each_value_its_rows_label(masker: Masker) -> None:
    text = (
        "| Field | Value |\n|---|---|\n"
        f"| **Account** | {ACCOUNT} |\n| Bucket | `{BUCKET}` |\n| RDS instance | {DB} |\n"
        "| Notes | web server for the checkout service |\n"
    )
    masked, _ = masker.mask_text(text)
    assert sum(v in masked for v in (ACCOUNT, BUCKET, DB)) == 0
    assert "| Notes | web server for the checkout service |" in masked


def test_a_table_in_a_messages_body_both_turns(masker: Masker) -> None:
    import json

    from aws_masker.body import mask_request

    table = (
        f"| Name | Account ID | Bucket |\n|------|-----------|--------|\n| prod | {ACCOUNT} | {BUCKET} |\n"
    )
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": table},
            {"role": "assistant", "content": [{"type": "text", "text": table}]},
        ],
    }
    out = mask_request(json.dumps(body).encode(), masker)[0].decode()
    assert ACCOUNT not in out and BUCKET not in out


def test_a_psql_table_needs_a_compound_column_name(masker: Masker) -> None:
    text = (
        "  bucket_name            | account_id   | account      | size\n"
        "------------------------+--------------+--------------+------\n"
        f" {BUCKET} | {ACCOUNT} | 400012345678 | 12\n"
        f" {BUCKET2} | {ACCOUNT2} | 400012345679 | 7\n(2 rows)\n"
    )
    masked, _ = masker.mask_text(text)
    assert sum(v in masked for v in (BUCKET, BUCKET2, ACCOUNT, ACCOUNT2)) == 0
    # (a column named "account" in a database's own table holds the database's numbers)
    assert "400012345678" in masked and "400012345679" in masked


@pytest.mark.parametrize(
    "text",
    [
        "| Account | Balance |\n|---|---|\n| Checking | 1,200.00 |\n| Savings | 5,000.00 |\n",
        "| Step | Owner | Status |\n|:---|:---|:---|\n"
        "| deploy | platform-team | done |\n| verify | qa-team-2 | open |\n",
        "| Name | Value |\n|---|---|\n| retries | 3 |\n| timeout-ms | 2500 |\n",
    ],
)
def test_tables_of_other_things_stay(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


def test_table_keys_are_the_codes_spellings() -> None:
    assert keys_of("**S3 Bucket**") == (("", "S3Bucket", False), ("", "s3_bucket", False))
    assert keys_of("Account:") == (("", "Account", False),)
    assert keys_of("account", compound=True) == ()
    assert keys_of("1,200.00") == ()
    text = "| a | b |\n|---|---|\n| x | `y` |\n"
    assert [text[a:b] for a, b, _ in cells(text)] == ["x", "y"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "make",
    [
        lambda n: "| a | b |\n" + "|---|---|\n" * (n // 10),
        lambda n: "| Bucket | x |\n|---|---|\n| acme-prod-logs-1 | y |\n\n" * (n // 50),
        lambda n: "S3 buckets " + "acme-a1, " * (n // 9),
        lambda n: "RDS instances " + "db-1 and " * (n // 9),
        lambda n: "x (S3) " * (n // 7),
        lambda n: ("account order 1 2 3 4 5 6 7 8 9 " * 20 + "483920175526\n") * (n // 660),
        lambda n: "accounts: " + "7" * 19 + " 1" * (n // 2),
    ],
    ids=["stacked-delimiter-rows", "many-small-tables", "bucket-list", "db-list", "types", "numbers", "runs"],
)
def test_hostile_tables_and_lists_stay_linear(masker: Masker, make) -> None:  # type: ignore[no-untyped-def]
    text = make(100_000)
    masked, result = masker.mask_text(text)
    assert len(masked) >= len(text) - 30 * result.total


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            f"We moved S3 buckets {BUCKET}, {BUCKET2}, and acme-cur-2024 to the new account.",
            [BUCKET, BUCKET2],
        ),
        (f"the buckets `{BUCKET}` or '{BUCKET2}'", [BUCKET, BUCKET2]),
        (f"Failover hit RDS instances {DB} and {DB2} at 02:10.", [DB, DB2]),
        (f"the Aurora clusters ledger-aurora & ledger-aurora-2, and databases {DB}, {DB2}", [DB, DB2]),
        (f"then I restarted rds {DB} and it came back", [DB]),
        (f"our aurora {DB} is at 90% CPU", [DB]),
        (f"Primary: {DB} (RDS), assets in {BUCKET} (S3).", [DB, BUCKET]),
        (f"- {BUCKET} (Amazon S3 bucket)\n- {DB} (Aurora PostgreSQL)", [BUCKET, DB]),
        (f"Reader instance: {DB}\nWriter instance: {DB2}", [DB, DB2]),
        (
            "EntityAlreadyExists: A policy called OrdersReadOnlyAccess already exists.",
            ["OrdersReadOnlyAccess"],
        ),
    ],
)
def test_names_in_prose(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"note": text}, values) == 0


@pytest.mark.parametrize(
    "text",
    [
        "The buckets are read-only and write-only by design.",
        "S3 buckets logs and backups are in the same region.",
        "Our databases postgres and mysql run on EC2; RDS instances and clusters are next year.",
        "the read-only (S3) policy, multi-az (RDS) and postgres (RDS)",
    ],
)
def test_prose_without_names_stays(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    "name",
    [
        "s3_prose_list",
        "rds_prose_list",
        "s3_name_before_type",
        "rds_name_before_type",
        "rds_prose",
        "iam_already_exists",
        "s3_artifact_store",
        *(f"{lead[0]}_prose" for lead in _PROSE_NAME_LEADS),
        *(f"{lead[0]}_prose_word" for lead in _PROSE_NAME_LEADS if lead[3]),
    ],
)
def test_the_new_rules_in_every_scanner_mode(name: str) -> None:
    rule_finds_its_samples_in_every_mode(name)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (f"provider:\n  name: aws\n  deploymentBucket:\n    name: {BUCKET}\n", [BUCKET]),
        (f'{{"artifactStore": {{"type": "S3", "location": "{BUCKET}"}}}}', [BUCKET]),
        (f"ArtifactStore:\n  Type: S3\n  Location: {BUCKET}\n", [BUCKET]),
        ("curl https://x7kq2mz9ab.eu-west-1.awsapprunner.com/health", ["x7kq2mz9ab"]),
        ("dig a1b2c3d4e5f6a7b8.dualstack.awsglobalaccelerator.com", ["a1b2c3d4e5f6a7b8"]),
        # JSON in a CSV field (Athena's export of CloudTrail): its quotes doubled
        (
            'eventtime,requestparameters,useridentity\n2024-03-02T10:00:00Z,"{""bucketName"":""'
            + BUCKET
            + '""}","{""type"":""AssumedRole"",""accountId"":""'
            + ACCOUNT
            + '""}"\n',
            [BUCKET, ACCOUNT],
        ),
    ],
)
def test_config_hosts_and_csv_json(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"file": text}, values) == 0


@pytest.mark.parametrize(
    "text",
    [
        # code that passes a name it holds: kept, and not echoed through the file
        'import boto3, os\ntable_name = os.environ["TABLE_NAME"]\nddb.describe_table(TableName=table_name)\n'
        "print(table_name)\n",
        "resp = lambda_client.invoke(FunctionName=function_name, Payload=payload)\n",
        "const params = { TableName: tableName, Key: { pk } };\n",
        "cluster = KMeans(n_clusters=3).fit(X)\ncluster = boto3.client('ecs')\n",
        'input := s3.PutObjectInput{Key: aws.String("a/b.pdf")}\nTableName: aws.String(t),\n',
        "s3.put_object(Bucket=self.bucket, Key=k)\nclient.get_secret_value(SecretId=secret_name)\n",
        "{ TableName: this.tableName } { TableName: TABLE_NAME } process.env.TABLE_NAME\n",
        "const bucket = new aws.s3.BucketV2('invoices', {});\n",
        # an AWS CLI operation after "aws rds"; S3's and a database's terms of the trade
        "I ran `aws rds create-db-snapshot` and then aws rds describe-db-instances\n",
        "Use S3 intelligent-tiering or S3 standard-ia; enable the S3 bucket-key feature.\n",
        "the database is write-heavy and the DB cluster in-sync; S3 glacier-ir and S3 deep-archive\n",
        # a version under a key that ends in Version, YAML keys
        '"AgentVersion": "3.3.40.0",\n"Version": "4.2.10.1"\nBuild 3.3.40.0 shipped\n',
        "Table:\n  AttributeDefinitions:\n  - AttributeName: pk\n",
        "clusters:\n- cluster:\n    certificate-authority-data: LS0tLS1CRUdJTg==\n",
    ],
)
def test_code_cli_operations_and_terms_stay(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ('ddb.describe_table(TableName="orders_prod")\n', ["orders_prod"]),
        (f's3.put_object(Bucket="{BUCKET}", Key=k)\n', [BUCKET]),
        (f"aws rds describe-db-instances --db-instance-identifier {DB}\n", [DB]),
        (f"TableName: {DB}\nFunctionName: orders_handler\n", [DB, "orders_handler"]),
        (f'  - bucket = "{BUCKET}" -> null\n', [BUCKET]),
        ('"PublicIp": "54.12.33.201", "ip": "54.12.33.202"', ["54.12.33.201", "54.12.33.202"]),
    ],
)
def test_names_written_out_are_still_masked(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0


def test_a_destroyed_value_stays_null(masker: Masker) -> None:
    text = f'  - bucket     = "{BUCKET}" -> null\n  - identifier = "{DB}" -> null\n'
    masked, result = masker.mask_text(text)
    assert result.total == 2 and masked.count("-> null\n") == 2


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            "The ECS service checkout-api-svc in cluster payments-prod-ecs keeps restarting.",
            ["checkout-api-svc", "payments-prod-ecs"],
        ),
        (
            "Lambda function `orders_handler` times out; the function orders-handler-2 too.",
            ["orders_handler"],
        ),
        ("writes to DynamoDB table orders-prod-2 and SQS queue orders-dlq", ["orders-prod-2", "orders-dlq"]),
        (
            "Alerts go to SNS topic alerts-prod; EKS cluster prod-eks-1 is fine.",
            ["alerts-prod", "prod-eks-1"],
        ),
        ("stack orders-prod-stack is UPDATE_ROLLBACK_COMPLETE", ["orders-prod-stack"]),
        (
            "The secret prod/orders/db-creds rotated; log group orders-api-logs is empty.",
            ["prod/orders/db-creds"],
        ),
        ("IAM role orders-lambda-exec lacks kms:Decrypt; role ci-deployer-2 too", ["orders-lambda-exec"]),
        (
            "the state machine orders-flow-2 and Kinesis stream clicks-stream-1",
            ["orders-flow-2", "clicks-stream-1"],
        ),
    ],
)
def test_names_of_other_services_in_prose(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"note": text}, values) == 0


@pytest.mark.parametrize(
    "text",
    [
        "The function `parse_args` fails; function `main` returns 2; the service is healthy.",
        "The role `admin` and the service `nginx`; the cluster is on version 1.29; role-based access.",
        "aws ecs update-service --cluster x --service y; the stack trace; a queue of 3 items",
        "the Lambda function is write-heavy; the function returns v2; EKS cluster us-east-1",
    ],
)
def test_plain_words_of_code_and_prose_stay(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Cross-account access from 291857604433 to 483920175526 fails.", ["291857604433", "483920175526"]),
        ("The bucket is owned by 908172635540.", ["908172635540"]),
        (
            "These accounts should be in the Workloads OU: 291857604433, 483920175526 and 739204615583.",
            ["291857604433", "483920175526", "739204615583"],
        ),
        ("We assume a role in 483920175526 from our tooling account.", ["483920175526"]),
        (
            "image: 483920175526.dkr.ecr.eu-west-1.amazonaws.com/acme/checkout-api:v2.14.3",
            ["483920175526", "acme/checkout-api"],
        ),
        ("docker push 483920175526.dkr.ecr.eu-west-1.amazonaws.com/orders-api", ["orders-api"]),
    ],
)
def test_accounts_in_sentences_about_accounts_and_image_references(
    masker: Masker, text: str, values: list[str]
) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"note": text}, values) == 0


@pytest.mark.parametrize(
    "text",
    [
        "the account team called about invoice 123456789012 and order 223456789012",
        "account balance 4.83920175526e11; the account total 123456789012",
        "Call 123456789012 about your account's phone plan? No: tracking 323456789012.",
    ],
)
def test_other_numbers_in_sentences_about_accounts_stay(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            'input := &dynamodb.DescribeTableInput{TableName: aws.String("orders-prod-table")}',
            ["orders-prod-table"],
        ),
        (
            'svc.Invoke(&lambda.InvokeInput{FunctionName: aws.String( "orders-handler-2" )})',
            ["orders-handler-2"],
        ),
        ('DescribeTableRequest.builder().tableName("orders-prod-table").build();', ["orders-prod-table"]),
        ('InvokeRequest.builder().functionName("orders-handler-2").build();', ["orders-handler-2"]),
        ("const TABLE = process.env.TABLE_NAME || 'orders-prod-table';", ["orders-prod-table"]),
        ('const FN = process.env.FUNCTION_NAME ?? "orders-handler-2";', ["orders-handler-2"]),
    ],
)
def test_values_behind_code_wrappers(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"code": text}, values) == 0


def test_code_wrappers_of_plain_values_stay(masker: Masker) -> None:
    text = 'x := aws.String(name)\nlist.get("x"); m.put("k", "v"); const a = process.env.MODE || "dev";\n'
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            '{"UserName": "ci-deployer-2", "RoleName": "orders-lambda-exec"}',
            ["ci-deployer-2", "orders-lambda-exec"],
        ),
        ('"userIdentity": {"type": "IAMUser", "userName": "alice.smith"}', ["alice.smith"]),
        ("aws iam list-access-keys --user-name ci-deployer-2", ["ci-deployer-2"]),
        ("aws iam get-role --role-name orders-lambda-exec", ["orders-lambda-exec"]),
        ("NoSuchEntity: The role with name orders-lambda-exec cannot be found.", ["orders-lambda-exec"]),
        ("ResourceNotFoundException: No cluster found for name: prod-eks-1.", ["prod-eks-1"]),
        ("CacheClusterNotFound: CacheCluster not found: sessions-prod-1", ["sessions-prod-1"]),
        ("ClusterNotFound: Cluster orders-dw-1 not found.", ["orders-dw-1"]),
        # (a name shaped like a region is a name: only real regions are kept)
        ('{"FunctionName": "my-orders-1", "TableName": "ci-deployer-2"}', ["my-orders-1", "ci-deployer-2"]),
    ],
)
def test_iam_names_and_not_found_messages(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"out": text}, values) == 0


def test_plain_iam_names_and_regions_stay(masker: Masker) -> None:
    text = (
        '{"UserName": "root", "userName": "admin", "PolicyName": "AmazonS3ReadOnlyAccess", '
        '"TableName": "eu-west-1"}'
    )
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ('resource "aws_eks_cluster" "main" {\n  name     = "prod-eks-1"\n}\n', ["prod-eks-1"]),
        (
            'resource "aws_secretsmanager_secret" "db" {\n  name = "prod/orders/db-creds"\n}\n',
            ["prod/orders/db-creds"],
        ),
        ('resource "aws_lb_target_group" "api" {\n  name = "orders-api-tg"\n}\n', ["orders-api-tg"]),
        ("aws_eks_cluster.main: Creation complete after 9m2s [id=prod-eks-1]", ["prod-eks-1"]),
        ("terraform import aws_secretsmanager_secret.db prod/orders/db-creds", ["prod/orders/db-creds"]),
        (
            "Lock Info:\n  ID:        3f8a2b1c\n  Path:      acme-tfstate-prod/orders/terraform.tfstate\n",
            ["acme-tfstate-prod"],
        ),
    ],
)
def test_more_terraform_resources_and_the_state_lock(masker: Masker, text: str, values: list[str]) -> None:
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"out": text}, values) == 0


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            "https://eu-west-1.console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/orders-handler?tab=code",
            ["orders-handler"],
        ),
        (
            "https://eu-west-1.console.aws.amazon.com/dynamodbv2/home?region=eu-west-1#table?name=orders-prod-table",
            ["orders-prod-table"],
        ),
        (
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/payments-prod-ecs/services/checkout-api-svc/health",
            ["payments-prod-ecs", "checkout-api-svc"],
        ),
        (
            "https://eu-west-1.console.aws.amazon.com/secretsmanager/secret?name=prod%2Forders%2Fdb-creds&region=x",
            ["orders%2Fdb-creds"],
        ),
        (
            "https://us-east-1.console.aws.amazon.com/iam/home#/roles/details/orders-lambda-exec?section=permissions",
            ["orders-lambda-exec"],
        ),
        (
            "https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/483920175526/acme/orders-api?region=x",
            ["483920175526"],
        ),
    ],
)
def test_console_urls(masker: Masker, text: str, values: list[str]) -> None:
    # (a percent-encoded name is restored in its plain form, as any escaped identifier)
    masked, _ = masker.mask_text(text)
    assert sum(value in masked for value in values) == 0
    if "%" not in text:
        assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, {"url": text}, values) == 0


def test_services_in_other_urls_stay(masker: Masker) -> None:
    text = "https://example.com/services/api-svc and https://console.aws.amazon.com/lambda/home#/functions\n"
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)
