"""Property tests: generated text and JSON embedding identifiers of every category."""

from __future__ import annotations

import ipaddress
import itertools
import json
import string

from contract import assert_contract, windowed
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aws_masker.body import mask_request, response_restorer, restore_body
from aws_masker.engine import Masker
from aws_masker.patterns import EC2_LONG_PREFIXES, EC2_PREFIXES, RULES, english_compound
from aws_masker.restore import restore_text
from aws_masker.scanner import Scanner
from aws_masker.tokens import TOKEN_RE

HEX = "0123456789abcdef"
B32 = string.ascii_uppercase + "234567"
LOWER = string.ascii_lowercase + string.digits
FILLER = [
    "the",
    "instance",
    "is",
    "running",
    "check",
    "logs",
    "for",
    "error",
    "timeout",
    "and",
    "service",
    "deploy",
    "ok",
    "Analyze:",
    "EC2",
    "IP",
    "we",
    "see",
    "payments",
    "résumé",
    "日本",
    "42",
    "-",
    "(x)",
]
SEPARATORS = [" ", "\n", ", ", "\t", " (", ") ", ". ", '"', "; "]

hexs = lambda n: st.text(HEX, min_size=n, max_size=n)  # noqa: E731


@st.composite
def ec2(draw):
    prefix = draw(st.sampled_from(sorted(EC2_PREFIXES)))
    lengths = [17] if prefix in EC2_LONG_PREFIXES else [8, 17]
    return prefix + "-" + draw(hexs(draw(st.sampled_from(lengths)))), None


@st.composite
def private_ip(draw):
    net = draw(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]))
    n = ipaddress.ip_network(net)
    addr = str(n[draw(st.integers(0, n.num_addresses - 1))])
    return addr + draw(st.sampled_from(["", "/16", "/24", "/32"])), None


@st.composite
def public_ip(draw):
    a = draw(st.sampled_from([3, 13, 18, 34, 35, 44, 52, 54, 99]))
    return f"{a}.{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}", None


@st.composite
def ipv6(draw):
    base = int(ipaddress.IPv6Address("2600:1f18::"))
    return str(ipaddress.IPv6Address(base + draw(st.integers(1, 2**96)))), None


@st.composite
def account(draw):
    acct = draw(st.text(string.digits, min_size=12, max_size=12))
    ctx = draw(st.sampled_from(['"OwnerId": "{}"', "account {}", "AWS_ACCOUNT_ID={}", "Account ID: {}"]))
    return acct, ctx


@st.composite
def canonical_user_id(draw):
    contexts = [
        '"Owner": {{"ID": "{}"}}',
        "<Grantee><ID>{}</ID>",
        "\n||  DisplayName  |  ID  ||\n||  ops  |  {}  ||\n",
        '{{"CanonicalUser": "{}"}}',
        "\nOWNER\tops\t{}\n",
        '"OWNER\\tops\\t{}\\n"',  # text output inside a JSON string
        "GRANTEE\t{}\t",
        "\n{} acme-logs [06/Feb/2024:00:00:38 +0000] 10.0.0.1 -",  # S3 access log: the bucket owner
        '"S3CanonicalUserId": "{}"',  # CloudFront's, 96 hex
    ]
    ctx = draw(st.sampled_from(contexts))
    return draw(hexs(96 if "S3Canonical" in ctx else 64)), ctx


@st.composite
def arn(draw):
    part = draw(st.sampled_from(["aws", "aws-cn", "aws-us-gov"]))
    svc, rtype = draw(
        st.sampled_from(
            [
                ("iam", "role/"),
                ("lambda", "function:"),
                ("ec2", "instance/"),
                ("rds", "db:"),
                ("eks", "cluster/"),
                ("sqs", ""),
                ("kms", "key/"),
            ]
        )
    )
    region = "" if svc == "iam" else draw(st.sampled_from(["us-east-1", "eu-west-2", "ap-southeast-1"]))
    acct = draw(st.text(string.digits, min_size=12, max_size=12))
    name = draw(st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=20))
    return f"arn:{part}:{svc}:{region}:{acct}:{rtype}{name}", None


@st.composite
def bucket(draw):
    # (a letter first: an `aws s3 ls` line ending in digits and hyphens is taken for a number)
    b = (
        draw(st.sampled_from(string.ascii_lowercase))
        + draw(st.text(LOWER, min_size=1, max_size=11))
        + "-"
        + draw(st.text(LOWER, min_size=1, max_size=12))
    )
    ctx = draw(
        st.sampled_from(
            [
                "s3://{}/key.csv",
                '"Bucket": "{}"',
                "S3 bucket named {}",
                "https://{}.s3.amazonaws.com/x",
                'bucket = "{}"',
                "\n2024-01-15 10:30:45 {}\n",  # an `aws s3 ls` line
                "\nBUCKETS\t2024-01-15T10:30:45+00:00\t{}\n",  # `aws s3api list-buckets`, text
                "\n||  2024-01-15T10:30:45+00:00  |  {}  ||\n",  # ... and table output
                "\n" + "5c7e9a1b" * 8 + " {} [06/Feb/2024:00:00:38 +0000] 10.0.0.1 -",  # S3 access log
            ]
        )
    )
    if ctx == "S3 bucket named {}":  # (in prose, hyphenated English is no name: "S3 bucket named read-only")
        assume(not english_compound(b))
    return b, ctx


@st.composite
def rds(draw):
    r = (
        draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
        + "-"
        + draw(st.text(LOWER, min_size=1, max_size=8))
    )
    ctx = draw(st.sampled_from(['"DBInstanceIdentifier": "{}"', "RDS {}", "database {}"]))
    if ctx != '"DBInstanceIdentifier": "{}"':  # (in prose, hyphenated English is no name: "RDS read-only")
        assume(not english_compound(r))
    return r, ctx


@st.composite
def credential(draw):
    kind = draw(st.sampled_from(["akia", "aroa", "secret", "token", "pair"]))
    if kind == "pair":  # a key ID followed by its secret (the secret is the value that must go)
        key = draw(
            st.text(
                string.ascii_letters + string.digits + draw(st.sampled_from(["", "/+"])),
                min_size=40,
                max_size=40,
            )
        )
        sep = draw(st.sampled_from([":", " ", ", ", "\t"]))
        return key, "AKIA" + draw(st.text(B32, min_size=16, max_size=16)) + sep + "{}"
    if kind == "akia":
        return draw(st.sampled_from(["AKIA", "ASIA"])) + draw(st.text(B32, min_size=16, max_size=16)), None
    if kind == "aroa":
        return "AROA" + draw(st.text(B32, min_size=17, max_size=17)), None
    if kind == "secret":
        key = draw(st.text(string.ascii_letters + string.digits + "/+", min_size=40, max_size=40))
        return key, "aws_secret_access_key = {}"
    return "IQoJb3JpZ2luX2Vj" + draw(
        st.text(string.ascii_letters + string.digits, min_size=60, max_size=90)
    ), None


octet = st.integers(0, 255)


@st.composite
def hostname(draw):
    n = draw(st.text(string.ascii_lowercase, min_size=3, max_size=10))
    return draw(
        st.sampled_from(
            [
                f"{n}-{draw(st.integers(10**8, 10**10))}.us-east-1.elb.amazonaws.com",
                f"d{draw(st.text(LOWER, min_size=13, max_size=13))}.cloudfront.net",
                "ip-10-{}-{}-{}.ec2.internal".format(*draw(st.tuples(octet, octet, octet))),
                f"{n}.{draw(st.text(LOWER, min_size=12, max_size=12))}.eu-west-1.rds.amazonaws.com",
            ]
        )
    ), None


IDENTIFIERS = st.one_of(
    ec2(),
    private_ip(),
    public_ip(),
    ipv6(),
    account(),
    canonical_user_id(),
    arn(),
    bucket(),
    rds(),
    credential(),
    hostname(),
)


@st.composite
def echoed(draw):
    """A name in context strong enough for the engine to mask it wherever else it stands (echo.py)."""
    return draw(
        st.one_of(
            st.tuples(
                bucket().map(lambda b: b[0]),
                st.sampled_from(["s3://{}/key.csv", '"Bucket": "{}"', "https://{}.s3.amazonaws.com/x"]),
            ),
            st.tuples(rds().map(lambda r: r[0]), st.just('"DBInstanceIdentifier": "{}"')),
            canonical_user_id(),
        )
    )


ECHOED = echoed()


@st.composite
def documents(draw):
    """Text mixing filler and identifiers; returns (text, identifier values that must be masked).
    Some names found by their context come back bare later in the text."""
    parts: list[str] = []
    values: list[str] = []
    echoes: list[str] = []
    for _ in range(draw(st.integers(1, 12))):
        choice = draw(st.integers(0, 5))
        if choice < 3:
            value, ctx = draw(IDENTIFIERS if choice else ECHOED)
            parts.append(ctx.format(value) if ctx else value)
            values.append(value)
            if not choice:
                echoes.append(value)
        elif choice == 3 and echoes:
            parts.append(draw(st.sampled_from(echoes)))  # bare, no context
        else:
            parts.append(draw(st.sampled_from(FILLER)))
        parts.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(parts), values


def _background(text: str, values: list[str]) -> str:
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, "\x00")
    return text


def _assert_nothing_survives(text: str, values: list[str], masked: str) -> None:
    background = _background(text, values)
    masked = TOKEN_RE.sub("\x01", masked)  # a slice that happens to spell part of a token is no leak
    for v in values:
        assert v not in masked
        for i in range(len(v) - 7):
            piece = v[i : i + 8]
            assert piece not in masked or piece in background, (
                "an 8-character slice of an identifier survived"
            )


ANCHORS, WORDS, PLAIN = (Scanner(mode=mode) for mode in ("anchors", "words", "plain"))
TINY_WINDOWS = windowed(3)  # a prefilter window boundary next to nearly every character
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(documents())
def test_no_identifier_survives_and_restore_is_exact(masker: Masker, doc) -> None:
    text, values = doc
    masked, result = masker.mask_text(text)
    _assert_nothing_survives(text, values, masked)
    assert restore_text(masked, result.tokens)[0] == text


@SETTINGS
@given(documents())
def test_masking_is_idempotent(masker: Masker, doc) -> None:
    once = masker.mask_text(doc[0])[0]
    assert masker.mask_text(once)[0] == once


@SETTINGS
@given(documents(), documents(), documents())
def test_json_requests_stay_valid_and_restore(masker: Masker, a, b, c) -> None:
    req = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": a[0],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": b[0]}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "aws", "input": {"cmd": c[0]}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": c[0]}]},
        ],
    }
    raw = json.dumps(req, ensure_ascii=bool(len(a[0]) % 2)).encode()
    body, result = mask_request(raw, masker)
    doc = json.loads(body)  # valid JSON
    masked_text = json.dumps(doc, ensure_ascii=False)
    _assert_nothing_survives(json.dumps(req, ensure_ascii=False), a[1] + b[1] + c[1], masked_text)
    assert json.loads(restore_body(body, result.tokens, "application/json")) == req
    again, _ = mask_request(body, masker)
    assert again == body  # idempotent on JSON too


@SETTINGS
@given(documents(), st.lists(st.integers(0, 10_000), max_size=12), st.integers(1, 97))
def test_sse_split_anywhere_restores_exactly(masker: Masker, doc, cuts, chunk) -> None:
    text = doc[0]
    masked, result = masker.mask_text(text)
    points = sorted({c % (len(masked) + 1) for c in cuts} | {0, len(masked)})
    deltas = [masked[i:j] for i, j in itertools.pairwise(points)]
    events = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}
        for d in deltas
    ]
    events += [{"type": "content_block_stop", "index": 0}, {"type": "message_stop"}]
    raw = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    r = response_restorer(result.tokens, content_type="text/event-stream")
    out = b"".join(r.feed(raw[i : i + chunk]) for i in range(0, len(raw), chunk)) + r.finish()
    got = [json.loads(block.split("data: ", 1)[1]) for block in out.decode().split("\n\n") if block]
    assert [e["type"] for e in got] == [e["type"] for e in events]
    assert "".join(e["delta"]["text"] for e in got if e["type"] == "content_block_delta") == text


@SETTINGS
@given(documents())
def test_every_scanner_mode_is_exact(doc) -> None:
    """The prefilter (``anchors``) and the plain-word shortcut (``words``) try fewer positions than
    the plain word-by-word scan; on generated text they must find exactly what it finds."""
    enabled = frozenset(
        {"ec2", "s3", "rds", "private_ip", "public_ip", "ipv6", "arn", "account", "credentials", "hostname"}
    )
    expected = PLAIN.scan(doc[0], enabled, frozenset())
    assert ANCHORS.scan(doc[0], enabled, frozenset()) == expected
    assert WORDS.scan(doc[0], enabled, frozenset()) == expected


# Pieces that anchors and rules are made of, glued at random: prefixes that end inside each other
# ("tgw-rtb-" and "rtb-"), hex and digit runs, host suffixes, separators that do and do not end words.
PIECES = [
    *("i-", "tgw-", "rtb-", "tgw-rtb-", "vpc-", "sg-", "db-", "ip-", "ip-10-", "arn:aws:", "arn:aws:iam::"),
    *("0123abcd", "0a1b2c3d4e5f6789", "1234", "123456789012", "10.", "172.16.", "1.2", ".3", "ff", "::"),
    *(".amazonaws.com", ".ec2.internal", ".rds", ".s3", ".cloudfront.net", "s3://", "AKIA", "AROA"),
    *("ABCDEFGHIJKLMNOP", "DB ", "bucket ", "Name", '": "', "OwnerId", "-", ".", ":", "_", "/", " ", "\n"),
    *("x", "é", "\n", "2024-01-15 10:30:45 ", "2024-01-15", " 10:30:45 ", "T10:30:45Z", "\t", " | ", "||"),
    *("5c7e9a1b" * 8, "backups", " [06/Feb/2024:00:00:38 +0000] ", '"GET /', "OWNER\t", '"ID": "'),
]


@SETTINGS
@given(
    st.one_of(documents().map(lambda d: d[0]), st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
)
def test_prefilter_reports_every_rule_match(text: str) -> None:
    """The prefilter's contract, at every position of generated text: wherever a rule's regex matches,
    the prefilter reports that position with that rule; and the scanner built on it finds what the
    plain scan finds."""
    everything = frozenset(r.category for r in RULES) | {"rds", "private_ip", "s3"}
    expected = PLAIN.scan(text, everything, frozenset())
    assert_contract(text, [ANCHORS, TINY_WINDOWS])
    for scanner in (ANCHORS, TINY_WINDOWS):
        assert scanner.scan(text, everything, frozenset()) == expected
