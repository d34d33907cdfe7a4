"""Echoes: a name the catalogue found by its context is masked wherever else it stands in the request.

Bucket and RDS names, canonical user IDs, secret keys, session tokens and account IDs are recognised
by what surrounds them: a key (``"Bucket": "..."``), an output format (``aws s3api list-buckets``), a
command-line flag. The same name elsewhere
in the request, bare, has no such context: ``s3://acme-prod-data/x`` is masked by the catalogue, but
the follow-up question "why is acme-prod-data slow?" would reach the upstream as it is. So once a
request's scan is done, every other occurrence of such a name as a whole word, in any string of the
request, gets the same token.

Which names: account IDs found with evidence, also the account of every masked ARN and the resource
name it holds (a bucket, an RDS instance, a table, a function, a role...: arnnames.py), each issued a
token only if it recurs; otherwise only those found by a rule marked ``echo`` in the catalogue (strong
evidence: specific keys, URIs, list-buckets, ``aws s3 ls`` listings and access-log formats, flags; not
prose such as "S3 <name>", lone ``aws s3 ls``-shaped lines or generic keys, whose false positives
would otherwise spread), and for names (buckets, RDS, the names inside ARNs) only those that cannot be
ordinary words: a hyphen, dot or digit, and no number, version,
unit or region shape (see ``_NOT_A_NAME``); or, made of letters only, at least four of them and not
a common English word (``data/common_words.txt``, from wordfreq, with its plurals and ``-ed``/``-ing``
forms) nor a word of the trade (``TECH_WORDS``: engines, tools, services): a database called
``ordersdb`` is echoed, one called ``ledger`` or ``postgres`` is not.

The search runs on each string as the rules see it (scanner.unescaped: JSON escapes decoded, up to
16 levels; textview.folded: percent-encoding, HTML references and unicode look-alikes folded), so a
name written with escapes (``orders\\u002dprod-db-1`` in a raw body, or inside an escaped JSON
string) or percent-encoded (``orders%2Dprod-db-1``) is found, and replaced with what it was written
as.

A whole word is a maximal run of the characters names of that kind are made of (bucket and RDS
names: letters, digits, ``_``, ``.``, ``-``; trailing dots end a sentence, not the name), in the text
as the rules see it (JSON escapes such as ``\\n`` end a word, as in scanner.py). "acme-data" is not
echoed inside "acme-data-eu" or "x.acme-data", but is in "see acme-data." Identifiers the scan kept
verbatim (a disabled category, the allow-list, an AWS-managed ARN) are never cut into.

Cost: with a few names, substring searches over the whole request (C speed), one per name to see
whether it recurs at all, then one per recurring name; with many (a pasted list of hundreds of
buckets), one pass that looks every long-enough word up instead. Linear in the request's size either
way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

from .patterns import REGION
from .scanner import unescaped
from .textview import folded


class _Word(NamedTuple):
    """What names of some kinds are made of."""

    runs: Callable[[str], Iterator[tuple[int, int]]]
    """The spans of the maximal runs of the characters at least as long as the shortest name."""
    char: re.Pattern[str]
    """One of the characters."""
    tail: str
    """Characters that may follow the name inside its run (sentence dots after a bucket name)."""
    priority: int
    """Where occurrences of two kinds overlap, the lower wins (a secret before a name inside it)."""


_DIGITS_TO_ZERO = bytes(ord("0") if chr(b).isdigit() else ord(" ") for b in range(256))  # for bytes
_TWELVE = b"0" * 12
_ZERO = ord("0")


def _regex_runs(pattern: str) -> Callable[[str], Iterator[tuple[int, int]]]:
    compiled = re.compile(pattern)
    return lambda text: (m.span() for m in compiled.finditer(text))


def _digit_runs(joined: str) -> Iterator[tuple[int, int]]:
    """The runs of 12 or more ASCII digits, found by C-speed searches in a copy with every digit made
    "0" (a regex tries every position in Python's engine: ten times slower on a dump). The copy is
    bytes, one a character (anything outside ASCII a "?", then a blank): bytes.translate is a table
    look-up per byte, cheaper than str.translate's."""
    zeros = joined.encode("ascii", "replace").translate(_DIGITS_TO_ZERO)
    start = zeros.find(_TWELVE)
    while start >= 0:
        end = start + 12
        while end < len(zeros) and zeros[end] == _ZERO:
            end += 1
        yield start, end
        start = zeros.find(_TWELVE, end)


_BASE64 = _Word(_regex_runs(r"[A-Za-z0-9/+=]{40,}"), re.compile(r"[A-Za-z0-9/+=]"), "", 1)
_HEX = _Word(_regex_runs(r"[A-Za-z0-9_]{64,}"), re.compile(r"[A-Za-z0-9_]"), "", 2)
_NAME = _Word(_regex_runs(r"[A-Za-z0-9_.-]{3,}"), re.compile(r"[A-Za-z0-9_.-]"), ".", 3)
# a bucket's or an RDS identifier's name, which cannot hold an underscore: one ends a word
# (backup_acme-prod-data_2024.tar.gz holds the bucket acme-prod-data)
_DNS_NAME = _Word(_regex_runs(r"[A-Za-z0-9.-]{3,}"), re.compile(r"[A-Za-z0-9.-]"), ".", 3)
# names that are paths (SSM parameters: /orders/prod/db_password, log groups: /ecs/orders-api,
# secrets: orders-prod/db-credentials): a name of a kind made of _NAME's characters, with slashes
_PATH = _Word(_regex_runs(r"[A-Za-z0-9_./-]{3,}"), re.compile(r"[A-Za-z0-9_./-]"), ".", 3)
# an account ID: a run of 12 digits between non-alphanumerics (so also inside a hyphenated bucket
# name or before "/", as in an AMI's ImageLocation), never part of a longer number or word; its runs
# are digit runs, and a hit is checked for letters around it
_ACCOUNT = _Word(_digit_runs, re.compile(r"[A-Za-z0-9]"), "", 4)
KINDS: dict[str, _Word] = {
    "ACCOUNT": _ACCOUNT,
    "SECRET_KEY": _BASE64,
    "SESSION_TOKEN": _BASE64,
    "CANONICAL_ID": _HEX,
    "S3_BUCKET": _DNS_NAME,
    "RDS": _DNS_NAME,
    "ORG_ROOT": _NAME,  # (found only under a key or after "root"; organization and OU IDs find themselves)
    # the names inside masked ARNs (arnnames.py) that have no kind of their own
    "DYNAMODB_ARN": _NAME,
    "LAMBDA_ARN": _NAME,
    "SQS_ARN": _NAME,
    "SNS_ARN": _NAME,
    "IAM_ROLE_ARN": _NAME,
    "IAM_USER_ARN": _NAME,
    "IAM_POLICY_ARN": _NAME,  # (found by name in the Terraform provider's messages)
    "IAM_PROFILE_ARN": _NAME,
    "KMS_ARN": _NAME,  # (a key ID found by its keys: kms_key_id)
    "CLOUDFRONT_ARN": _NAME,
    "ROUTE53_ARN": _NAME,
    "COGNITO_ARN": _NAME,
    "APIGW_ARN": _NAME,
    "ELB_ARN": _NAME,
    "ECS_ARN": _NAME,
    "EKS_ARN": _NAME,
    # names and IDs found under their keys and flags (patterns.py, the ninth review's rules)
    "STEP_FN_ARN": _NAME,
    "BATCH_ARN": _NAME,
    "CFN_STACK_ARN": _NAME,
    "LOG_GROUP_ARN": _NAME,
    "SECRET_ARN": _NAME,
    "SSM_ARN": _NAME,
    "ECR_ARN": _NAME,
    "KINESIS_ARN": _NAME,
    "FIREHOSE_ARN": _NAME,
    "GLUE_ARN": _NAME,
    "CODEBUILD_ARN": _NAME,
    "ELASTICACHE_ARN": _NAME,
    "EVENTS_ARN": _NAME,
    "REDSHIFT_ARN": _NAME,
    "ES_DOMAIN_ARN": _NAME,
    "ATHENA_ARN": _NAME,
    "CODECOMMIT_ARN": _NAME,
    "SAGEMAKER_ARN": _NAME,
    "ARN": _NAME,
}
_DOTS = re.compile(r"\.*")
_NAME_MARK = re.compile(r"[-.0-9_/]")
# names that an ordinary text uses as words: numbers, versions (2.7.0, v1.2-rc1), numbers with units,
# regions
_NOT_A_NAME = re.compile(
    r"[0-9.-]+|v[0-9]+|v?[0-9]+(?:\.[0-9]+)+(?:[-+][0-9a-z.]+)?|[0-9.]+[a-z]{1,3}|" + REGION
)
TECH_WORDS = frozenset(
    [
        "postgres",
        "postgresql",
        "mysql",
        "mariadb",
        "aurora",
        "oracle",
        "sqlserver",
        "mssql",
        "mongodb",
        "mongo",
        "redis",
        "valkey",
        "memcached",
        "dynamodb",
        "cassandra",
        "keyspaces",
        "neptune",
        "documentdb",
        "docdb",
        "redshift",
        "athena",
        "snowflake",
        "bigquery",
        "clickhouse",
        "elasticsearch",
        "opensearch",
        "kibana",
        "logstash",
        "kafka",
        "rabbitmq",
        "zookeeper",
        "nginx",
        "apache",
        "haproxy",
        "envoy",
        "traefik",
        "kubernetes",
        "k8s",
        "docker",
        "podman",
        "helm",
        "terraform",
        "terragrunt",
        "pulumi",
        "ansible",
        "jenkins",
        "gitlab",
        "github",
        "bitbucket",
        "grafana",
        "prometheus",
        "datadog",
        "splunk",
        "sentry",
        "localhost",
        "webapp",
        "frontend",
        "backend",
        "devops",
        "sandbox",
        "datalake",
        "lambda",
        "fargate",
        "cloudtrail",
        "cloudwatch",
        "cloudfront",
        "cloudformation",
        "sagemaker",
        "dynamo",
        "tfstate",
        "sqlite",
        "graphql",
        "grpc",
        "webhook",
        "webhooks",
        "serverless",
        "microservice",
        "microservices",
        "middleware",
        "monorepo",
    ]
)
"""Words of the trade that a text uses as words (engines, tools, services): never echoed as names."""
SEARCHES = 48
"""Up to this many names of one kind of word, each is searched for; past it, one pass looks words up."""

# (start, end, token or None for a kept span, category, priority), in the joined text
_Span = tuple[int, int, "str | None", str, int]


class _Names:
    """The names found, and their tokens: a name the scan issued none for gets one on its first echo."""

    __slots__ = ("_found", "_issue", "_issued")

    def __init__(
        self, found: dict[str, tuple[str | None, str, str]], issue: Callable[[str, str], str] | None
    ) -> None:
        self._found, self._issue = found, issue
        self._issued: dict[str, str] = {}

    def token(self, name: str) -> str:
        token, kind, _category = self._found[name]
        if token is None:
            token = self._issued.get(name)
            if token is None:
                assert self._issue is not None, "a name without a token needs an issuer"
                token = self._issued[name] = self._issue(kind, name)
        return token

    def category(self, name: str) -> str:
        return self._found[name][2]


_LETTERS = re.compile(r"[A-Za-z]{4,}")


@lru_cache(maxsize=1)
def common_words() -> Mapping[str, None]:
    """The common English words of ``data/common_words.txt`` (lowercase; ``#`` lines are comments), as
    the keys of a dict: a dict of strings is not tracked by the garbage collector, where a set of
    24,000 words was walked by every full collection (about 140,000 instructions a masked request)."""
    text = resources.files(__package__).joinpath("data/common_words.txt").read_text(encoding="utf-8")
    return dict.fromkeys(line for line in text.splitlines() if line and not line.startswith("#"))


def is_common_word(value: str) -> bool:
    """A common English word, a plural or ``-ed``/``-ing`` form of one, or a word of the trade."""
    word = value.lower()
    common = common_words()
    if word in common or word in TECH_WORDS:
        return True
    stems = [word[:-1], word[:-2]] if word.endswith("s") else []
    if word.endswith(("ed", "ing")):
        stems += [word[:-2], word[:-1], word[:-3], word[:-3] + "e"]
    return any(stem in common or stem in TECH_WORDS for stem in stems if len(stem) >= 3)


def _word(kind: str, value: str) -> _Word | None:
    """What ``value``, a name of ``kind``, is made of (None: not echoed)."""
    word = KINDS.get(kind)
    return _PATH if word is _NAME and "/" in value else word


def worth_echoing(kind: str, value: str) -> bool:
    word = _word(kind, value)  # (a key ID is found beside its secret, but is not echoed: it finds itself)
    if word is not _NAME and word is not _PATH and word is not _DNS_NAME:
        return word is not None
    if _NAME_MARK.search(value) is None:
        return _LETTERS.fullmatch(value) is not None and not is_common_word(value)
    return not _NOT_A_NAME.fullmatch(value)


def echo(
    texts: list[str],
    found: dict[str, tuple[str | None, str, str]],
    kept: list[list[tuple[int, int]]],
    counts: Counter[str],
    issue: Callable[[str, str], str] | None = None,
) -> list[str]:
    """``texts`` with every whole-word occurrence of each found name replaced by its token.

    ``found`` maps each name to (token, kind, category); a token of None is issued (``issue(kind,
    name)``) only if the name recurs (account IDs inside ARNs, masked with their ARN). ``kept[i]``
    are the spans of ``texts[i]`` that hold identifiers the scan kept verbatim; ``counts`` gets one
    more per echoed occurrence, by category."""
    by_word: dict[_Word, dict[str, None]] = {}  # the names worth echoing, by what they are made of
    for name, (_token, kind, _category) in found.items():
        if worth_echoing(kind, name):
            word = _word(kind, name)
            names_of = by_word.get(word)
            if names_of is None:
                names_of = by_word[word] = {}
            names_of[name] = None
    if not by_word:
        return texts
    # each string as the rules see it (escapes decoded, percent-encoding and look-alikes folded:
    # textview.py), and the map back to the string's offsets
    seen = [folded(*unescaped(text)) for text in texts]
    joined = "\x00".join(view for view, _source in seen)  # (NUL ends the words of each string)
    offsets = [0]
    for view, _source in seen:
        offsets.append(offsets[-1] + len(view) + 1)
    hits: list[_Span] = []
    named = _Names(found, issue)
    for word, names in by_word.items():
        if len(names) > SEARCHES:
            hits += _by_lookup(joined, word, names, named)
        else:
            hits += _by_search(joined, word, _recurring(joined, names), named)
    if not hits:
        return texts
    # per string, in its own offsets: the kept spans first (no echo cuts into them), then the echoes
    spans: list[list[_Span]] = [[(start, end, None, "", 0) for start, end in kept_i] for kept_i in kept]
    i = 0
    for start, end, token, category, priority in sorted(hits):
        while start >= offsets[i + 1]:
            i += 1
        source = seen[i][1]
        start, end = start - offsets[i], end - offsets[i]
        if source is not None:
            start, end = source(start), source(end)
        spans[i].append((start, end, token, category, priority))
    out = list(texts)
    for i, spans_i in enumerate(spans):
        accepted = _without_overlaps(spans_i)
        if accepted:
            out[i] = _apply(texts[i], accepted, counts)
    return out


def _recurring(joined: str, names: dict[str, None]) -> list[str]:
    """The names that occur at all (one search each over the whole request: for a few names only)."""
    return [name for name in names if name in joined]


def _by_search(joined: str, word: _Word, names: list[str], named: _Names) -> list[_Span]:
    found: list[_Span] = []
    for name in names:
        i = joined.find(name)
        while i >= 0:
            end = i + len(name)
            if i == 0 or not word.char.match(joined, i - 1):
                # (trailing dots may follow: a run of them is matched at C speed, not walked)
                rest = _DOTS.match(joined, end).end() if word.tail else end  # type: ignore[union-attr]
                if not word.char.match(joined, rest):
                    found.append((i, end, named.token(name), named.category(name), word.priority))
            i = joined.find(name, end)
    return found


def _by_lookup(joined: str, word: _Word, names: dict[str, None], named: _Names) -> list[_Span]:
    """The whole-word occurrences of many ``names``: each run of their characters looked up."""
    found: list[_Span] = []
    for start, end in word.runs(joined):
        run = joined[start:end]
        name = run.rstrip(word.tail) if word.tail else run
        if name in names:
            if (start and word.char.match(joined, start - 1)) or word.char.match(joined, end):
                continue  # (only where the run is a whole word: no account inside "x123…")
            found.append((start, start + len(name), named.token(name), named.category(name), word.priority))
    return found


def _without_overlaps(spans: list[_Span]) -> list[_Span]:
    """The spans in order, where two overlap the one of lower priority (kept spans: 0) dropped."""
    spans.sort(key=lambda span: (span[0], span[4]))
    out: list[_Span] = []
    for span in spans:
        if out and span[0] < out[-1][1]:
            if span[4] < out[-1][4]:
                out[-1] = span
            continue
        out.append(span)
    return [span for span in out if span[2] is not None]


def _apply(text: str, spans: list[_Span], counts: Counter[str]) -> str:
    pieces: list[str] = []
    last = 0
    for start, end, token, category, _priority in spans:
        pieces += (text[last:start], token)  # type: ignore[list-item]
        counts[category] += 1
        last = end
    pieces.append(text[last:])
    return "".join(pieces)
