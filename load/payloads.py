"""Deterministic AWS-heavy Claude request bodies for load runs, with the identifiers the gateway masks.

    from payloads import payload, COMPLEX_TEXT
    p = payload(seed=7, size=8 * 1024)        # a Messages request body of at most 8 KB
    p.data                                    # the JSON bytes to POST (non-streamed)
    p.stream_data                             # the same request with "stream": true
    p.identifiers                             # what the gateway will mask in it (category, value)

A body is the user's question around a seeded mix of what people paste into Claude while debugging
AWS: ``aws ec2 describe-instances`` and ``aws rds describe-db-instances`` JSON, ``aws s3 ls`` lines,
CloudTrail records, CloudWatch application logs, VPC flow log lines, IAM policies and ARNs, security
group / subnet / VPC references, access key IDs, S3 URLs, and prose around them. Access keys and
secret keys follow AWS's documented example formats (``AKIA…EXAMPLE``, ``wJalrXUtnFEMI/…EXAMPLEKEY``);
nothing here is a real credential.

Which identifiers a body holds is not guessed from the generator: it is what the masking engine
itself masks in the whole body (``mask_request`` with the default configuration, as kong.yml ships
it), so a context rule, a name echoed across the request or an account inside an ARN (one token with
the ARN) counts exactly as it will at the gateway. Everything is cached per (seed, size), so a load
generator builds its pool once and pays nothing per request.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.tokens import KIND_CATEGORIES, TOKEN_RE

MODEL = "claude-sonnet-5"
MAX_TOKENS = 1024
KB = 1024
MIN_SIZE = KB
MAX_SIZE = 100 * KB
SIZE_SLACK = 64
"""A body is at most ``size`` bytes and at least ``size - SIZE_SLACK``."""
COMPLEX_TEXT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
"""The original test plan's complex request."""

_SECRET = "load-payloads-secret"  # tokens are thrown away: only which originals were masked matters
_HEX = "0123456789abcdef"
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_DOC_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret key


@dataclass(frozen=True)
class Identifier:
    """One original value the gateway masks, and its category (the token kind's category).
    The value is left out of ``repr`` so that it never reaches a log line or an error message."""

    category: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class Payload:
    seed: int
    size: int
    """The size asked for; ``len(data)`` is within ``SIZE_SLACK`` bytes below it."""
    text: str = field(repr=False)
    """The user message."""
    data: bytes = field(repr=False)
    stream_data: bytes = field(repr=False)
    identifiers: tuple[Identifier, ...] = field(repr=False)

    def categories(self) -> Counter[str]:
        return Counter(i.category for i in self.identifiers)


def request_body(
    messages: list[dict[str, object]], *, stream: bool = False, metadata: dict[str, str] | None = None
) -> bytes:
    """A compact Messages request body."""
    doc: dict[str, object] = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": messages}
    if metadata:
        doc["metadata"] = metadata
    if stream:
        doc["stream"] = True
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def user_body(text: str, *, stream: bool = False) -> bytes:
    return request_body([{"role": "user", "content": text}], stream=stream)


@lru_cache(maxsize=1)
def _masker() -> Masker:
    return Masker(MaskerConfig(token_secret=_SECRET))


@lru_cache(maxsize=512)
def identifiers_of(body: bytes) -> tuple[Identifier, ...]:
    """What the gateway masks in this request body: each masked original once, in order of first
    appearance, with its category. Cached by body: a conversation resends the same bodies."""
    masked, result = mask_request(body, _masker())
    order = {token: n for n, token in enumerate(dict.fromkeys(TOKEN_RE.findall(masked.decode())))}
    tokens = sorted(result.tokens, key=lambda t: order.get(t, len(order)))
    return tuple(Identifier(KIND_CATEGORIES[token[4:-13]], result.tokens[token]) for token in tokens)


# ------------------------------------------------------------------------------------------ values


class _Ids:
    """Seeded identifier values, a few of each drawn once per payload and reused, as in a real
    account (the same VPC, the same account, the same buckets all over a paste)."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.accounts = [str(rnd.randint(10**11, 10**12 - 1)) for _ in range(2)]
        self.vpcs = [f"vpc-{self.hex(17)}" for _ in range(2)]
        self.subnets = [f"subnet-{self.hex(17)}" for _ in range(4)]
        self.sgs = [f"sg-{self.hex(17)}" for _ in range(4)]
        self.buckets = [
            f"{rnd.choice(['acme', 'globex', 'initech', 'umbrella'])}-"
            f"{rnd.choice(['data-lake', 'app-logs', 'backups', 'artifacts', 'cur-reports'])}-"
            f"{rnd.choice(['prod', 'staging', 'dev'])}-{rnd.randint(100, 999)}"
            for _ in range(4)
        ]
        self.dbs = [
            f"{rnd.choice(['orders', 'payments', 'users', 'inventory'])}-"
            f"{rnd.choice(['prod', 'staging'])}-db-{rnd.randint(1, 9)}"
            for _ in range(2)
        ]
        self.region = rnd.choice(["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-2"])

    def hex(self, n: int) -> str:
        return "".join(self.rnd.choice(_HEX) for _ in range(n))

    def account(self) -> str:
        return self.rnd.choice(self.accounts)

    def instance(self) -> str:
        return f"i-{self.hex(17)}"

    def private_ip(self) -> str:
        r = self.rnd
        return r.choice(
            [
                f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
            ]
        )

    def public_ip(self) -> str:  # documentation ranges (RFC 5737)
        r = self.rnd
        return f"{r.choice(['203.0.113', '198.51.100', '192.0.2'])}.{r.randint(1, 254)}"

    def access_key(self) -> str:
        """An access key ID in AWS's documented example shape: AKIA + 9 characters + EXAMPLE."""
        return "AKIA" + "".join(self.rnd.choice(_KEY_CHARS) for _ in range(9)) + "EXAMPLE"

    def role_arn(self) -> str:
        name = self.rnd.choice(["deploy", "ci-runner", "lambda-exec", "eks-node", "read-only-audit"])
        return f"arn:aws:iam::{self.account()}:role/{name}"


# ---------------------------------------------------------------------------------------- sections


def _ec2(ids: _Ids) -> str:
    r = ids.rnd
    ip = ids.private_ip()
    instance = {
        "InstanceId": ids.instance(),
        "ImageId": f"ami-{ids.hex(17)}",
        "InstanceType": r.choice(["t3.micro", "m5.large", "c6g.xlarge"]),
        "State": {"Code": 16, "Name": "running"},
        "PrivateDnsName": f"ip-{ip.replace('.', '-')}.ec2.internal",
        "PrivateIpAddress": ip,
        "PublicIpAddress": ids.public_ip(),
        "SubnetId": r.choice(ids.subnets),
        "VpcId": r.choice(ids.vpcs),
        "Placement": {"AvailabilityZone": ids.region + "a", "Tenancy": "default"},
        "SecurityGroups": [{"GroupName": "web-tier", "GroupId": r.choice(ids.sgs)}],
        "IamInstanceProfile": {"Arn": f"arn:aws:iam::{ids.account()}:instance-profile/web-tier"},
        "NetworkInterfaces": [{"NetworkInterfaceId": f"eni-{ids.hex(17)}", "PrivateIpAddress": ip}],
        "Tags": [{"Key": "Name", "Value": "checkout web"}, {"Key": "Team", "Value": "platform"}],
    }
    reservation = {"ReservationId": f"r-{ids.hex(17)}", "OwnerId": ids.account(), "Instances": [instance]}
    dump = json.dumps({"Reservations": [reservation]}, indent=4)
    return f"$ aws ec2 describe-instances --instance-ids {instance['InstanceId']}\n{dump}\n"


def _rds(ids: _Ids) -> str:
    r = ids.rnd
    db = r.choice(ids.dbs)
    account = ids.account()
    doc = {
        "DBInstances": [
            {
                "DBInstanceIdentifier": db,
                "DBInstanceClass": "db.r6g.large",
                "Engine": r.choice(["postgres", "mysql", "aurora-postgresql"]),
                "DBInstanceStatus": "available",
                "Endpoint": {
                    "Address": f"{db}.c{ids.hex(11)}.{ids.region}.rds.amazonaws.com",
                    "Port": 5432,
                },
                "DBSubnetGroup": {"DBSubnetGroupName": "private-db", "VpcId": r.choice(ids.vpcs)},
                "VpcSecurityGroups": [{"VpcSecurityGroupId": r.choice(ids.sgs), "Status": "active"}],
                "DBInstanceArn": f"arn:aws:rds:{ids.region}:{account}:db:{db}",
                "MultiAZ": True,
            }
        ]
    }
    return f"$ aws rds describe-db-instances --db-instance-identifier {db}\n{json.dumps(doc, indent=4)}\n"


def _s3_ls(ids: _Ids) -> str:
    r = ids.rnd
    lines = [
        f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} {r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        f":{r.randint(0, 59):02d} {bucket}"
        for bucket in r.sample(ids.buckets, k=r.randint(2, len(ids.buckets)))
    ]
    return "$ aws s3 ls\n" + "\n".join(lines) + "\n"


def _s3_context(ids: _Ids) -> str:
    r = ids.rnd
    bucket = r.choice(ids.buckets)
    return r.choice(
        [
            f"The nightly export writes to s3://{bucket}/exports/{r.randint(2020, 2025)}/part-0000.parquet "
            "and the Glue crawler reads it from there.\n",
            f"Access denied when the job calls GetObject on bucket {bucket}; the bucket policy allows "
            f"arn:aws:s3:::{bucket}/* for the role.\n",
            f"The CUR reports land in https://{bucket}.s3.{ids.region}.amazonaws.com/reports/.\n",
        ]
    )


def _cloudtrail(ids: _Ids) -> str:
    r = ids.rnd
    account = ids.account()
    record = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account}:assumed-role/deploy/session-{r.randint(1000, 9999)}",
            "accountId": account,
            "accessKeyId": ids.access_key(),
        },
        "eventTime": f"2024-05-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:14:03Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": r.choice(["RunInstances", "AuthorizeSecurityGroupIngress", "CreateTags"]),
        "awsRegion": ids.region,
        "sourceIPAddress": ids.public_ip(),
        "requestParameters": {"groupId": r.choice(ids.sgs), "instanceId": ids.instance()},
        "recipientAccountId": account,
    }
    return "CloudTrail record:\n" + json.dumps(record) + "\n"


def _app_logs(ids: _Ids) -> str:
    r = ids.rnd
    lines = []
    for _ in range(r.randint(3, 6)):
        clock = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
        ts = f"2024-05-14T{clock}.{r.randint(0, 999):03d}Z"
        lines.append(
            r.choice(
                [
                    f"{ts} ERROR [checkout] connection to {ids.private_ip()}:5432 timed out after 5000 ms",
                    f"{ts} WARN  [worker] instance {ids.instance()} failed its health check (3/3)",
                    f"{ts} INFO  [uploader] put object to {r.choice(ids.buckets)} took 812 ms",
                    f"{ts} ERROR [payments] AccessDenied assuming {ids.role_arn()}",
                    f"{ts} INFO  [api] request from {ids.private_ip()} routed via {r.choice(ids.subnets)}",
                ]
            )
        )
    group = f"/aws/ecs/checkout-{r.choice(['prod', 'staging'])}"
    return f"CloudWatch Logs ({group}):\n" + "\n".join(lines) + "\n"


def _flow_logs(ids: _Ids) -> str:
    r = ids.rnd
    lines = [
        f"2 {ids.account()} eni-{ids.hex(17)} {ids.private_ip()} {ids.private_ip()} "
        f"{r.choice([443, 5432, 6379])} {r.randint(32768, 60999)} 6 {r.randint(1, 40)} "
        f"{r.randint(60, 9000)} 1715690000 1715690060 {r.choice(['ACCEPT', 'REJECT'])} OK"
        for _ in range(r.randint(2, 4))
    ]
    return "VPC flow logs:\n" + "\n".join(lines) + "\n"


def _iam(ids: _Ids) -> str:
    r = ids.rnd
    account = ids.account()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{r.choice(ids.buckets)}/*",
            },
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": f"arn:aws:sqs:{ids.region}:{account}:orders-{r.choice(['events', 'dlq'])}",
            },
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": f"arn:aws:lambda:{ids.region}:{account}:function:resize-images",
            },
        ],
    }
    return f"The policy attached to {ids.role_arn()}:\n{json.dumps(policy, indent=2)}\n"


def _network(ids: _Ids) -> str:
    r = ids.rnd
    return (
        f"Security group {r.choice(ids.sgs)} in {r.choice(ids.vpcs)} allows 5432 from "
        f"{r.choice(ids.sgs)} only; the task runs in {r.choice(ids.subnets)} and "
        f"{r.choice(ids.subnets)}, and the NAT gateway is nat-{ids.hex(17)}.\n"
    )


def _credentials(ids: _Ids) -> str:
    return (
        "The CI job's ~/.aws/credentials (example values):\n[ci]\n"
        f"aws_access_key_id = {ids.access_key()}\naws_secret_access_key = {_DOC_SECRET_KEY}\n"
        f"Its role is {ids.role_arn()} in account {ids.account()}.\n"
    )


def _complex(_ids: _Ids) -> str:
    return COMPLEX_TEXT + "\n"


_PROSE_TEXT = (
    "We are seeing intermittent timeouts between the checkout service and the payments API since "
    "yesterday's deploy. The service runs on ECS behind an ALB and talks to a Postgres database. "
    "Nothing changed in the security groups as far as we know, but the error rate doubled after the "
    "autoscaling event at noon. Could it be the connection pool, the NAT gateway or DNS? Please look "
    "at the output below and tell me what you would check first, and why."
)
_PROSE = _PROSE_TEXT.split()

Section = Callable[[_Ids], str]
_SECTIONS: tuple[tuple[Section, int], ...] = (
    (_ec2, 3),
    (_rds, 2),
    (_s3_ls, 2),
    (_s3_context, 2),
    (_cloudtrail, 2),
    (_app_logs, 3),
    (_flow_logs, 1),
    (_iam, 2),
    (_network, 2),
    (_credentials, 1),
    (_complex, 1),
)


def _prose(rnd: random.Random, words: int) -> str:
    start = rnd.randrange(len(_PROSE))
    return " ".join(_PROSE[(start + n) % len(_PROSE)] for n in range(words))


def _fill(rnd: random.Random, parts: list[str], size: int) -> str:
    """Join ``parts`` and pad with prose so that the body is within SIZE_SLACK bytes below ``size``."""
    text = "\n".join(parts)
    while True:
        room = size - len(user_body(text))
        if room < 0:  # (only the question itself can be too long for a tiny size)
            return text[: len(text) + room]
        if room <= SIZE_SLACK:
            return text
        text += "\n" + _prose(rnd, max(1, min(room // 7, 60)))[: room - 1]


@lru_cache(maxsize=1024)
def payload(seed: int, size: int) -> Payload:
    """The payload of this seed and size (bytes of the JSON body, MIN_SIZE to MAX_SIZE)."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be from {MIN_SIZE} to {MAX_SIZE} bytes")
    rnd = random.Random(f"aws-masker-load:{seed}:{size}")
    ids = _Ids(rnd)
    sections, weights = zip(*_SECTIONS, strict=True)
    parts = [_prose(rnd, rnd.randint(20, 50)) + "\n"]
    budget = size - SIZE_SLACK - 200  # room left for the closing question and the padding
    length = len(user_body(parts[0]))
    misses = 0
    while misses < 8:  # sections that do not fit any more are skipped; a few misses in a row end it
        (section,) = rnd.choices(sections, weights)
        piece = section(ids)
        if length + len(json.dumps(piece)) > budget:
            misses += 1
            continue
        misses = 0
        parts.append(piece)
        length += len(json.dumps(piece)) - 1
    parts.append("What is wrong here, and what should I check first?")
    text = _fill(rnd, parts, size)
    data = user_body(text)
    return Payload(seed, size, text, data, user_body(text, stream=True), identifiers_of(data))


def sizes(rnd: random.Random, count: int, low: int, high: int) -> list[int]:
    """``count`` sizes from [low, high] bytes, most of them small: ``low * (high / low) ** u²`` for a
    uniform u. From 1 to 100 KB: about 55% up to 4 KB, 32% from 4 to 32 KB, 13% above."""
    low, high = max(low, MIN_SIZE), min(high, MAX_SIZE)
    if low > high:
        raise ValueError("empty size range")
    return [round(low * (high / low) ** (rnd.random() ** 2)) for _ in range(count)]


def pool(seeds: Iterable[int], size_of: Callable[[int], int]) -> list[Payload]:
    """Payloads for these seeds, each of ``size_of(seed)`` bytes."""
    return [payload(seed, size_of(seed)) for seed in seeds]
