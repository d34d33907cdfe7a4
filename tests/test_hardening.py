"""Regression tests for defects found by an adversarial review of the engine and plugin."""

from __future__ import annotations

import json

import pytest

from aws_masker import restore as restore_mod
from aws_masker.body import mask_request, response_restorer, restore_body
from aws_masker.engine import Masker
from aws_masker.tokens import TOKEN_RE


def masked(masker: Masker, text: str) -> str:
    return masker.mask_text(text)[0]


def test_unicode_escapes_do_not_hide_identifiers(masker: Masker) -> None:
    inner = json.dumps({"r": "インスタンス：i-0abc1234def567890 «arn:aws:iam::123456789012:role/Admin»"})
    out, _ = mask_request(json.dumps({"messages": [{"role": "user", "content": inner}]}).encode(), masker)
    assert b"i-0abc1234def567890" not in out and b"arn:aws:iam" not in out
    for raw in (
        b'\xef\xbb\xbf{"messages":[{"role":"user","content":"host \\u0027i-0abc1234def567890\\u0027 at '
        b'\\u003c10.0.1.5\\u003e"}]}',
        b'{"messages":[{"role":"user","content":"\\ud83d host \\u0027i-0abc1234def567890\\u0027"}]}',
        b'{"broken": "\\u201c10.0.1.23\\u201d and \\u00a0i-0abc1234def567890",',
    ):
        out, _ = mask_request(raw, masker)
        assert b"i-0abc1234def567890" not in out and b"10.0.1.5" not in out and b"10.0.1.23" not in out


def test_bom_and_lone_surrogates_keep_json_masking(masker: Masker) -> None:
    out, _ = mask_request(b'\xef\xbb\xbf{"OwnerId": "123456789012"}', masker)
    assert TOKEN_RE.fullmatch(json.loads(out)["OwnerId"])  # parsed as JSON: the key context applied
    out, _ = mask_request(b'{"a": "\\ud83d", "OwnerId": "123456789012"}', masker)
    doc = json.loads(out)
    assert doc["a"] == "\ud83d" and TOKEN_RE.fullmatch(doc["OwnerId"])


def test_ipv4_mapped_ipv6_is_masked_whole(masker: Masker) -> None:
    assert masked(masker, "::ffff:10.0.1.23 connected").startswith("AWS_IPV6_")
    assert "0.1.23" not in masked(masker, "from ::ffff:54.1.2.3, port 80")


def test_slash_before_an_ip_only_means_version_for_user_agents(masker: Masker) -> None:
    for text in (
        "GET /api/v1/nodes/10.0.1.23/proxy",
        "host/10.0.0.5",
        "Server/10.0.0.5",
        "s3://logs-bucket/10.0.1.23/x",
    ):
        assert "10.0." not in masked(masker, text), text
    assert masked(masker, "Chrome/120.0.0.0 Safari/537.36") == "Chrome/120.0.0.0 Safari/537.36"
    text = "prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com/10.0.0.0/16"
    once = masked(masker, text)
    assert masked(masker, once) == once and "10.0.0.0" not in once


def test_secret_keys_without_an_equals_sign(masker: Masker) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEYabcde"
    assert secret not in masked(masker, f"aws configure set aws_secret_access_key {secret}")
    assert secret not in masked(masker, f"AKIAIOSFODNN7ABCDEFG:{secret}")
    assert "FQoGZXIvYXdzE" not in masked(masker, "token: FQoGZXIvYXdzE" + "k" * 80)


@pytest.mark.parametrize(
    "text",
    [
        '"Principal": {"AWS": "123456789012"}',
        '"Principal": {"AWS": ["210987654321", "123456789012"]}',
        '"aws:PrincipalAccount": "123456789012"',
        '"Accounts": ["210987654321", "123456789012"]',
        '"AccountIds": ["123456789012"]',
        'owner_id = "123456789012"',
        "account_number: 123456789012",
        "aws organizations describe-account --account-id 123456789012",
        "CDK_DEFAULT_ACCOUNT=123456789012",
        "AWS_ACCOUNT=123456789012",
        "|  OwnerId  |  123456789012  |",
        "RESERVATIONS\t123456789012\tr-0abc1234def567890",
        "2 123456789012 eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 443 49152 6 10 840 ACCEPT OK",
        "our account ID is 123456789012",
        "accounts 210987654321 and 123456789012",
        "account **123456789012**",
        "aws ec2 describe-images --owners self amazon 123456789012",
        "aws rds modify-db-snapshot-attribute --db-snapshot-identifier s --attribute-name restore "
        "--values-to-add 210987654321 123456789012",
        "cdk bootstrap aws://123456789012/us-east-1",
        "Accounts: 210987654321; 123456789012",
        "$ aws sts get-caller-identity --query Account --output text\n123456789012\n",
        "https://123456789012.signin.aws.amazon.com/console",
        "https://us-west-2.queue.amazonaws.com/123456789012/orders-queue",
    ],
)
def test_account_ids_with_evidence(text: str, masker: Masker) -> None:
    assert "123456789012" not in masked(masker, text)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("aws rds describe-db-instances --db-instance-identifier orders-db", "orders-db"),
        ("https://my-bucket.s3-accelerate.amazonaws.com/x", "my-bucket"),
        ("https://my-bucket.s3-accelerate.dualstack.amazonaws.com/x", "my-bucket"),
        ("?BucketName=logs-2024&x=1", "logs-2024"),
        ("ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com", "123456789012"),
        ("ssh ip-100-64-0-1 now", "100-64-0-1"),
        ("_i-0abc1234def567890_", "i-0abc1234def567890"),
        ("i-0abc1234def567890_stdout", "i-0abc1234def567890"),
        ("instance_i-0abc1234def567890", "i-0abc1234def567890"),
        ("web-i-0abc1234def567890", "i-0abc1234def567890"),
    ],
)
def test_recall_gaps(text: str, leak: str, masker: Masker) -> None:
    assert leak not in masked(masker, text)


@pytest.mark.parametrize(
    "text",
    ["S3 my-bucket.db-ABCDEFGHIJKLMNOPQRSTUVWXY2", "RDS prod-db.sg-12345678", "s3://b-1.sg-12345678/x"],
)
def test_idempotent_next_to_another_identifier(text: str, masker: Masker) -> None:
    once = masked(masker, text)
    assert masked(masker, once) == once


def _sse(deltas: list[str], extra_events: int = 0) -> bytes:
    events = [{"type": "ping"}] * extra_events
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
        for d in deltas
    ]
    events.append({"type": "content_block_stop", "index": 0})
    return b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n".encode() for e in events
    )


def test_sse_escapes_each_original_once(masker: Masker, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = restore_mod.json_escape
    monkeypatch.setattr("aws_masker.restore.json_escape", lambda o: calls.append(1) or real(o))
    _, result = masker.mask_text(" ".join(f"i-{n:017x}" for n in range(2000)))
    r = response_restorer(result.tokens, content_type="text/event-stream")
    assert len(calls) == 2000
    r.feed(_sse(["hello"], extra_events=50))
    r.finish()
    assert len(calls) == 2000


def test_sse_lines_split_only_on_cr_and_lf(masker: Masker) -> None:
    text, result = masker.mask_text("a i-0abc1234def567890\u2028b")
    token = TOKEN_RE.search(text).group()
    cut = text.index(token) + 6
    body = restore_body(_sse([text[:cut], text[cut:]]), result.tokens, "text/event-stream")
    deltas = [
        json.loads(b.split("data: ", 1)[1])["delta"]["text"]
        for b in body.decode().split("\n\n")
        if '"text_delta"' in b
    ]
    assert "".join(deltas) == "a i-0abc1234def567890\u2028b"
    assert len(deltas) == 2


def test_exempt_shapes_only_where_the_api_puts_them(masker: Masker) -> None:
    real_token = TOKEN_RE.search(masked(masker, "i-0abc1234def567890")).group()
    req = {
        "model": "m",
        "system": "look at i-0abc1234def567890",
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t",
                        "name": "x",
                        "input": {
                            "blob": {"type": "base64", "data": "host 10.0.1.5"},
                            "x": {"type": "thinking", "signature": "10.0.1.6"},
                        },
                    },
                    {"type": "thinking", "thinking": "t", "signature": f"sig-{real_token}"},
                ],
            }
        ],
    }
    out, result = mask_request(json.dumps(req).encode(), masker)
    assert b"10.0.1.5" not in out and b"10.0.1.6" not in out
    doc = json.loads(out)
    assert doc["messages"][0]["content"][1]["signature"] == f"sig-{real_token}"  # real signatures untouched
    # the token already present in the signature is reserved: the identifier gets another one
    issued = TOKEN_RE.search(doc["system"]).group()
    assert issued != real_token and result.tokens[issued] == "i-0abc1234def567890"


def test_list_buckets_output_is_masked_as_text_and_as_json(masker: Masker) -> None:
    doc = {
        "Buckets": [
            {"Name": "acme-prod-data", "CreationDate": "2024-01-01T00:00:00Z"},
            {"Name": "logs-archive-eu", "CreationDate": "2024-02-01T00:00:00Z", "BucketRegion": "eu-west-1"},
        ],
        "Owner": {"DisplayName": "ops", "ID": "0123abcd"},
    }
    text = json.dumps(doc, indent=4)
    assert "acme-prod-data" not in masked(masker, text) and "logs-archive-eu" not in masked(masker, text)
    out, _ = mask_request(json.dumps(doc).encode(), masker)
    assert b"acme-prod-data" not in out and b"logs-archive-eu" not in out
    assert json.loads(out)["Owner"] == doc["Owner"]
    state = '{"State": {"Code": 16, "Name": "running"}}'
    assert masked(masker, state) == state  # "Name" elsewhere is left alone


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["anchors", "words"])
def test_a_key_before_a_long_blank_run_stays_linear(mode: str) -> None:
    """Every key a rule starts with, then ":" or "=", then 20,000 blanks and no value. The old key
    pattern had two blank runs side by side; when the value failed, the regex engine tried every split
    between them: quadratic, about 10 s per key at this length, so this test hung (a 1 MB body of
    such lines would take hours). Linear, the whole 25 MB text takes well under a second."""
    from aws_masker.patterns import LEAD_WORDS, RULES
    from aws_masker.scanner import Scanner

    blank_runs = [
        f"x {word}{sep}{blank * 20_000}!"
        for word in sorted(LEAD_WORDS)
        for sep in (":", "=", '": [', " ")
        for blank in (" ", "\n")
    ]
    everything = frozenset(r.category for r in RULES) | {"rds", "private_ip", "s3"}
    assert Scanner(mode=mode).scan("\n".join(blank_runs), everything, frozenset()) == []


CANONICAL = "5c7e9a1b" * 8


@pytest.mark.parametrize(
    "body",
    [
        # a JSON string holding list-buckets text output (the key comes before the line)
        b'{"out": "BUCKETS\\t2021-03-14T09:12:55+00:00\\tacme-prod-data\\n"}',
        b'{"lines": ["BUCKETS\\t2021-03-14T09:12:55+00:00\\tacme-prod-data"]}',
        # NDJSON: not one JSON document, so masked as text with its escapes in place
        b'{"o":"BUCKETS\\t2021-03-14T09:12:55+00:00\\tacme-prod-data\\nOWNER\\tops\\t'
        + CANONICAL.encode()
        + b'\\n"}\n{"x":1}',
        b'{"o":"x\\n2023-02-01 08:00:00 acme-prod-data"}\n{"x":1}',
        # Python's repr of `aws s3 ls` lines
        b"['2023-01-15 10:30:45 acme-prod-data', '2023-01-16 10:30:45 acme-logs']",
        # S3's REST API (XML)
        b"<Owner><ID>" + CANONICAL.encode() + b"</ID><DisplayName>ops</DisplayName></Owner>",
    ],
)
def test_listings_inside_strings_and_escapes_are_masked(body: bytes, masker: Masker) -> None:
    """Leaks an adversarial review found in the list-buckets, `aws s3 ls` and canonical ID rules."""
    out, result = mask_request(body, masker)
    assert b"acme-prod-data" not in out and CANONICAL.encode() not in out
    assert result.total >= 1


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # an Owner whose table is not stretched: no blank between "ID" and its cell's "|"
        ("||  Owner  ||\n||  ID|  " + CANONICAL + "   ||\n", CANONICAL),
        # a stretched table: the cell carries many blanks
        ("||  DisplayName  |  ID  ||\n||  ops  |  " + CANONICAL + " " * 61 + "||\n", CANONICAL),
        # a one-bucket list-buckets table: key/value rows
        (
            "||  CreationDate  |  2021-03-14T09:12:55+00:00  ||\n||  Name   |  acme-prod-data   ||\n",
            "acme-prod-data",
        ),
        # text output with more fields before the date (directory buckets carry BucketArn)
        (
            "BUCKETS\tarn:aws:s3:::acme-prod-data\tus-east-1\t2021-03-14T09:12:55+00:00\tacme-prod-data\n",
            "acme-prod-data",
        ),
        # an access log line behind a prefix
        (
            "> " + CANONICAL + " acme-prod-data [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F33A59F07 "
            'REST.GET.OBJECT k "GET /acme-prod-data/k HTTP/1.1" 200\n',
            "acme-prod-data",
        ),
        # text output inside a JSON string, the display name with a \\u escape
        (json.dumps({"o": "OWNER\tJos\u00e9\t" + CANONICAL + "\n"}), CANONICAL),
    ],
)
def test_second_review_leaks(text: str, value: str, masker: Masker) -> None:
    assert value not in masked(masker, text)


def test_owner_ids_in_a_json_body_see_their_enclosing_key(masker: Masker) -> None:
    """A structured body masks each value with its key as context; "ID" alone is no evidence, so the
    enclosing key ("Owner", "Grantee") is part of the context."""
    doc = {
        "Owner": {"DisplayName": "ops", "ID": CANONICAL},
        "Grants": [{"Grantee": {"ID": CANONICAL[::-1], "Type": "CanonicalUser"}, "Permission": "READ"}],
        "Containers": [{"ID": "ab" * 32, "Image": "nginx"}],  # docker: not a canonical user
    }
    out, _ = mask_request(json.dumps(doc).encode(), masker)
    assert CANONICAL.encode() not in out and CANONICAL[::-1].encode() not in out
    assert json.loads(out)["Containers"] == doc["Containers"]


@pytest.mark.parametrize(
    "text",
    [
        "| Name | ID |\n|---|---|\n| image | " + "ab" * 32 + " |",  # a markdown table
        "Owner: alice\nCommit ID: " + "ab" * 32,
        "<DisplayName>Build</DisplayName><ID>" + "ab" * 32 + "</ID>",
        "2024-01-15 10:30:45 550e8400-e29b-41d4-a716-446655440000\n2024-01-15 10:30:46 12ms\n",
    ],
)
def test_second_review_false_positives(text: str, masker: Masker) -> None:
    assert masked(masker, text) == text


SECRET = "Zq8vR2mK7pL4xN9cT1bW6yH3jF5dS0gA+e/uVk2Q"
ENCODED_TOKEN = "IQoJb3JpZ2luX2VjEJr" + "%2F" * 10 + "wEaCXVzLWVhc3QtMSJH" + "Ab1" * 60 + "%3D%3D"


# A third review: presigned URLs, secret-key names, China RDS endpoints, CloudTrail's RDS keys,
# an upper-case S3 scheme, Spot request IDs, a bare BUCKET key.
THIRD_REVIEW = [
    # a presigned URL made with temporary credentials: the session token is URL-encoded
    (
        "https://acme-prod-data.s3.us-west-2.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Security-Token=" + ENCODED_TOKEN + "&X-Amz-Signature=ab12",
        "Ab1" * 60,
    ),
    ("x-amz-security-token=" + ENCODED_TOKEN.replace("IQoJ", "FQoD"), "Ab1" * 60),
    # secret keys under the names GitHub Actions, `aws configure`'s prompt, the console's CSV and
    # Hadoop give them
    ("      aws-secret-access-key: " + SECRET + "\n", SECRET),
    (
        "AWS Access Key ID [None]: AKIAQ3EGT5XJ2LMN7RPX\nAWS Secret Access Key [None]: " + SECRET + "\n",
        SECRET,
    ),
    ("Secret access key: " + SECRET, SECRET),
    ("const creds = {accessKeyId: 'AKIAQ3EGT5XJ2LMN7RPX', secretKey: '" + SECRET + "'}", SECRET),
    ("spark.hadoop.fs.s3a.secret.key=" + SECRET, SECRET),
    # RDS endpoints in the China regions put "rds" before the region
    ("jdbc:mysql://orders-db.c9akciq32xyz.rds.cn-north-1.amazonaws.com.cn:3306/app", "c9akciq32xyz"),
    # CloudTrail's requestParameters spell RDS keys with a lower-case first letter
    (
        '{"requestParameters": {"dBInstanceIdentifier": "billing-db", "dBInstanceClass": "db.t3.micro"}}',
        "billing-db",
    ),
    ('{"requestParameters": {"dBClusterIdentifier": "aurora-x"}}', "aurora-x"),
    ('{"requestParameters": {"dBSnapshotIdentifier": "billing-pre-upgrade"}}', "billing-pre-upgrade"),
    # an s3:// URI whose scheme alone is in upper case
    ("Copy it to S3://acme-uploads/2024/ first", "acme-uploads"),
    # Spot Instance request IDs are not hex
    ('"SpotInstanceRequestId": "sir-86k84j6p"', "sir-86k84j6p"),
    # a Lambda function's environment variable named just BUCKET
    ('{"Environment": {"Variables": {"BUCKET": "acme-uploads"}}}', "acme-uploads"),
]


# A fourth: a value with blanks inside its quotes; a bucket given as an object holding its name (S3
# event notifications, EventBridge); S3 console URLs.
FOURTH_REVIEW = [
    ('{"AccountId": " 483920175526"}', "483920175526"),
    ('{"OwnerId": "\\t483920175526"}', "483920175526"),
    ('{"Bucket": " acme-prod-data-7731"}', "acme-prod-data-7731"),
    ('{"DBInstanceIdentifier": "\\tprod-orders-db-01"}', "prod-orders-db-01"),
    ('{"detail": {"bucket": {"name": "invoices"}, "object": {"key": "a.pdf"}}}', "invoices"),
    ('{"s3": {"bucket": {"name": "ledger-exports", "ownerIdentity": {}}}}', "ledger-exports"),
    ("detail:\n  bucket:\n    name: invoices\n", "invoices"),
    ("https://us-east-1.console.aws.amazon.com/s3/buckets/invoices?region=us-east-1&tab=objects", "invoices"),
    ("see https://s3.console.aws.amazon.com/s3/object/acme-data?prefix=x/y.txt", "acme-data"),
    ("https://console.amazonaws-us-gov.com/s3/buckets/gov-archive/", "gov-archive"),
]


# A fifth: CDK bootstrap resources named after the account; account IDs written as JSON/YAML numbers
# with a sign or an exponent in pasted text; other names of a secret key (S3-compatible env vars,
# Hadoop XML properties, `serverless config credentials --secret`); "acct" as account evidence; S3
# PrivateLink endpoint hosts and the bucket after a path-style one; Organizations IDs.
FIFTH_REVIEW = [
    ("upload to cdk-hnb659fds-assets-483920175526-us-east-1 failed", "483920175526"),
    ("Assuming cdk-hnb659fds-deploy-role-483920175526-us-east-1 failed", "483920175526"),
    ("role/cdk-hnb659fds-cfn-exec-role-483920175526-eu-west-1 is missing", "483920175526"),
    ('{"RoleName": "cdk-hnb659fds-lookup-role-483920175526-us-west-2"}', "483920175526"),
    ('{"Role": "cdk-a1b2c3d4e5-file-publishing-role-483920175526-us-east-1"}', "483920175526"),
    ('{"Role": "cdk-hnb659fds-image-publishing-role-483920175526-us-east-1"}', "483920175526"),
    ('{"repositoryName": "cdk-hnb659fds-container-assets-483920175526-us-east-1"}', "483920175526"),
    ("cdk-hnb659fds-assets-483920175526-us-east-1", "483920175526"),
    ('{"AccountId": -483920175526}', "483920175526"),
    ('{"OwnerId": 4.83920175526e11}', "83920175526"),
    ("OwnerId: 4.83920175526e+11\n", "83920175526"),
    ("Account: -483920175526\n", "483920175526"),
    ("S3_SECRET_ACCESS_KEY=" + SECRET, SECRET),
    ("export AWS_SECRET=" + SECRET, SECRET),
    ("AWS_SECRET_KEY_ID=" + SECRET, SECRET),
    ("<property>\n  <name>fs.s3a.secret.key</name>\n  <value>" + SECRET + "</value>\n</property>", SECRET),
    ("<name>fs.s3a.access.key</name>\n  <value>AKIAQ3EGT5XJ2LMN7RPX</value>", "AKIAQ3EGT5XJ2LMN7RPX"),
    ("serverless config credentials --provider aws --key AKIAQ3EGT5XJ2LMN7RPX --secret " + SECRET, SECRET),
    ("billed to acct 483920175526 last month", "483920175526"),
    ("Acct ID: 483920175526", "483920175526"),
    ("acct#483920175526", "483920175526"),
    ('{"acct_id": "483920175526"}', "483920175526"),
    ("--endpoint-url https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com", "vpce-1a2b3c4d"),
    ("https://bucket.vpce-0123abcd-abcd1234.s3.us-east-1.vpce.amazonaws.com/acme-data/key", "acme-data"),
    ("https://acme-data.bucket.vpce-0123abcd-abcd1234.s3.us-east-1.vpce.amazonaws.com/key", "acme-data"),
    # AWS Organizations: organization, OU and root IDs
    ('{"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}}', "a1b2c3d4e5"),
    ('{"Organization": {"Id": "o-p33tczvkx8", "FeatureSet": "ALL"}}', "p33tczvkx8"),
    ("aws organizations move-account --destination-parent-id ou-ab12-cd34ef56", "cd34ef56"),
    ('{"Roots": [{"Id": "r-ab12", "Arn": "x", "Name": "Root"}]}', "r-ab12"),
    ("Parents:\n- Id: r-ab12\n  Type: ROOT\n", "r-ab12"),
    ("aws organizations list-children --parent-id r-ab12 --child-type ACCOUNT", "r-ab12"),
]

# A sixth: an account ID after its key with only blanks between (log lines, transcripts); an
# Organizations root ID after the word "root", and wherever else it stands once found by its context
# (its key, or the root ARN it ends).
SIXTH_REVIEW = [
    ("OwnerId 483920175526 requested the snapshot", "483920175526"),
    ("level=info AccountId\t483920175526 region=us-east-1", "483920175526"),
    ("owner_id  483920175526", "483920175526"),
    ("attach the SCP to the root r-ab12 first", "r-ab12"),
    ("Root ID: r-ab12", "r-ab12"),
    ('attach the SCP to r-ab12:\n{"Roots": [{"Id": "r-ab12", "Arn": "x"}]}', "r-ab12"),
    ("arn:aws:organizations::483920175526:root/o-a1b2c3d4e5/r-ab12 is r-ab12 in the console", "r-ab12"),
    ('{"ParentId": "r-ab12", "Note": "moved out of r-ab12"}', "r-ab12"),
]


# A seventh: values printed by `aws ... --query` (no key at all); RDS names in the API's and Terraform's
# messages, log group names, console URLs, filters, Secrets Manager's RDS secrets, Enhanced Monitoring;
# S3's XML, boto3 reprs and errors, Terraform resource IDs, a name before the word "bucket"; account IDs
# in EC2's XML, AWS Organizations' account lists, multi-session console hosts, image locations; more
# names of a secret key.
SEVENTH_REVIEW = [
    (
        "$ aws organizations list-accounts --query 'Accounts[].[Id,Name]' --output text\n"
        "483920175526\tdev\n210987654321\tprod\n",
        "210987654321",
    ),
    (
        "$ aws s3api list-buckets --query 'Buckets[].Name' --output text\nacme-logs-7\tacme-billing-2\n",
        "acme-billing-2",
    ),
    (
        'aws rds describe-db-instances --query "DBInstances[].DBInstanceIdentifier"\n[\n  "orders-db-1"\n]\n',
        "orders-db-1",
    ),
    ("An error occurred (DBInstanceNotFound) when calling the DescribeDBInstances operation: "
     "DBInstance orders-db-1 not found.", "orders-db-1"),
    ("DBCluster orders-cluster not found.", "orders-cluster"),
    ("Error: creating RDS DB Instance (orders-db-1): DBInstanceAlreadyExists", "orders-db-1"),
    ("the DB instance identifier orders-db-1 is wrong", "orders-db-1"),
    ("the DB cluster named orders is slow", "orders"),
    ("Aurora cluster named ledger-2 failed over", "ledger-2"),
    ("/aws/rds/instance/orders-db-1/postgresql", "orders-db-1"),
    ("https://console.aws.amazon.com/rds/home?region=us-east-1#database:id=orders-db-1;is-cluster=false",
     "orders-db-1"),
    ("aws rds describe-db-instances --filters Name=db-instance-id,Values=orders-db-1", "orders-db-1"),
    ('{"engine": "postgres", "dbInstanceIdentifier": "orders-db-1", "port": 5432}', "orders-db-1"),
    ('{"dbClusterIdentifier": "orders-cluster"}', "orders-cluster"),
    ('{"engine": "POSTGRES", "instanceID": "orders-db-1", "instanceResourceID": "db-X"}', "orders-db-1"),
    ("DIMENSIONS\tDBInstanceIdentifier\torders-db-1", "orders-db-1"),
    ("aws_db_instance.main: Refreshing state... [id=orders-db-1]", "orders-db-1"),
    ("terraform import aws_rds_cluster.main orders-cluster", "orders-cluster"),
    ("<Error><Code>NoSuchBucket</Code><BucketName>acme-prod-logs</BucketName></Error>", "acme-prod-logs"),
    ("<Buckets><Bucket><Name>acme-prod-logs</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate>",
     "acme-prod-logs"),
    ("s3.Bucket(name='acme-prod-logs')", "acme-prod-logs"),
    ("S3UploadFailedError: Failed to upload /tmp/x.csv to acme-prod-logs/r/x.csv: An error occurred",
     "acme-prod-logs"),
    ("Error: creating S3 Bucket (acme-prod-logs): BucketAlreadyExists", "acme-prod-logs"),
    ("aws_s3_bucket.logs: Creation complete after 2s [id=acme-prod-logs]", "acme-prod-logs"),
    ("terraform import aws_s3_bucket.logs acme-prod-logs", "acme-prod-logs"),
    ('{"Location": "/acme-prod-logs"}', "acme-prod-logs"),
    ("upload to the acme-prod-logs bucket failed", "acme-prod-logs"),
    ("<reservationId>r-0a1b2c3d4e5f67890</reservationId><ownerId>483920175526</ownerId>", "483920175526"),
    ("<GetCallerIdentityResult><Account>483920175526</Account>", "483920175526"),
    ('{"Account": {"Id": "483920175526", "Name": "dev", "Status": "ACTIVE"}}', "483920175526"),
    ('{"Accounts": [{"Id": "483920175526", "Name": "dev"}, {"Id": "210987654321", "Name": "prod"}]}',
     "210987654321"),
    ("Accounts:\n- Id: '483920175526'\n  Name: dev\n- Id: '210987654321'\n  Name: prod\n", "210987654321"),
    ('{"Children": [{"Id": "483920175526", "Type": "ACCOUNT"}]}', "483920175526"),
    ("https://483920175526-abcd1234.us-east-1.console.aws.amazon.com/ec2/home", "483920175526"),
    ('{"ImageLocation": "483920175526/golden-ami", "ImageId": "ami-0a1b2c3d4e5f67890"}', "483920175526"),
    ("TF_VAR_aws_secret_access_key=" + SECRET, SECRET),
    ("cloud.aws.credentials.secret-key=" + SECRET, SECRET),
    ('awsSecretKey: "' + SECRET + '"', SECRET),
]


# An eighth: endpoint hostnames of more services (MSK, Redshift, DocumentDB, Neptune, Amazon MQ, IoT,
# DAX, AppSync, MemoryDB, OpenSearch Serverless, Cognito domains, Amplify); an EKS cluster's OIDC issuer
# ID; ECR registry IDs as account IDs; load balancer names in ALB/NLB/CLB access logs; buckets in
# CloudFormation stack events and resource lists; the IDs of KMS keys, CloudFront distributions, Route 53
# hosted zones, API Gateway APIs, ECS tasks and Cognito pools under their keys, flags and paths; and the
# names and IDs inside masked ARNs of those services, where they recur bare.
EIGHTH_REVIEW = [
    ("b-1.prod-msk.a1b2c3.c2.kafka.us-east-1.amazonaws.com:9092", "prod-msk.a1b2c3"),
    ("prod-dw.c1a2b3c4d5e6.us-east-1.redshift.amazonaws.com:5439/dev", "c1a2b3c4d5e6"),
    ("prod-wg.483920175526.us-east-1.redshift-serverless.amazonaws.com:5439", "483920175526"),
    ("mongodb://prod-docdb.cluster-c9akciq32xyz.us-east-1.docdb.amazonaws.com:27017", "c9akciq32xyz"),
    ("wss://prod-graph.cluster-c9akciq32xyz.us-east-1.neptune.amazonaws.com:8182/gremlin", "c9akciq32xyz"),
    ("amqps://b-1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d-1.mq.us-east-1.amazonaws.com:5671", "1a2b3c4d-5e6f"),
    ("a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com", "a1b2c3d4e5f6g7"),
    ("dax://prod-dax.ab12cd.dax-clusters.us-east-1.amazonaws.com", "ab12cd"),
    ("https://x7k2m9p4q1abcdefgh.appsync-api.us-east-1.amazonaws.com/graphql", "x7k2m9p4q1abcdefgh"),
    ("https://acme-prod.auth.us-east-1.amazoncognito.com/login", "acme-prod"),
    ("https://main.d1a2b3c4e5f6g7.amplifyapp.com", "d1a2b3c4e5f6g7"),
    ("https://a1b2c3d4e5f6g7h8i9j0.us-east-1.aoss.amazonaws.com", "a1b2c3d4e5f6g7h8i9j0"),
    ('{"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9"}',
     "0A1B2C3D4E5F60718293A4B5C6D7E8F9"),
    ('"oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9:aud": "sts.amazonaws.com"',
     "0A1B2C3D4E5F60718293A4B5C6D7E8F9"),
    ('{"repositoryUri": "x", "registryId": "483920175526"}', "483920175526"),
    ("aws ecr describe-images --registry-id 483920175526 --repository-name app", "483920175526"),
    ("https 2024-01-15T10:30:45.123456Z app/prod-web-alb/50dc6c495c0c9188 10.0.1.23:54321 10.0.2.45:80 0.001",
     "prod-web-alb"),
    ("tls 2.0 2024-01-15T10:30:45 net/prod-nlb/c6e77e28c25b2234 g3d4b5e8bb8464cd 72.21.218.154:51341",
     "prod-nlb"),
    ("2024-01-15T10:30:45.123456Z prod-classic-elb 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048",
     "prod-classic-elb"),
    ("CREATE_FAILED  AWS::S3::Bucket  LogsBucket  acme-prod-logs already exists", "acme-prod-logs"),
    ("prod | 2/5 | 10:30:45 AM | CREATE_FAILED | AWS::S3::Bucket | LogsBucket (LogsBucket9C4D8843) "
     "acme-prod-logs already exists", "acme-prod-logs"),
    ("LogsBucket  AWS::S3::Bucket  CREATE_FAILED  acme-prod-logs already exists", "acme-prod-logs"),
    ("STACKRESOURCES\tLogsBucket\tacme-prod-logs\tAWS::S3::Bucket\tCREATE_COMPLETE\n", "acme-prod-logs"),
    ("||  LogsBucket |  acme-prod-logs  |  AWS::S3::Bucket  |  CREATE_COMPLETE ||", "acme-prod-logs"),
    ('Resource handler returned message: "acme-prod-logs already exists (Service: S3, Status Code: 0)"',
     "acme-prod-logs"),
    ('{"KeyMetadata": {"KeyId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "Arn": "x"}}',
     "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
    ("aws kms decrypt --key-id 1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d --ciphertext-blob fileb://x",
     "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
    ("KmsKeyId: mrk-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "mrk-0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
    ("aws cloudfront create-invalidation --distribution-id E1A2B3C4D5E6F7 --paths '/*'", "E1A2B3C4D5E6F7"),
    ("aws cloudfront get-distribution-config --id E1A2B3C4D5E6F7", "E1A2B3C4D5E6F7"),
    ("s3://acme-cf-logs/cf/E1A2B3C4D5E6F7.2024-01-15-10.a1b2c3d4.gz", "E1A2B3C4D5E6F7"),
    ('{"Distribution": {"Id": "E1A2B3C4D5E6F7", "ARN": "arn:aws:cloudfront::483920175526:distribution/'
     'E1A2B3C4D5E6F7"}}', "E1A2B3C4D5E6F7"),
    ('{"HostedZone": {"Id": "/hostedzone/Z0123456789ABCDEFGHIJ", "Name": "example.com."}}',
     "Z0123456789ABCDEFGHIJ"),
    ("aws route53 list-resource-record-sets --hosted-zone-id Z0123456789ABCDEFGHIJ", "Z0123456789ABCDEFGHIJ"),
    ("aws apigateway get-stages --rest-api-id a1b2c3d4e5", "a1b2c3d4e5"),
    ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod", "a1b2c3d4e5"),
    ("aws logs tail /aws/apigateway/a1b2c3d4e5/prod", "a1b2c3d4e5"),
    ("aws ecs execute-command --cluster prod --task 0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d --interactive",
     "0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d"),
    ("Task 0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d stopped: arn:aws:ecs:us-east-1:483920175526:task/prod/"
     "0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d", "0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d"),
    ('{"UserPool": {"Id": "us-east-1_AbCdEfGhI", "Name": "prod-users"}}', "us-east-1_AbCdEfGhI"),
    ("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI/.well-known/jwks.json",
     "us-east-1_AbCdEfGhI"),
    ("IdentityPoolId: us-east-1:1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "1a2b3c4d-5e6f-4a1b"),
    ("LoadBalancerName: prod-web-alb\nLoadBalancerArn: arn:aws:elasticloadbalancing:us-east-1:483920175526:"
     "loadbalancer/app/prod-web-alb/50dc6c495c0c9188\n", "prod-web-alb"),
    ('{"cluster": {"name": "prod-eks-1", "arn": "arn:aws:eks:us-east-1:483920175526:cluster/prod-eks-1"}}',
     "prod-eks-1"),
]


NINTH_REVIEW = [
    # EMR, Transfer, Directory Service, CodeDeploy, Beanstalk, WorkSpaces, Service Catalog, Identity Center
    ("aws emr describe-cluster --cluster-id j-2AXXXXXXGAPLF", "j-2AXXXXXXGAPLF"),
    ('{"Cluster": {"Id": "j-2AXXXXXXGAPLF", "Name": "prod-etl"}}', "j-2AXXXXXXGAPLF"),
    ("aws emr describe-step --cluster-id j-2AXXXXXXGAPLF --step-id s-1A2B3C4D5E6F7", "s-1A2B3C4D5E6F7"),
    ("s3://aws-logs-x/elasticmapreduce/j-2AXXXXXXGAPLF/steps/s-1A2B3C4D5E6F7/stderr.gz", "j-2AXXXXXXGAPLF"),
    ("CLUSTERS\tj-2AXXXXXXGAPLF\tprod-etl\t3\n", "j-2AXXXXXXGAPLF"),
    ("aws transfer describe-server --server-id s-01234567890abcdef", "s-01234567890abcdef"),
    ('{"DirectoryId": "d-906716a2b1"}', "d-906716a2b1"),
    ("sso_start_url = https://d-906716a2b1.awsapps.com/start", "d-906716a2b1"),
    ("sso_start_url = https://acme-corp.awsapps.com/start", "acme-corp"),
    ("aws deploy get-deployment --deployment-id d-A1B2C3D4E", "d-A1B2C3D4E"),
    ("aws elasticbeanstalk describe-environments --environment-ids e-abcd1234ef", "e-abcd1234ef"),
    ("awseb-e-abcd1234ef-stack-AWSEBLoadBalancer-1A2B3C4D5E6F", "e-abcd1234ef"),
    ('{"WorkspaceId": "ws-f9abc1234"}', "ws-f9abc1234"),
    ('{"ProductId": "prod-4v6rc4hwaiiha"}', "prod-4v6rc4hwaiiha"),
    ("aws sso-admin list-permission-sets --instance-arn x/ssoins-72231234567890ab",
     "ssoins-72231234567890ab"),
    ('{"JobRunId": "jr_' + "0a1b2c3d" * 8 + '"}', "jr_" + "0a1b2c3d" * 8),
    # UUIDs and session IDs under their keys
    ('{"Command": {"CommandId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"}}',
     "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
    ("aws athena get-query-results --query-execution-id 1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
     "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
    ("Starting session with SessionId: alice-0a1b2c3d4e5f67890", "alice-0a1b2c3d4e5f67890"),
    # SSM parameter names
    ("aws ssm get-parameter --name /prod/db/password --with-decryption", "/prod/db/password"),
    ('{"Parameter": {"Name": "/prod/db/password", "Type": "SecureString", "Value": "x"}}',
     "/prod/db/password"),
    ('"secrets": [{"name": "DB_PASSWORD", "valueFrom": "/prod/db/password"}]', "/prod/db/password"),
    ("MasterUserPassword: '{{resolve:ssm-secure:/prod/db/password:1}}'", "/prod/db/password"),
    ("${ssm:/prod/db/password}", "/prod/db/password"),
    ("aws ssm get-parameters-by-path --path /prod/db/ --recursive", "/prod/db/"),
    ('{"ssm:account=483920175526:parameterName=/prod/db/host:region=us-east-1": "x"}', "/prod/db/host"),
    # resource names under their keys, flags and CloudWatch dimensions
    ("aws lambda invoke --function-name prod-order-handler out.json", "prod-order-handler"),
    ('{"FunctionName": "prod-order-handler"}', "prod-order-handler"),
    ("aws dynamodb scan --table-name prod-orders", "prod-orders"),
    ("aws sqs get-queue-url --queue-name prod-orders-queue", "prod-orders-queue"),
    ("aws cloudformation describe-stacks --stack-name prod-api-stack", "prod-api-stack"),
    ("aws ecs describe-services --cluster prod-ecs --services prod-api", "prod-api"),
    ('{"clusterName": "prod-ecs", "serviceName": "prod-api"}', "prod-ecs"),
    ("aws logs tail --log-group-name /ecs/prod-api", "/ecs/prod-api"),
    ('{"logConfiguration": {"options": {"awslogs-group": "/ecs/prod-api", "awslogs-region": "us-east-1"}}}',
     "prod-api"),
    ("aws logs get-log-events --log-group-name /aws/lambda/prod-order-handler", "prod-order-handler"),
    ("aws secretsmanager get-secret-value --secret-id prod/db/creds", "prod/db/creds"),
    ("aws eks update-kubeconfig --name prod-eks-1", "prod-eks-1"),
    ("aws ec2 run-instances --key-name prod-keypair", "prod-keypair"),
    ("aws ecr describe-images --repository-name prod-api", "prod-api"),
    ("aws kinesis describe-stream --stream-name prod-clicks", "prod-clicks"),
    ("aws batch submit-job --job-name nightly --job-queue prod-batch-queue --job-definition etl:3",
     "prod-batch-queue"),
    ('{"computeEnvironmentName": "prod-ce-spot"}', "prod-ce-spot"),
    ("aws glue start-job-run --job-name prod-etl-orders", "prod-etl-orders"),
    ("aws glue start-crawler --name prod-orders-crawler", "prod-orders-crawler"),
    ("aws codebuild start-build --project-name prod-build", "prod-build"),
    ('{"pipelineExecutionId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "pipelineName": "prod-pipeline"}',
     "prod-pipeline"),
    ('{"Dimensions": [{"Name": "FunctionName", "Value": "prod-order-handler"}]}', "prod-order-handler"),
    ('{"Dimensions": [{"Name": "QueueName", "Value": "prod-orders-queue"}]}', "prod-orders-queue"),
    ('{"Dimensions": [{"Name": "LoadBalancerName", "Value": "prod-classic"}]}', "prod-classic"),
    ('"metrics": [["AWS/Lambda", "Errors", "FunctionName", "prod-order-handler"]]', "prod-order-handler"),
    ('"metrics": [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", "prod-orders-db"]]',
     "prod-orders-db"),
    ("aws cloudwatch get-metric-statistics --dimensions Name=FunctionName,Value=prod-order-handler",
     "prod-order-handler"),
    ("DIMENSIONS\tTableName\tprod-orders\n", "prod-orders"),
    # Step Functions: an execution's name, echoed from its ARN
    ('{"executionArn": "arn:aws:states:us-east-1:483920175526:execution:prod-orders:run-abc-1", '
     '"name": "run-abc-1"}', "run-abc-1"),
    # Lambda log streams; plain Id keys of CloudFront and API Gateway
    ("2024/01/15/[$LATEST]0a1b2c3d4e5f67890a1b2c3d4e5f6789", "0a1b2c3d4e5f67890a1b2c3d4e5f6789"),
    ('{"Distribution": {"Id": "E1A2B3C4D5E6F7", "DomainName": "d111111abcdef8.cloudfront.net"}}',
     "E1A2B3C4D5E6F7"),
    ('{"items": [{"id": "a1b2c3d4e5", "name": "prod-api", "apiKeySource": "HEADER", '
     '"endpointConfiguration": {"types": ["REGIONAL"]}}]}', "a1b2c3d4e5"),
    # a secret key after "secret"
    ("key: AKIA3XFRBF535PLBIFPI secret: " + SECRET, SECRET),
]

@pytest.mark.parametrize(
    ("text", "value"),
    THIRD_REVIEW + FOURTH_REVIEW + FIFTH_REVIEW + SIXTH_REVIEW + SEVENTH_REVIEW + EIGHTH_REVIEW
    + NINTH_REVIEW,
)
def test_review_leaks(text: str, value: str, masker: Masker) -> None:
    """Each review's leak in text, in a tool's result, and (JSON) as a tool's structured input."""
    assert value not in masked(masker, text)
    use = {"type": "tool_use", "id": "t1", "name": "sh", "input": {"c": "x"}}
    body = {"messages": [
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": text}]},
    ]}  # fmt: skip
    out, _ = mask_request(json.dumps(body).encode(), masker)
    assert value not in out.decode()
    if text.startswith("{"):
        use["input"] = json.loads(text)
        out, _ = mask_request(json.dumps(body).encode(), masker)
        assert value not in out.decode()


@pytest.mark.parametrize(
    "text",
    [
        "https://rds.cn-north-1.amazonaws.com.cn/",  # the service endpoint itself
        "BUCKET=100",  # a token bucket's size
        "the Secret access key is shown only once",
        "a sir-lancelot costume",
        '"bucket": {"arn": "x", "name": "A"}',  # not a bucket name
        '{"Bucket": " "}',
        "https://console.aws.amazon.com/s3/home?region=us-east-1",
        "cdk-hnb659fds-assets-bucket",  # no account
        "npm i aws-cdk-lib@2.150.0 && cdk-assets 2.1.0",
        '"Timestamp": -1700000000000',
        '{"Offset": -483920175526}',  # a number under a key that names no account
        "ratio 4.83920175526e11 overall",
        '"OwnerId": 4.839201755265e11',  # not an integer
        "the acct team called",
        "acct 12345678901234",
        "SECRET=" + SECRET,
        "docker build --secret id=npmrc,src=.npmrc .",
        "https://vpce.amazonaws.com/",
        "https://s3.us-east-1.vpce.amazonaws.com/",
        "an o-ring and a go-between",
        "ou-test-something",
        '{"Id": "r-ab12"}',  # no sign of a root
        "r-base and r-devel",
        "the root r-base",
        "chroot r-ab12",
        "OwnerId 12345678901234",  # no 12-digit number
        "the root cause was r-1 of 3",
        # the seventh review's rules
        "the read-only bucket and a cross-account bucket in the us-east-1 bucket list",
        "a token-bucket rate limiter, the v1.2.3 bucket, two buckets",
        "a bucket named after the team, the snapshot called for review",
        "the database (postgres) is slow; Aurora Serverless v2 scales; DBInstance not found",
        "Location: /dashboard",
        "aws_s3_bucket.logs will be created",
        "terraform version 1.7.5 at 2024-01-15T10:30:45Z, commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "uuid 550e8400-e29b-41d4-a716-446655440000 on build-42.example.com",
        "$ aws ec2 describe-instances --query 'Reservations[].Instances[].State.Name' --output text\n"
        "running\tstopped\n",
        "$ aws s3api list-buckets --query 'length(Buckets)'\n12\n",
        '{"Id": "123456789012", "Name": "order"}',  # an Id with no sign of an account
        # the eighth review's rules
        "deploy us-east-1_resources and eu-west-1_terraform; the us-east-1:latest tag",
        '"RequestId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "KeyId": "alias/aws/s3"',
        "START RequestId: 1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d Version: $LATEST",
        "src/app/components/index.ts and webapp/x/50dc6c495c0c9188",
        "2024-01-15T10:30:45.123456Z INFO 10 workers started",
        "CREATE_COMPLETE  AWS::S3::Bucket  LogsBucket\nthe stack already exists (Service: S3, x)",
        "AWS::S3::BucketPolicy  Policy  stack-policy-1",
        "--id EXAMPLEVALUEXY and the id E2QWRUHEXAMPL3, --task build",
        "https://kafka.us-east-1.amazonaws.com https://redshift.us-east-1.amazonaws.com "
        "https://iot.us-east-1.amazonaws.com https://cognito-idp.us-east-1.amazonaws.com/",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess and git 3f786850e387550fdab836ed7e6dc881de23001b",
        "see https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html v2.15.3",
        # the ninth review's rules
        "e-commerce, e-learning and e-mail; a j-pop fan; ws-server; prod-environment; the d-day",
        "the function name is wrong; the table name, queue name and stack name; --name is required",
        "docker run --name web-1 nginx && helm install --name my-release ./chart",
        '{"name": "my-app", "version": "1.2.3", "path": "/api/v1/users", "FunctionName": "default"}',
        '{"TableName": "${var.table}", "function_name": "var.handler_name", "ClusterName": "Production"}',
        "aws ssm get-parameter --name /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
        '"Action": ["ssm:GetParameter", "ssm:GetParameters"], "Resource": "*"',
        "git log 3f786850e387550fdab836ed7e6dc881de23001b at 2024-01-15T10:30:45Z; see /usr/local/bin/x",
        '{"id": "a1b2c3d4e5", "name": "order"} and uuid 550e8400-e29b-41d4-a716-446655440000',
        '{"Id": "EXAMPLEEXAMPLE"} v10.2.3 on build-42.example.com; the secret is safe',
        "aws ecs describe-services --cluster default --services web",
    ],
)
def test_review_false_positives(text: str, masker: Masker) -> None:
    assert masked(masker, text) == text
