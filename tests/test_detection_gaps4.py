"""Detection gaps of issue 10, fourth round (real output of tools beyond the AWS CLI): CSV exports
whose account IDs get their key from the header line (Cost Explorer, Cost and Usage Reports), the
Key/Description/Value blocks of `sam deploy`, `serverless info`'s functions, names under keys that end
in what they are (ECS_SERVICE, RDS_INSTANCE, DB_INSTANCE_IDENTIFIER, Pulumi's dbIdentifier, also a
column apart) and echoed, Redshift clusters, EventBridge rules, Elastic Beanstalk environments. The
realistic samples are in tests/corpus/aws (tests/test_corpus.py); these are the variants, the false
positives to avoid and the JSON path. Failures report counts, never values.
"""

from __future__ import annotations

import json

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks

from aws_masker import csvview
from aws_masker.engine import Masker

ACCOUNTS = ["483920175526", "210987654321"]

COST_EXPORT = (
    "LinkedAccount,LinkedAccountName,Service,UnblendedCost\n"
    "483920175526,payments-prod,Amazon EC2,1234.56\n"
    "210987654321,staging,Amazon S3,12.02\n"
)


@pytest.mark.parametrize(
    "text",
    [
        COST_EXPORT,
        COST_EXPORT.replace("\n", "\r\n"),
        '"Account ID","Name","Cost"\n"483920175526","payments, prod","1.5"\n"210987654321","x","2"\n',
        "bill/PayerAccountId,lineItem/UsageAccountId,lineItem/UnblendedCost\n"
        "483920175526,210987654321,0.1\n483920175526,210987654321,0.2\n",
        "Service,UsageAccountId\nAmazonEC2,483920175526\nAmazonS3,210987654321",  # (last, no newline)
        "Costs by account:\n\n" + COST_EXPORT + "\nWhy did staging double?",
        # a line above the header that happens to hold as many commas (JSON) is not the header
        '{"Items": [{"a": 1}, {"b": 2}]}\nLinkedAccount,Cost\n483920175526,3.1\n210987654321,2\n',
        # tab- and semicolon-separated, and a Markdown table (as Claude writes one, sent back next turn)
        COST_EXPORT.replace(",", "\t"),
        "LinkedAccount;Cost\n483920175526;3,1\n210987654321;2,0\n",
        "| Account | Name | Cost |\n|---|:---|---:|\n"
        "| 483920175526 | payments | 3.1 |\n| 210987654321 | x | 2 |\n",
    ],
    ids=[
        "cost-explorer",
        "crlf",
        "quoted",
        "cur",
        "last-column",
        "in-prose",
        "json-line-above",
        "tsv",
        "semicolons",
        "markdown",
    ],
)
def test_account_ids_in_a_csv_column_named_for_accounts(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, ACCOUNTS) == 0
    assert _json_leaks(masker, {"csv": text}, ACCOUNTS) == 0


@pytest.mark.parametrize(
    "text",
    [
        "OrderId,Amount\n483920175526,12.00\n210987654321,3.50\n",
        # a header that names accounts, but the numbers stand in another column
        "LinkedAccountName,InvoiceNumber\npayments,483920175526\nstaging,210987654321\n",
        # no header line: the block's first line holds data
        "483920175526,payments,12.00\n210987654321,staging,3.50\n",
        # the numbers are not whole cells
        "Account,Note\nx,order 483920175526 shipped\n",
        "| Order | Amount |\n|---|---|\n| 483920175526 | 12.00 |\n",
    ],
    ids=["other-column", "name-column-beside", "no-header", "not-a-cell", "markdown-other-column"],
)
def test_twelve_digit_numbers_in_other_csv_columns_are_kept(masker: Masker, text: str) -> None:
    masked, _ = masker.mask_text(text)
    assert masked == text


def test_column_name_reads_quotes_and_blocks() -> None:
    text = 'a,b\n1,2\n\nName,"Account, payer",Cost\nx,"483920175526",3\ny,"210987654321",4\n'
    at = text.index("483920175526")
    assert csvview.column_name(text, at, at + 12) == "Account, payer"
    at = text.index("210987654321")
    assert csvview.column_name(text, at, at + 12) == "Account, payer"  # (the block noted)
    at = text.index("2\n")
    assert csvview.column_name(text, at, at + 1) == "b"  # (the first block's own header)
    assert csvview.column_name(text, 0, 1) is None  # (a header cell)
    assert csvview.column_name("x,y\n1,2", 4, 5) == "x"


def test_a_later_block_of_a_new_text_at_the_same_address_is_not_read_from_the_note() -> None:
    """The note of the last block is the same text's: one with another header there is read anew."""
    first = "Account,X\n483920175526,1\n"
    at = first.index("4")
    assert csvview.column_name(first, at, at + 12) == "Account"
    second = "OrderId,X\n483920175526,1\n"
    assert csvview.column_name(second, at, at + 12) == "OrderId"


SAM = """Key                 OrdersTableName
Description         DynamoDB table
Value               orders-prod-OrdersTable-1XK7QZ0M3ABCD

Key                 SessionsServiceName
Description         ECS service
Value               orders-prod-sessions-svc
"""


@pytest.mark.parametrize(
    "text",
    [SAM, SAM.replace("\n", "\r\n"), SAM.replace("                 ", "\t")],
    ids=["spaces", "crlf", "tabs"],
)
def test_sam_deploy_outputs(masker: Masker, text: str) -> None:
    names = ["orders-prod-OrdersTable-1XK7QZ0M3ABCD", "orders-prod-sessions-svc"]
    assert _leaks(masker, text + "\nWhy is orders-prod-sessions-svc restarting?", names) == 0
    assert _json_leaks(masker, {"stdout": text}, names) == 0


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ECS_SERVICE=orders-api-prod", "orders-api-prod"),
        ("RDS_INSTANCE: orders-db-prod-1", "orders-db-prod-1"),
        ("DB_INSTANCE_IDENTIFIER=billing-db-prod", "billing-db-prod"),
        ("export ORDERS_STATE_MACHINE=orders-flow-prod", "orders-flow-prod"),
        ("orders-state-machine: orders-flow-prod", "orders-flow-prod"),
        ('{"OrdersStateMachineName": "orders-flow-prod"}', "orders-flow-prod"),
        ('{"ecsService": "orders-api-prod"}', "orders-api-prod"),
        ("ECR_REPOSITORY=acme/orders-api", "acme/orders-api"),
        ("    dbIdentifier  orders-db-4d5e6f", "orders-db-4d5e6f"),
        ("ORDERS_TABLE\torders-prod-table", "orders-prod-table"),
    ],
)
def test_names_under_keys_that_end_in_what_they_are(masker: Masker, text: str, name: str) -> None:
    # (and echoed: the name recurs in the question)
    assert _leaks(masker, f"{text}\nwhy does {name} fail?", [name]) == 0


@pytest.mark.parametrize(
    "text",
    [
        "LOGGING_SERVICE=datadog",
        "MAX_INSTANCE=5",
        "DB_INSTANCE=db.t3.micro",
        "ORDERS_TABLE orders",  # (one blank: prose, not a column)
        "the ORDERS_TABLE  grows",
    ],
)
def test_suffix_keys_keep_words_numbers_and_classes(masker: Masker, text: str) -> None:
    masked, _ = masker.mask_text(text)
    assert masked == text


def test_serverless_info_functions(masker: Masker) -> None:
    text = (
        "service: orders-api\nstage: prod\nfunctions:\n  listOrders: orders-api-prod-listOrders\r\n"
        "  nightly_report: orders-api-prod-nightly_report\nlayers:\n  None\n"
    )
    names = ["orders-api-prod-listOrders", "orders-api-prod-nightly_report"]
    assert _leaks(masker, text + "orders-api-prod-listOrders times out", names) == 0
    # serverless.yml's own functions: block holds handlers, not names
    config = "functions:\n  hello:\n    handler: handler.hello\n"
    assert masker.mask_text(config)[0] == config


RULES = {
    "Rules": [
        {
            "Name": "orders-nightly-export",
            "Arn": "arn:aws:events:us-east-1:483920175526:rule/orders-nightly-export",
            "EventBusName": "default",
        }
    ]
}


def test_eventbridge_rule_names_beside_their_arns(masker: Masker) -> None:
    names = ["orders-nightly-export"]
    assert _leaks(masker, json.dumps(RULES, indent=2), names) == 0
    assert _json_leaks(masker, RULES, names) == 0
    assert _leaks(masker, "aws events put-targets --rule orders-nightly-export --targets x", names) == 0


def test_redshift_and_beanstalk_names(masker: Masker) -> None:
    clusters = {"Clusters": [{"ClusterIdentifier": "analytics-dw-prod", "NodeType": "ra3.xlplus"}]}
    assert _json_leaks(masker, clusters, ["analytics-dw-prod"]) == 0
    assert (
        _leaks(
            masker, "aws redshift pause-cluster --cluster-identifier analytics-dw-prod", ["analytics-dw-prod"]
        )
        == 0
    )
    envs = {"Environments": [{"EnvironmentName": "orders-prod-env", "ApplicationName": "orders-app-2"}]}
    assert _json_leaks(masker, envs, ["orders-prod-env", "orders-app-2"]) == 0
    assert _leaks(masker, "Environment details for: orders-prod-env\n", ["orders-prod-env"]) == 0


LIST_BUCKETS = {
    "Buckets": [
        {"CreationDate": "2024-01-01T00:00:00+00:00", "Name": "acme-orders-archive-prod"},
        {"CreationDate": "2024-02-01T00:00:00+00:00", "Name": "acme-web-assets-prod"},
    ]
}


@pytest.mark.parametrize(
    "text",
    [
        "Buckets:\n- CreationDate: '2024-01-01T00:00:00+00:00'\n  Name: acme-orders-archive-prod\n"
        "- CreationDate: '2024-02-01T00:00:00+00:00'\n  Name: acme-web-assets-prod\nOwner:\n  ID: x\n",
        json.dumps(LIST_BUCKETS, indent=2),  # (the keys sorted: jq -S)
    ],
    ids=["yaml", "json-sorted"],
)
def test_list_buckets_with_sorted_keys(masker: Masker, text: str) -> None:
    names = ["acme-orders-archive-prod", "acme-web-assets-prod"]
    assert _leaks(masker, text, names) == 0
    assert _json_leaks(masker, LIST_BUCKETS, names) == 0


def test_a_fifo_queue_url_is_masked_with_its_suffix_and_echoed(masker: Masker) -> None:
    text = (
        "send to https://sqs.eu-west-1.amazonaws.com/483920175526/orders-prod-queue.fifo fails; "
        "the queue orders-prod-queue.fifo has a DLQ"
    )
    masked, _ = masker.mask_text(text)
    assert "orders-prod-queue" not in masked and ".fifo" not in masked


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('orders = boto3.resource("dynamodb").Table("orders-prod-table")', "orders-prod-table"),
        ("report = s3.Object('acme-reports-eu-prod', 'daily.json')", "acme-reports-eu-prod"),
        ('s3.BucketPolicy(bucket_name="acme-reports-eu-prod")', "acme-reports-eu-prod"),
        ("Requested resource not found: Table: orders-prod-table not found", "orders-prod-table"),
    ],
)
def test_boto3_resources_and_dynamodb_errors(masker: Masker, text: str, name: str) -> None:
    assert _leaks(masker, f"{text}\nis {name} in eu-west-1?", [name]) == 0


DYNAMODB_ITEMS = {
    "Items": [
        {
            "pk": {"S": "ORDER#1"},
            "bucket": {"S": "acme-orders-uploads-prod"},
            "accountId": {"S": "483920175526"},
            "owner_id": {"N": "210987654321"},
            "TableName": {"S": "orders-prod-table"},
        }
    ]
}


@pytest.mark.parametrize(
    "text", [json.dumps(DYNAMODB_ITEMS, indent=2), json.dumps(DYNAMODB_ITEMS)], ids=["pretty", "compact"]
)
def test_dynamodb_typed_values_under_their_keys(masker: Masker, text: str) -> None:
    """`aws dynamodb scan` output: each value is wrapped in its type ({"S": ...}); the key before the
    wrapper gives it context, pasted as on the JSON path."""
    values = ["acme-orders-uploads-prod", "483920175526", "210987654321", "orders-prod-table"]
    assert _leaks(masker, text, values) == 0
    assert _json_leaks(masker, DYNAMODB_ITEMS, values) == 0
    # (a typed value under no telling key stays)
    assert masker.mask_text('{"note": {"S": "483920175526"}}')[0] == '{"note": {"S": "483920175526"}}'


def test_a_typed_value_is_still_read_after_its_end(masker: Masker) -> None:
    """The wrapper moves only where the context before the value is read: what follows the value
    (a CloudTrail log file's name after its account) is read where the value ends."""
    text = '{"key": {"S": "483920175526_CloudTrail_us-east-1_20240501T0000Z_abc.json.gz"}}'
    assert _leaks(masker, text, ["483920175526"]) == 0


def test_a_logs_insights_log_column_whatever_the_group_is_called(masker: Masker) -> None:
    """An @log cell is <account>:<log group>; a group need not start with a slash."""
    text = "@timestamp,@message,@log\n2025-11-11 10:00:01.120,ERROR x,483920175526:my-app-logs\n"
    assert _leaks(masker, text, ["483920175526"]) == 0
