"""Detection gaps of issue 10, fifth round: an account ID inside a resource's name, joined by a hyphen
(the buckets AWS makes: aws-cloudtrail-logs-<account>-..., sagemaker-<region>-<account>, Athena's
query results; Trusted Advisor's metadata lists, where nothing else names them), and a CloudFront
distribution's ID after the word "distribution" in prose, Cost Explorer grouped by account, and
names in the Terraform AWS provider's messages. The realistic samples
are in tests/corpus/aws (tests/test_corpus.py); these are the variants, the false positives to avoid
and the JSON path. Failures report counts, never values.
"""

from __future__ import annotations

import json

import pytest
from gaps import json_leaks as _json_leaks
from gaps import leaks as _leaks

from aws_masker.body import mask_request
from aws_masker.engine import Masker

ACCOUNT = "483920175526"


@pytest.mark.parametrize(
    "name",
    [
        f"aws-cloudtrail-logs-{ACCOUNT}-3f2a1b9c",
        f"aws-athena-query-results-{ACCOUNT}-us-east-1",
        f"aws-athena-query-results-us-east-1-{ACCOUNT}",
        f"sagemaker-us-east-1-{ACCOUNT}",
        f"elasticbeanstalk-ap-southeast-2-{ACCOUNT}",
        f"aws-glue-assets-{ACCOUNT}-eu-central-1",
        f"config-bucket-{ACCOUNT}",
        f"{ACCOUNT}-terraform-state",
        f"Orders-Logs-{ACCOUNT}",
        f"orders.logs-{ACCOUNT}.backup",
        "aws-cloudtrail-logs-111122223333-3f2a1b9c",  # (reads as a time YYMMDDhhmmss: still an account)
    ],
)
@pytest.mark.parametrize(
    "template",
    ["bucket {} is public", "s3://{}/key", "arn:aws:s3:::{}", "{}", "'{}'", "Bucket: {}\n", "see `{}`."],
)
def test_an_account_in_a_name(masker: Masker, name: str, template: str) -> None:
    text = template.format(name)
    accounts = [ACCOUNT, "111122223333"]
    assert _leaks(masker, text, accounts) == 0
    assert _json_leaks(masker, {"metadata": ["us-east-1", name, "Yellow"], "note": text}, accounts) == 0


def test_the_account_is_echoed_where_it_stands_bare(masker: Masker) -> None:
    text = f"the trail writes to aws-cloudtrail-logs-{ACCOUNT}-c41f0e2a; is {ACCOUNT} the payer?"
    masked, result = masker.mask_text(text)
    assert ACCOUNT not in masked
    (token,) = {t for t, original in result.tokens.items() if original == ACCOUNT}
    assert masked.count(token) == 2


@pytest.mark.parametrize(
    "text",
    [
        "restore orders-db-snapshot-202411111030 first",  # a time, YYYYMMDDhhmm
        "request 3f8a2b1c-4d5e-4f70-8192-483920175526 failed",  # a UUID's last group
        "2024-11-11-483920175526",  # no name part with a letter
        f"logs-{ACCOUNT}1-x",  # thirteen digits
        f"logs-{ACCOUNT}x",  # glued to a letter
        f"logs_{ACCOUNT}",  # an underscore is not the hyphen names use
        f"order number {ACCOUNT}",  # no evidence at all
    ],
)
def test_twelve_digits_that_are_not_an_account_in_a_name(masker: Masker, text: str) -> None:
    assert masker.mask_text(text)[1].total == 0


@pytest.mark.parametrize(
    "text",
    [
        "distribution E2QWRUHAPOMQZL is slow",
        "Why does CloudFront distribution ID E1A2B3C4D5E6F7 return 403?",
        "Distribution: `E2QWRUHAPOMQZL`\n",
        "invalidate distribution='E2QWRUHAPOMQZL'",
        "the distribution (E2QWRUHAPOMQZL) and its twin",
        "distributions E2QWRUHAPOMQZL, E1A2B3C4D5E6F7 and E3ABCDEFGHIJ1K",
        "distribution `E2QWRUHAPOMQZL` and `E1A2B3C4D5E6F7`",
        "a distribution with ID E2QWRUHAPOMQZL",
        "the distribution ID is E2QWRUHAPOMQZL",
        "distribution:\nE2QWRUHAPOMQZL",
        "distribution: **E2QWRUHAPOMQZL**",
        "| distribution | E2QWRUHAPOMQZL |",
    ],
)
def test_a_cloudfront_distribution_named_in_prose(masker: Masker, text: str) -> None:
    ids = ["E2QWRUHAPOMQZL", "E1A2B3C4D5E6F7", "E3ABCDEFGHIJ1K"]
    assert _leaks(masker, text, ids) == 0
    assert _json_leaks(masker, {"question": text}, ids) == 0


@pytest.mark.parametrize(
    "text",
    ["the distribution EXAMPLEVALUEXY", "redistribution E2QWRUHAPOMQZL", "distribution E2QWRUHAPOMQZL1X"],
)
def test_distribution_words_that_are_not_an_id(masker: Masker, text: str) -> None:
    assert masker.mask_text(text)[1].total == 0


ACCOUNTS = [ACCOUNT, "210987654321"]
COST_BY_ACCOUNT = {
    "GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
    "ResultsByTime": [
        {
            "TimePeriod": {"Start": "2024-11-01", "End": "2024-12-01"},
            "Groups": [
                {"Keys": [ACCOUNTS[0]], "Metrics": {"UnblendedCost": {"Amount": "12.3", "Unit": "USD"}}},
                {
                    "Keys": [ACCOUNTS[1], "Amazon S3"],
                    "Metrics": {"UnblendedCost": {"Amount": "4", "Unit": "USD"}},
                },
            ],
        }
    ],
    "DimensionValueAttributes": [{"Value": ACCOUNTS[0], "Attributes": {"description": "payments-prod"}}],
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(COST_BY_ACCOUNT, indent=2),
        json.dumps(COST_BY_ACCOUNT),
        # --output text, and get-dimension-values
        "GROUPDEFINITIONS\tLINKED_ACCOUNT\tDIMENSION\nRESULTSBYTIME\tFalse\nGROUPS\nKEYS\t483920175526\n"
        "UNBLENDEDCOST\t12.3\tUSD\nGROUPS\nKEYS\t210987654321\nUNBLENDEDCOST\t4\tUSD\n",
        "$ aws ce get-dimension-values --dimension LINKED_ACCOUNT "
        "--time-period Start=2024-11-01,End=2024-12-01 --output text\n"
        "DIMENSIONVALUES\t483920175526\nATTRIBUTES\tdescription\tpayments-prod\nDIMENSIONVALUES\t210987654321\n",
        # --output table
        "|  Key  |  LINKED_ACCOUNT  |\n||  Keys  ||\n|||  483920175526  |||\n|||  210987654321  |||\n",
        # the output before the command that names the dimension; backticks, bold, brackets
        "483920175526,12.3\n210987654321,4.5\n\nfrom aws ce get-cost-and-usage --group-by "
        "Type=DIMENSION,Key=LINKED_ACCOUNT",
        "by LINKED_ACCOUNT: `483920175526` costs **210987654321** (483920175526)",
        "--filter Dimensions={Key=LINKED_ACCOUNT,Values=[483920175526,210987654321]}",
    ],
    ids=["json", "compact", "text", "dimension-values", "table", "command-after", "markdown", "shorthand"],
)
def test_cost_explorer_by_account(masker: Masker, text: str) -> None:
    assert _leaks(masker, text, ACCOUNTS) == 0


def test_cost_explorer_by_account_on_the_json_path(masker: Masker) -> None:
    assert _json_leaks(masker, COST_BY_ACCOUNT, ACCOUNTS) == 0


def test_cost_explorer_command_in_a_tool_use_and_its_output_in_the_tool_result(masker: Masker) -> None:
    """An agent's turn: the dimension is named only in the command it ran."""
    command = (
        "aws ce get-dimension-values --dimension LINKED_ACCOUNT --time-period Start=2025-10-01,End=2025-11-01"
    )
    output = json.dumps(
        {"DimensionValues": [{"Value": a, "Attributes": {"description": "x"}} for a in ACCOUNTS]}
    )
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "bash", "input": {"command": command}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": output}]},
        ],
    }
    masked = mask_request(json.dumps(body).encode(), masker)[0].decode()
    assert not any(a in masked for a in ACCOUNTS)


def test_a_text_at_the_address_of_an_earlier_one_is_read_for_itself(masker: Masker) -> None:
    """The note of whether a text names the dimension is not taken for a later text of the same
    length at the same address (CPython reuses a freed string's memory at once)."""

    def command(dimension: str, account: str) -> str:
        return (
            f"aws ce get-cost-and-usage --group-by Type=DIMENSION,Key={dimension}\n"
            f'{{"ResultsByTime": [{{"Groups": [{{"Keys": ["{account}"]}}]}}]}}\n' + "-" * 160
        )

    first = command("LINKED_SERVICE", "573920175521")
    masker.mask_text(first)
    del first
    assert ACCOUNT not in masker.mask_text(command("LINKED_ACCOUNT", ACCOUNT))[0]


@pytest.mark.parametrize(
    "text",
    [
        '{"Keys": ["483920175526"], "Metrics": {}}',  # no account dimension named
        "LINKED_ACCOUNT totals: order 483920175526x and 4839201755260",  # not twelve digits on their own
        "LINKED_ACCOUNT" + " " * 300 + "\ncost: 483920175526.50 USD",  # a decimal's integer part
    ],
)
def test_twelve_digits_that_are_not_a_linked_account(masker: Masker, text: str) -> None:
    assert masker.mask_text(text)[1].total == 0


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "Error: creating DynamoDB Table (orders-prod-sessions): ResourceInUseException: Table already "
            "exists: orders-prod-sessions",
            "orders-prod-sessions",
        ),
        (
            "│ Error: reading Lambda Function (orders-api-handler): couldn't find resource",
            "orders-api-handler",
        ),
        ("Error: creating IAM Role (orders-api-exec-role): EntityAlreadyExists", "orders-api-exec-role"),
        (
            "Error: creating Secrets Manager Secret (prod/orders/db): ResourceExistsException",
            "prod/orders/db",
        ),
        (
            "Error: creating CloudWatch Logs Log Group (/ecs/orders-api): ResourceAlreadyExists",
            "/ecs/orders-api",
        ),
        ("Error: waiting for ECS Service (orders-api-svc) to become stable", "orders-api-svc"),
        ("Error: creating ElastiCache Replication Group (orders-cache-prod): Quota", "orders-cache-prod"),
        ("error: creating iam role (`orders-role`): EntityAlreadyExists", "orders-role"),
        ("Error: creating IAM Instance Profile (orders-profile): x", "orders-profile"),
        ("Error: creating Cognito User Pool (orders-users): x", "orders-users"),
    ],
)
def test_names_in_terraform_provider_messages(masker: Masker, text: str, name: str) -> None:
    """Echoed: the same name later in the message, bare, is masked too."""
    assert _leaks(masker, text + f"\nwhy is {name} failing?", [name]) == 0
    assert _json_leaks(masker, {"stderr": text}, [name]) == 0


def test_a_plain_word_named_in_a_terraform_provider_message(masker: Masker) -> None:
    """The verb and the type are evidence enough for a word; it is not echoed (a common word)."""
    masked, result = masker.mask_text("Error: creating DynamoDB Table (orders): ResourceInUseException")
    assert "(orders)" not in masked and list(result.tokens.values()) == ["orders"]


@pytest.mark.parametrize(
    "text",
    [
        "the DynamoDB Table (default) is used",
        "each Lambda Function (2) here",
        "a Lambda Function (Node.js) handler in Node.js",  # no provider verb: not its message
    ],
)
def test_words_after_terraform_type_names_are_kept(masker: Masker, text: str) -> None:
    assert masker.mask_text(text)[1].total == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("distribution%20E2QWRUHAPOMQZL%20is%20slow", "E2QWRUHAPOMQZL"),
        (
            "Error%3A%20creating%20DynamoDB%20Table%20%28orders-prod-sessions%29%3A%20x",
            "orders-prod-sessions",
        ),
        ("q=in%2520account%2520483920175526", ACCOUNT),  # encoded twice
        ("Error:&#32;creating&#32;IAM&#32;Role&#32;&#40;orders-api-exec-role&#41;", "orders-api-exec-role"),
        ("Error:&Tab;creating&nbsp;DynamoDB&#32;Table&#32;&lpar;orders-x7&rpar;", "orders-x7"),
        ("account%09483920175526", ACCOUNT),
    ],
    ids=["percent", "percent-parens", "percent-twice", "html-references", "named-references", "tab"],
)
def test_prose_around_an_identifier_written_with_escapes(masker: Masker, text: str, value: str) -> None:
    """The blanks and punctuation a rule reads as context are read through percent-encoding and HTML
    references too (textview.folded), as the identifier itself is."""
    assert _leaks(masker, text, [value]) == 0
