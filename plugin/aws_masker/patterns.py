"""The pattern catalogue: every AWS identifier the engine recognises, as one declarative table.

Read it top to bottom. Each ``Rule`` has a name, the config category that switches it on or off, the
token kind it produces, a regular expression (with an optional ``(?P<v>...)`` group: only that part
is masked, the rest is context that stays), an optional validator, and samples that must and must not
match. ``tests/test_catalogue.py`` checks every sample, so a rule cannot silently drift.

Order matters: rules are tried only at the start of a word (a position after a character other than
``[A-Za-z0-9]``), and there the first rule in this table that matches (and that its validator does not
reject) wins. So specific rules (tokens, ARNs, endpoint hostnames, keyed
values) come before generic ones (bare IDs, IP addresses). A rule's match is consumed whole, which is
why an ARN or a hostname is never split by another rule.

The masked value is the ``(?P<v>...)`` group if the rule has one, else everything before the
``(?P<t>...)`` group if it has that, else the whole match. A rule with ``pair_kind`` may match a
second value, its ``(?P<p>...)`` group (a secret key right after its key ID). A rule with ``items``
matches a list (``"TableNames": ["a", "b"]``): each match of ``items`` inside the value is a value of
its own, judged and masked on its own.

A validator returns ``MASK`` (mask the value), ``KEEP`` (recognised, left verbatim, and still
consumed so no other rule carves it up) or ``REJECT`` (not this rule; other rules get a try).

Each rule also states where it can start, for the Hyperscan prefilter (prefilter.py): ``anchors``,
which every match begins with (rules that begin with ``words(...)`` get those words), or, for
hostnames, ``host_anchors``, suffixes every match contains. tests/test_prefilter.py holds every rule
to its anchors at every position of the corpora.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache

from . import csvview, textmarks


class Verdict(Enum):
    MASK = "mask"
    KEEP = "keep"
    REJECT = "reject"


Validator = Callable[[str, str, int], Verdict]
"""(value, whole text, start offset of the value) -> verdict."""


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    kind: str
    regex: str
    description: str
    must_match: tuple[tuple[str, str], ...]
    """(text, the value that must be masked in it)."""
    must_not_match: tuple[str, ...]
    validate: Validator | None = None
    kind_of: Callable[[str], str] | None = None
    """Refines the token kind from the matched value (ARN service, hostname suffix)."""
    category_of: Callable[[str], str] | None = None
    """Refines the category from the token kind (an ``RDS_HOST`` is ``rds``); needs ``kind_of``."""
    pair_kind: str | None = None
    """If set, the ``(?P<p>...)`` group, when it matched, is a second value of this kind."""
    items: str | None = None
    """If set, the value is a list: each match of this regex inside it (its ``(?P<v>...)`` group, else
    the whole match) is a value of its own, which the validator judges on its own."""
    kinds: tuple[str, ...] = field(default=())
    """Every kind ``kind_of`` can return (the token grammar is built from these)."""
    anchors: tuple[str, ...] = field(default=())
    """The prefilter contract (see prefilter.py): every match of this rule *begins* with a match of one
    of these regexes (plain syntax that Hyperscan and ``re`` read alike: no lookaround, no capture
    groups). A rule whose regex begins with ``words(...)`` gets those words unless it names tighter
    anchors. Hyperscan reports one start (the leftmost) per anchor and end offset, so an anchor must
    not match two ways that end at the same place: alternatives that can (a word and a longer word
    ending with it) go in separate anchors. An anchor must have a bounded width (prefilter.py reads
    that far past each window). Measure ``make bench-engine`` after adding one: a few shapes (a bare
    ``[0-9a-f]{64}``) make Hyperscan's scan of all text several times slower."""
    host_anchors: tuple[str, ...] = field(default=())
    """For hostname rules, instead of ``anchors``: literals of which every match *contains* one, with
    only ``HOST_CHARS`` from the rule's start up to it, where the rule starts a run of ``HOST_CHARS``."""
    echo: bool = False
    """What this rule masks is evidence enough to mask the same name wherever else it stands in the
    request (echo.py): true for specific keys, URIs, list-buckets and access-log formats and flags;
    false for prose, lone ``aws s3 ls`` lines, generic keys (DBName, identifier) and account IDs."""
    echo_when: Callable[[str, str, int], bool] | None = None
    """For a rule not marked ``echo``: (value, text, start) -> whether this match is evidence enough to
    echo (an ``aws s3 ls`` line that is part of a listing, not a lone one)."""

    def __post_init__(self) -> None:
        if not self.anchors and not self.host_anchors:
            lead = next((w for rx, w in _WORD_GROUPS.items() if self.regex.startswith(rx)), None)
            if lead is None:
                raise ValueError(f"rule {self.name!r} has no prefilter anchors")
            object.__setattr__(self, "anchors", tuple(re.escape(w) for w in lead))

    def all_kinds(self) -> tuple[str, ...]:
        return (self.kind, *self.kinds, *((self.pair_kind,) if self.pair_kind else ()))

    def classify(self, value: str) -> tuple[str, str]:
        """(category, token kind) of a matched value."""
        kind = self.kind_of(value) if self.kind_of else self.kind
        return (self.category_of(kind) if self.category_of else self.category), kind


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------

# Every regex starts with a literal or a character class and checks what precedes it with a
# lookbehind placed *after* that first character: the regex engine then rejects a non-matching rule
# on its first character, which is what makes one combined pass fast. The scanner only tries rules at
# word starts, so "not preceded by a letter or digit" holds already; lookbehinds add the rest. (The
# scanner also treats JSON escapes such as "\n" as word ends; see scanner.py.)
END = r"(?![A-Za-z0-9_])"
OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
REGION = r"(?:[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9])"
PARTITION = r"aws(?:-cn|-us-gov|-iso(?:-[a-z])?)?"
BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
RDS_ID = r"[a-z][a-z0-9-]{0,62}"
HEX_ID = r"(?:[0-9a-f]{17}|[0-9a-f]{8})"
DOTTED_QUAD = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"  # the start of every IPv4 address (an anchor)
ISO_TIME_TAIL = r"-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
ISO_TIME = "[0-9]{4}" + ISO_TIME_TAIL  # 2024-01-15T10:30:45.123+00:00
LS_TIME_TAIL = r"-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} "
LS_TIME = "[0-9]{4}" + LS_TIME_TAIL  # `aws s3 ls`: "2024-01-15 10:30:45 "
ACCESS_LOG_TIME = r"\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:"  # S3 server access log: "[06/Feb/2024:"
# A JSON-style escape ("\n", "\t", ...) reaches the rules as a backslash and NULs (scanner.py).
TAB = r"(?:\t|\\\x00)"
"""A tab, also escaped."""
LINE_END = r"[ \t]*(?:\r?\n|\\\x00|\Z|\\?[\"'])"
"""The end of a line (after trailing blanks; also escaped), or of the quoted string that holds it."""

# Possessive quantifiers (Python 3.11+) keep the regex engine from backtracking into a run it has
# already matched. Every run below is followed by a character outside its class, so on Python 3.10
# a plain greedy run finds the same matches, only more slowly.
POSSESSIVE = "+" if sys.version_info >= (3, 11) else ""


def run(char_class: str, at_least_one: bool = False) -> str:
    """``char_class`` repeated (possessively where the regex engine supports it)."""
    return char_class + ("+" if at_least_one else "*") + POSSESSIVE


# A key, then ":" or "=", then maybe a list, then maybe a quote and blanks inside it (" 4839...",
# "\tname": the value is the same to a reader; an escaped tab is a backslash and NULs, see TAB). No two
# runs of blanks meet: when the value after them does not match, the regex engine has one way to give
# the blanks back, not one per split between two runs (that was quadratic in the run's length).
ASSIGN = (
    # (a list's "[", or DynamoDB JSON's typed value: "bucket": {"S": "acme-logs"})
    r"[\"']?"
    + run(r"\s")
    + "(?:=>|[:=])"  # (=>: a PHP or Perl array, a Ruby hash, a Logstash setting)
    + run(r"\s")
    + r"(?:\["
    + run(r"\s")
    + r"|\{"
    + run(r"\s")
    + r"[\"'][SN][\"']"
    + run(r"\s")
    + ":"
    + run(r"\s")
    + r")?"
    r"(?:[\"'](?:[ \t]|\\\x00{1,5})*" + POSSESSIVE + ")?"
)

BLANK = r"\t-\r\x1c-\x20?"
"""A character of ``\\s`` as Hyperscan reads the text, for the body of an anchor's character class: the
ASCII blanks, and "?", which stands for every character outside ASCII (prefilter.py)."""
AFTER_KEY = "\"'" + BLANK + ":="
"""What can follow a key that ``ASSIGN`` follows (a class body, as for ``BLANK``)."""


def word_anchors(candidates: tuple[str, ...], followers: str) -> tuple[str, ...]:
    """Anchors for a rule that begins with ``words(candidates)`` and needs a character of the class body
    ``followers`` right after the word: tighter than the words alone, so the scanner skips, without
    trying the rule, the words after which it cannot go on ("databases", "the database.")."""
    return tuple(re.escape(word) + f"[{followers}]" for word in candidates)


# the names a secret access key's key ends in, after a prefix: snake or kebab case after "_" or "-",
# camel case after a lower-case letter or digit
_SECRET_SNAKE = "SECRET_ACCESS_KEY|secret_access_key|secret-access-key|SECRET_KEY|secret_key"
_SECRET_CAMEL = "SecretAccessKey|SecretKey"
_SECRET_SUFFIX_KEY = (
    r"[A-Za-z][A-Za-z0-9_-]{0,40}(?:[_-](?:" + _SECRET_SNAKE + ")|[a-z0-9](?:" + _SECRET_CAMEL + "))"
)
"""A key that ends in a secret access key's name, after a prefix (see the rule secret_access_key_suffix)."""
WORD_GUARDS: tuple[str, ...] = (
    r"[A-Za-z][A-Za-z0-9]{0,40}Bucket",
    _SECRET_SUFFIX_KEY,
    "[0-9]{3,4}[ \u00a0\u2007\u2009\u202f][0-9]{3}",  # an account ID in digit groups
    r"[Aa][Rr][Nn]\s",  # an ARN with blanks around its colons
    r"[0-9]{1,3}\][0-9a-f]{32}",  # a Lambda log stream of a published version: [12]<32 hex>
)
"""Regexes for words that a rule may start with but that begin with no literal of ``LEAD_WORDS``
(a camel-case key ending in "Bucket"): the ``words`` scanner never skips over these either."""
LEAD_WORDS: set[str] = set()
"""Every literal a rule can start with (filled by ``words``): the scanner never skips over these."""
_WORD_GROUPS: dict[str, tuple[str, ...]] = {}
"""Each regex made by ``words`` -> its literals (a rule that begins with one gets them as anchors)."""
HOST_CHARS = "A-Za-z0-9.-"
"""What a hostname is made of, as the body of a character class (see ``Rule.host_anchors``)."""


def literal_trie(
    candidates: list[str] | tuple[str, ...] | set[str], leaf: Callable[[str], str] | None = None
) -> str:
    """A regex matching any of ``candidates`` as a trie of literals (longer words tried first).

    ``leaf(word)`` is appended where a word ends (e.g. a lookbehind over the whole word).
    """
    trie: dict[str, dict] = {}
    for w in candidates:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict], prefix: str) -> str:
        alts = [re.escape(ch) + emit(child, prefix + ch) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            alts.append(leaf(prefix) if leaf else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(trie, "")


def words(candidates: list[str] | tuple[str, ...], not_after: str = "[A-Za-z0-9_]") -> str:
    """Match one of the literal ``candidates`` not preceded by ``not_after`` (a one-character class).

    Compiles to a character class of first letters, then a trie of the rest with, at each word's end,
    a lookbehind over the whole word: a rule built on it is rejected on its first character, and the
    engine compares literals, not alternatives. Longer words are preferred.
    """
    LEAD_WORDS.update(candidates)

    def leaf(word: str) -> str:
        return f"(?<!{not_after}{re.escape(word)})"

    by_first: dict[str, list[str]] = {}
    for w in candidates:
        by_first.setdefault(w[0], []).append(w)
    firsts = "".join(re.escape(ch) for ch in sorted(by_first))
    groups = [
        f"(?<={re.escape(ch)})" + literal_trie([w[1:] for w in ws], lambda rest, ch=ch: leaf(ch + rest))
        for ch, ws in sorted(by_first.items())
    ]
    regex = f"[{firsts}](?:{'|'.join(groups)})"
    _WORD_GROUPS[regex] = tuple(candidates)
    return regex


def one_of(candidates: list[str] | tuple[str, ...]) -> str:
    """A plain alternation of literals (for anchors)."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(candidates, key=lambda w: (-len(w), w))) + ")"


# EC2-family resource ID prefixes -> token kind. Longest prefix first in the regex.
EC2_PREFIXES: dict[str, str] = {
    "i": "EC2",
    "ami": "AMI",
    "aki": "AKI",
    "ari": "ARI",
    "vol": "EBS_VOL",
    "snap": "SNAPSHOT",
    "import-ami": "IMPORT_AMI",
    "import-snap": "IMPORT_SNAP",
    "sg": "SECURITY_GROUP",
    "sgr": "SG_RULE",
    "subnet": "SUBNET",
    "vpc": "VPC",
    "eni": "ENI",
    "eni-attach": "ENI_ATTACH",
    "igw": "IGW",
    "eigw": "EIGW",
    "nat": "NAT_GW",
    "rtb": "ROUTE_TABLE",
    "rtbassoc": "RTB_ASSOC",
    "acl": "NACL",
    "aclassoc": "NACL_ASSOC",
    "eipalloc": "EIP_ALLOC",
    "eipassoc": "EIP_ASSOC",
    "vpce": "VPC_ENDPOINT",
    "vpce-svc": "VPCE_SERVICE",
    "pcx": "VPC_PEERING",
    "tgw": "TGW",
    "tgw-attach": "TGW_ATTACH",
    "tgw-rtb": "TGW_ROUTE_TABLE",
    "vgw": "VGW",
    "cgw": "CGW",
    "vpn": "VPN",
    "dopt": "DHCP_OPTIONS",
    "lt": "LAUNCH_TEMPLATE",
    "fs": "EFS",
    "fsmt": "EFS_MOUNT",
    "fsap": "EFS_ACCESS_POINT",
    "key": "KEY_PAIR",
    "r": "RESERVATION",
    "pl": "PREFIX_LIST",
    "cr": "CAPACITY_RESERVATION",
    "dedicated-host": "DEDICATED_HOST",
    "h": "DEDICATED_HOST",
    "fl": "FLOW_LOG",
    "sir": "SPOT_REQUEST",
    "sfr": "SPOT_FLEET",
    "fleet": "EC2_FLEET",
    "elastic-ip": "ELASTIC_IP",
    "export-i": "EXPORT_TASK",
    "ipam": "IPAM",
    "ipam-pool": "IPAM_POOL",
    "vpc-flow-log": "FLOW_LOG",
    "vpc-cidr-assoc": "VPC_CIDR_ASSOC",
    "subnet-cidr-assoc": "SUBNET_CIDR_ASSOC",
    "tgw-mcast-domain": "TGW_MCAST_DOMAIN",
    "lgw": "LOCAL_GW",
    "ami-copy": "AMI",
    "snap-copy": "SNAPSHOT",
    "dopt-assoc": "DHCP_ASSOC",
}
# Associations, attachments and the rest of the EC2 API's ID prefixes, and a few services that share
# the shape (SSM, Outposts, Route 53 Resolver). Their resources came after EC2's move to long IDs
# (2016-2018), so only 17 hex follow: "pg-20240115" (a dump's name) is not a placement group.
EC2_LONG_PREFIXES: dict[str, str] = {
    "iip-assoc": "IIP_ASSOC",
    "tgw-connect-peer": "TGW_CONNECT_PEER",
    "tgw-ptb": "TGW_POLICY_TABLE",
    "ipam-scope": "IPAM_SCOPE",
    "ipam-res-disco": "IPAM_DISCOVERY",
    "ipam-res-disco-assoc": "IPAM_DISCOVERY_ASSOC",
    "ipv4pool-ec2": "IP_POOL",
    "ipv6pool-ec2": "IP_POOL",
    "ipv4pool-coip": "IP_POOL",
    "cvpn-endpoint": "CLIENT_VPN",
    "cvpn-assoc": "CLIENT_VPN_ASSOC",
    "tmf": "MIRROR_FILTER",
    "tmfr": "MIRROR_FILTER_RULE",
    "tms": "MIRROR_SESSION",
    "tmt": "MIRROR_TARGET",
    "eice": "EIC_ENDPOINT",
    "cagw": "CARRIER_GW",
    "pg": "PLACEMENT_GROUP",
    "crf": "CAPACITY_FLEET",
    "hr": "HOST_RESERVATION",
    "iew": "EVENT_WINDOW",
    "nip": "INSIGHTS_PATH",
    "nia": "INSIGHTS_ANALYSIS",
    "nis": "INSIGHTS_SCOPE",
    "nisa": "INSIGHTS_SCOPE_ANALYSIS",
    "vai": "VERIFIED_ACCESS",
    "vagr": "VERIFIED_ACCESS_GROUP",
    "vae": "VERIFIED_ACCESS_ENDPOINT",
    "vatp": "VERIFIED_ACCESS_TRUST",
    "lgw-rtb": "LOCAL_GW_ROUTE_TABLE",
    "lgw-vif": "LOCAL_GW_VIF",
    "lgw-vif-grp": "LOCAL_GW_VIF_GROUP",
    "lgw-vif-grp-assoc": "LOCAL_GW_ASSOC",
    "lgw-vpc-assoc": "LOCAL_GW_ASSOC",
    "scr": "SUBNET_CIDR_RESERVATION",
    "replacevol": "REPLACE_VOLUME_TASK",
    "eni-perm": "ENI_PERMISSION",
    "export-ami": "EXPORT_TASK",
    "import-i": "IMPORT_TASK",
    "afi": "FPGA_IMAGE",
    "agfi": "FPGA_IMAGE",
    "egpu": "ELASTIC_GPU",
    "op": "OUTPOST",
    "mi": "SSM_MANAGED_INSTANCE",
    "mw": "SSM_MAINTENANCE_WINDOW",
    "pb": "SSM_PATCH_BASELINE",
    "rslvr-in": "RESOLVER_ENDPOINT",
    "rslvr-out": "RESOLVER_ENDPOINT",
    "rslvr-rr": "RESOLVER_RULE",
    "rslvr-rrassoc": "RESOLVER_RULE_ASSOC",
}
EC2_SHORT_PREFIXES = dict(EC2_PREFIXES)
"""The prefixes whose IDs may also have 8 hex (resources from before 2016)."""
EC2_PREFIXES.update(EC2_LONG_PREFIXES)


def any_case(literal: str) -> str:
    """``literal`` as a regex that matches it in any mix of upper and lower case (for rules and for
    anchors: Hyperscan and ``re`` read the character classes alike)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in literal)


def _by_first_letter(prefixes: list[str]) -> dict[str, list[str]]:
    by_first: dict[str, list[str]] = {}
    for p in sorted(prefixes, key=lambda p: (-len(p), p)):
        by_first.setdefault(p[0], []).append(p)
    return dict(sorted(by_first.items()))


def _any_case_prefix_rests(prefixes: list[str]) -> str:
    """The EC2 ``prefixes`` in any case, longest first, after their first letter (already consumed:
    a lookbehind picks each letter's group), each with its "-"."""
    groups = [
        f"(?<=[{c.upper()}{c}])(?:" + "|".join(any_case(p[1:] + "-") for p in ps) + ")"
        for c, ps in _by_first_letter(prefixes).items()
    ]
    return "(?:" + "|".join(groups) + ")"


def _ec2_any_case_regex() -> str:
    """EC2 IDs in any case but not all in lower case (those are ec2_resource_id's, found first).

    A class of the prefixes' first letters, in either case (the rule is rejected on its first
    character), a check that no letter or digit stands before, then a lookahead that refuses the
    lower-case form (ec2_resource_id's language, after the first letter): an ID here has one shape,
    so what is left has an upper-case letter; then the prefixes in any case and 8 or 17 hex digits."""
    by_first = _by_first_letter(list(EC2_PREFIXES))
    firsts = "".join(f"{c.upper()}{c}" for c in by_first)
    rests = [
        f"(?<={c})(?:" + "|".join(re.escape(p[1:] + "-") for p in ps) + ")" for c, ps in by_first.items()
    ]
    lower = "(?:" + "|".join(rests) + r")(?:[0-9a-f]{17}|[0-9a-f]{8})(?![A-Za-z0-9])"
    return (
        f"[{firsts}](?<![A-Za-z0-9].)(?!{lower})(?:"
        + _any_case_prefix_rests(list(EC2_SHORT_PREFIXES))
        + "(?:[0-9A-Fa-f]{17}|[0-9A-Fa-f]{8})|"
        + _any_case_prefix_rests(list(EC2_LONG_PREFIXES))
        + "[0-9A-Fa-f]{17})(?![A-Za-z0-9])"
    )


def not_lower_case(literal: str) -> str:
    """``literal`` in any mix of case with at least one upper-case letter, as a regex (for Hyperscan
    anchors too): one alternative per position of the first upper-case letter."""
    alts = [
        re.escape(literal[:i]) + c.upper() + any_case(literal[i + 1 :])
        for i, c in enumerate(literal)
        if c.isalpha()
    ]
    return "(?:" + "|".join(alts) + ")"


def _ec2_any_case_anchor(prefix: str) -> str:
    """Where an EC2 ID with an upper-case letter can start: the prefix with one, or the prefix in lower
    case and an upper-case hex digit among the (at most 17) digits; the second form ends at the first
    such digit, so Hyperscan reports each start once."""
    return (
        "(?:" + not_lower_case(prefix) + "-[0-9A-Fa-f]{8}|" + re.escape(prefix + "-") + "[0-9a-f]{0,16}[A-F])"
    )


ACCESS_KEY_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA")
# (ACCA: also a service-specific credential's ID, ACCA and 17 more: git credentials for CodeCommit)
IAM_ID_PREFIXES = ("AIDA", "AROA", "AGPA", "AIPA", "ANPA", "ANVA", "APKA", "ASCA", "ACCA")


def _ec2_uuid_kind(value: str) -> str:
    return EC2_PREFIXES[value.split("-", 1)[0]]


def _ec2_kind(value: str) -> str:
    return EC2_PREFIXES[value.rsplit("-", 1)[0]]


_EC2_ID = re.compile(
    "(?:(?:"
    + "|".join(map(re.escape, EC2_SHORT_PREFIXES))
    + ")-"
    + HEX_ID
    + "|(?:"
    + "|".join(map(re.escape, EC2_LONG_PREFIXES))
    + ")-[0-9a-f]{17})"
)
# what a timestamped line may end in that is not a listed bucket (see _ls_bucket_verdict)
_NOT_LISTED_NAME = re.compile(
    r"[0-9.-]+|v[0-9][0-9.]*|[0-9.]+[a-z]{1,3}|[0-9a-f]{7,40}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|"
    + _EC2_ID.pattern
)


# ARN service (and resource type) -> token kind. Anything else is a generic ARN.
ARN_KINDS: dict[str, str] = {
    "iam:role": "IAM_ROLE_ARN",
    "iam:user": "IAM_USER_ARN",
    "iam:group": "IAM_GROUP_ARN",
    "iam:policy": "IAM_POLICY_ARN",
    "iam:instance-profile": "IAM_PROFILE_ARN",
    "iam:root": "IAM_ROOT_ARN",
    "sts:assumed-role": "STS_ROLE_ARN",
    "sts:federated-user": "STS_USER_ARN",
    "lambda": "LAMBDA_ARN",
    "s3": "S3_ARN",
    "rds": "RDS_ARN",
    "ec2": "EC2_ARN",
    "dynamodb": "DYNAMODB_ARN",
    "sns": "SNS_ARN",
    "sqs": "SQS_ARN",
    "kms": "KMS_ARN",
    "secretsmanager": "SECRET_ARN",
    "ssm": "SSM_ARN",
    "elasticloadbalancing": "ELB_ARN",
    "ecs": "ECS_ARN",
    "eks": "EKS_ARN",
    "ecr": "ECR_ARN",
    "logs": "LOG_GROUP_ARN",
    "cloudformation": "CFN_STACK_ARN",
    "acm": "ACM_CERT_ARN",
    "states": "STEP_FN_ARN",
    "kinesis": "KINESIS_ARN",
    "firehose": "FIREHOSE_ARN",
    "es": "ES_DOMAIN_ARN",
    "elasticache": "ELASTICACHE_ARN",
    "route53": "ROUTE53_ARN",
    "apigateway": "APIGW_ARN",
    "execute-api": "APIGW_ARN",
    "cloudfront": "CLOUDFRONT_ARN",
    "events": "EVENTS_ARN",
    "sagemaker": "SAGEMAKER_ARN",
    "glue": "GLUE_ARN",
    "athena": "ATHENA_ARN",
    "redshift": "REDSHIFT_ARN",
    "batch": "BATCH_ARN",
    "codecommit": "CODECOMMIT_ARN",
    "codebuild": "CODEBUILD_ARN",
    "elasticfilesystem": "EFS_ARN",
    "cognito-idp": "COGNITO_ARN",
    "wafv2": "WAF_ARN",
}

_ARN_RE = re.compile(
    r"arn:[^:]+:(?P<svc>[^:]*):(?P<region>[^:]*):(?P<acct>[^:]*):(?P<res>(?P<rtype>[^/:]*).*)", re.S
)
_TYPE_WILDCARD = re.compile(r"[a-z][a-z-]*[/:]\*")


@lru_cache(maxsize=1)  # _arn_verdict and then _arn_kind parse the same ARN
def _parse_arn(value: str) -> re.Match[str] | None:
    return _ARN_RE.match(value)


def _arn_kind(value: str) -> str:
    m = _parse_arn(value)
    if m is None:  # pragma: no cover - the catalogue regex guarantees the shape
        return "ARN"
    svc = m["svc"]
    return ARN_KINDS.get(f"{svc}:{m['rtype']}") or ARN_KINDS.get(svc) or "ARN"


def _arn_verdict(value: str, text: str, start: int) -> Verdict:
    """AWS-managed ARNs (account ``aws``, e.g. managed policies) and pure wildcards identify nobody:
    they are the same in every account, so they stay readable for the model."""
    m = _parse_arn(value)
    if m is None:  # pragma: no cover
        return Verdict.MASK
    acct, res = m["acct"], m["res"]
    if acct == "aws":
        return Verdict.KEEP
    if acct in ("", "*") and (res == "*" or (m["svc"] != "s3" and _TYPE_WILDCARD.fullmatch(res))):
        return Verdict.KEEP  # "arn:aws:ec2:*:*:instance/*" names no resource; an S3 resource is a bucket
    return Verdict.MASK


ARN_GAP = r"[ \t]{0,3}(?:\r?\n[ \t]{0,40})?:[ \t]{0,3}(?:\r?\n[ \t]{0,40})?"
"""A colon between two ARN fields, with blanks around it or a line break after or before it."""
_BLANKS = re.compile(r"\s+")


def _arn_spaced_kind(value: str) -> str:
    return _arn_kind(_BLANKS.sub("", value).lower())


_BUCKET_FORBIDDEN = re.compile(
    r"\.\.|\.-|-\.|^xn--|^sthree-|^amzn-s3-demo-|-s3alias$|--ol-s3$|\.mrap$|--x-s3$"
)
_IPV4_SHAPE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def _valid_bucket(value: str) -> bool:
    return 3 <= len(value) <= 63 and not _BUCKET_FORBIDDEN.search(value) and not _IPV4_SHAPE.fullmatch(value)


def _bucket_verdict(value: str, text: str, start: int) -> Verdict:
    if not _valid_bucket(value) or _code_reference(value, text, start) or _yaml_key(value, text, start):
        return Verdict.REJECT
    return Verdict.MASK


def _yaml_key(value: str, text: str, start: int) -> bool:
    """Whether ``value`` is a YAML mapping's key (a colon and a blank or the line's end after it), as
    under a key that holds a structure (``Table:`` / ``AttributeDefinitions:``, a kubeconfig's
    ``cluster:`` / ``certificate-authority-data:``)."""
    end = start + len(value)
    return text[end : end + 1] == ":" and text[end + 1 : end + 2] in ("", " ", "\t", "\n", "\r")


# Code that passes a name it holds, not a name: a call or subscript (aws.String(...), os.environ[...],
# KMeans(...)), an attribute of an object (self.bucket, this.tableName, process.env.TABLE_NAME), or a
# bare identifier as a call's argument or an object's member (describe_table(TableName=table_name),
# { TableName: tableName }). A name written out is quoted there.
_CODE_RECEIVER = re.compile(
    r"(?:self|this|cls|os|sys|process|props|ctx|args|opts|options|params|settings)\.[A-Za-z_]"
)
_CODE_ARGUMENT_BEFORE = re.compile(r"[(,{][ \t]*[A-Za-z_$][A-Za-z0-9_$]*[ \t]*[=:][ \t]*\Z")
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_CODE_WORDS = frozenset(
    ["new", "null", "true", "false", "none", "nil", "undefined", "await", "yield", "return"]
)


def _code_reference(value: str, text: str, start: int) -> bool:
    end = start + len(value)
    if text[end : end + 1] in ("(", "[") or _CODE_RECEIVER.match(value) or value.lower() in _CODE_WORDS:
        return True
    return (
        _IDENTIFIER.fullmatch(value) is not None
        and text[start - 1 : start] not in QUOTES
        and _CODE_ARGUMENT_BEFORE.search(text, max(0, start - 80), start) is not None
    )


def _ec2_any_case_kind(value: str) -> str:
    return _ec2_kind(value.lower())


def _arn_any_case_kind(value: str) -> str:
    return _arn_kind(value.lower())


def _arn_any_case_verdict(value: str, text: str, start: int) -> Verdict:
    """An ARN written in upper or mixed case (``ARN:AWS:IAM::…:ROLE/X``): what its lower-case form
    would get (AWS-managed and pure wildcards stay)."""
    return _arn_verdict(value.lower(), text, start)


_S3_SCHEME_BEFORE = re.compile(r"[Ss]3[Aa]?[Nn]?://\Z")


def _bucket_any_case_verdict(value: str, text: str, start: int) -> Verdict:
    scheme = _S3_SCHEME_BEFORE.search(text, max(0, start - 7), start)
    # a lower-case bucket after a lower-case scheme is the lower-case rule's (it rejected it); after
    # "S3://" (only the scheme upper-case) it is this rule's
    lower_scheme = scheme is None or scheme[0].islower()
    if (value.islower() and lower_scheme) or not any(c.isalpha() for c in value):
        return Verdict.REJECT
    return _bucket_verdict(value.lower(), text, start)


# what follows a bucket's "Name" in list-buckets items, and in a list-objects response (JSON or YAML)
_BUCKET_ITEM_AFTER = re.compile(
    r"[\"']?[ \t]*(?:,\s*|\r?\n\s*)[\"']?(?:CreationDate|BucketRegion|BucketArn|Prefix|Delimiter|MaxKeys|"
    r"EncodingType|KeyCount|Marker|KeyMarker|ContinuationToken|StartAfter)[\"']?\s*:"
)
_BUCKET_LIST_BEFORE = re.compile(r"[\"']Buckets[\"']\s*:\s*\[\s*\{\s*[\"']Name[\"']\s*:\s*[\"']?\Z")
# the keys sorted, as the AWS CLI's YAML output (and jq -S) has them: "Name" after "CreationDate"
_BUCKET_ITEM_BEFORE = re.compile(
    r"[\"']?CreationDate[\"']?[ \t]*:[ \t]*[\"']?"
    + ISO_TIME
    + r"[\"']?[ \t]*,?\s*[\"']?Name[\"']?[ \t]*:[ \t]*[\"']?\Z"
)


_LIST_OBJECTS_TABLE = re.compile(r'\{"ListObjects(?:V2)?": \{"Name": "\Z')


def _listed_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """A ``"Name"`` is a bucket in ``aws s3api list-buckets`` output (an item of the ``"Buckets"``
    list, ``{"Name": ..., "CreationDate": ...}``, or with its keys sorted, as in YAML output) and in a
    list-objects response (``"Name"`` then ``"Prefix"``, ``"MaxKeys"``, ...). The checks look at a few
    characters only."""
    end = start + len(value)
    before = max(0, start - 80)
    if (
        _BUCKET_ITEM_AFTER.match(text, end, end + 60)
        # every "Name" key is tried here; the literal search rules most out before the regex runs
        or (text.find("Buckets", before, start) >= 0 and _BUCKET_LIST_BEFORE.search(text, before, start))
        or (text.find("CreationDate", before, start) >= 0 and _BUCKET_ITEM_BEFORE.search(text, before, start))
        # a list-objects table's "| Name | <bucket> |" row, in the context cliformats.py gives it
        or (text.find("ListObjects", before, start) >= 0 and _LIST_OBJECTS_TABLE.search(text, before, start))
    ):
        return _bucket_verdict(value, text, start)
    return Verdict.REJECT


QUOTES = "\"'`\u2018\u201c"
OPEN_QUOTE = r"(?:``|[\"'`\u2018\u201c(])?"
"""What may open a name quoted in prose: a quote, a backtick, RST's double backticks, a curly quote, or
a parenthesis (Terraform's errors: "creating S3 Bucket (acme-logs): ...", "RDS DB Instance (x)")."""


def prose_list(item: str) -> str:
    """Two or more names of shape ``item`` listed in prose, each maybe quoted: "a, b and c", "a, b,
    or c", "a & b" (the list, for a rule's ``items`` to take apart)."""
    quoted = r"(?:``|[\"'`\u2018\u201c])?" + item + r"(?:``|[\"'`\u2019\u201d])?"
    separator = r"(?:[ \t]{0,4},[ \t]{0,4}(?:(?:and|or)[ \t]{1,4})?|[ \t]{1,4}(?:and|or|&)[ \t]{1,4})"
    return quoted + "(?:" + separator + quoted + "){1,30}"


_PROSE_STOPWORDS = frozenset({"e.g", "i.e", "etc", "vs", "via"})
_LINE_END = re.compile(LINE_END)
_TABLE_ROW_END = re.compile(r" *\|\|" + LINE_END)
# a text-output field, escapes included ("\u00e9" is a backslash and five NULs to the rules)
_FIELD = r"(?:[^\t\r\n\x00\\]|\\[^\x00]|\\\x00{5}){1,128}"
# fields sort by key: [BucketArn, BucketRegion,] CreationDate, Name
_BUCKETS_FIELDS = re.compile(
    r"(?<![A-Za-z0-9_])BUCKETS" + TAB + "(?:" + _FIELD + TAB + "){0,2}" + ISO_TIME + TAB + r"\Z"
)
# the head of an S3 server access log line: bucket owner, bucket, [time (a line may carry a prefix:
# "> ", a grep file name, a CloudWatch timestamp)
_ACCESS_LOG_HEAD = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64} (" + BUCKET + ") " + ACCESS_LOG_TIME)


# what follows "named" or "called" that is no name ("a bucket named after the team", "called for")
_NAMED_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "after",
        "for",
        "by",
        "in",
        "on",
        "at",
        "with",
        "as",
        "to",
        "from",
        "that",
        "this",
        "it",
        "its",
        "so",
        "and",
        "or",
        "but",
        "is",
        "was",
        "be",
        "up",
        "out",
        "like",
        "something",
        "whatever",
        "what",
        "which",
        "according",
        "based",
        "differently",
        "accordingly",
        "just",
        "only",
    }
)
_NAMED_BEFORE = re.compile(r"(?<![A-Za-z])(?:named|called)[ \t]+\Z")


def _looks_like_name(value: str, text: str, start: int) -> bool:
    quoted = start > 0 and text[start - 1] in QUOTES
    if value in _PROSE_STOPWORDS:
        return False
    if quoted or any(c in value for c in "-.0123456789"):
        return True
    # a plain word right after "named"/"called" is the name ("the DB cluster named orders")
    return value not in _NAMED_STOPWORDS and _NAMED_BEFORE.search(text, max(0, start - 12), start) is not None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _prose_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    # (not a date: "the bucket" at a line's end, then an `aws s3 ls` listing, whose own rule reads it)
    if (
        _valid_bucket(value)
        and _looks_like_name(value, text, start)
        and not _ISO_DATE.fullmatch(value)
        and not english_compound(value)
        and not _CLI_OPERATION.fullmatch(value)
    ):
        return Verdict.MASK
    return Verdict.REJECT


def _access_log_uri_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """A path-style request URI (``"GET /<bucket>/key ..."``) names a bucket only in an S3 server
    access log line, and there it is the line's own bucket field. The look back is bounded (a log
    line's fields before the URI, key included, fit in it), so it adds a constant per candidate."""
    lo = max(0, start - 4096)
    line = max(text.rfind("\n", lo, start), text.rfind("\x00", lo, start)) + 1
    if line == 0 and lo > 0:
        return Verdict.REJECT
    head = _ACCESS_LOG_HEAD.search(text, line, start)
    return _bucket_verdict(value, text, start) if head and head[1] == value else Verdict.REJECT


# Owner or Grantee opening an object (JSON "Owner": {, a YAML mapping, XML <Owner>), or a
# CanonicalUser type
_OWNER_EVIDENCE = re.compile(
    r"(?<![A-Za-z0-9_])(?:[\"']?(?:[Oo]wner|[Gg]rantee)[\"']?[ \t]*[:=][ \t]*(?:\{|\r?\n)"
    r"|<(?:Owner|Grantee)[\s>])|CanonicalUser"
)
_ID_COLUMN = re.compile(r"\|\s*ID\s*\|")
_TABLE_ROW_START = re.compile(r"[ \t]*\|\|")


def _owner_id_verdict(value: str, text: str, start: int) -> Verdict:
    """A bare "ID" key is everywhere (docker's container IDs are 64 hex too); it names a canonical
    user only inside an Owner or Grantee, whose key shows within a few lines before (for a JSON body,
    the context has the enclosing key: jsonbody.py), or next to a CanonicalUser type."""
    if _OWNER_EVIDENCE.search(text, max(0, start - 200), start + len(value) + 60):
        return Verdict.MASK
    return Verdict.REJECT


def _table_id_verdict(value: str, text: str, start: int) -> Verdict:
    """A cell (``|`` before it, after padding) of an AWS CLI table row (the row starts with ``||``:
    not a markdown table) under an ``ID`` column header nearby."""
    i = start - 1
    while i >= 0 and text[i] == " ":
        i -= 1
    if i < 0 or text[i] != "|":
        return Verdict.REJECT
    lo = max(0, start - 400)  # (bounded looks: a constant per candidate)
    line = text.rfind("\n", lo, start) + 1
    if (line == 0 and lo > 0) or not _TABLE_ROW_START.match(text, line):
        return Verdict.REJECT
    return Verdict.MASK if _ID_COLUMN.search(text, max(0, start - 1000), start) else Verdict.REJECT


_CREATION_DATE_ROW = re.compile(
    r"\|\|\s*CreationDate\s*\|\s*" + ISO_TIME + r"\s*\|\|" + LINE_END + r"[ \t]*\Z"
)


def _table_item_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """A one-bucket ``list-buckets --output table`` prints key/value rows: the ``Name`` row follows
    the ``CreationDate`` row (keys sort alphabetically)."""
    row = text.rfind("\n", max(0, start - 200), start) + 1  # this row's start; the one above ends there
    if row and _CREATION_DATE_ROW.search(text, max(0, row - 200), row):
        return _bucket_verdict(value, text, start)
    return Verdict.REJECT


def _cli_listed_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """``aws s3api list-buckets`` in text output (``BUCKETS<tab>[region<tab>]<date><tab><name>`` to the
    end of the line) or table output (``|| <date> | <name> ||``: the row must end there). The fields
    before the name are matched in a bounded window, so each candidate costs a constant."""
    if text[start - 1] in "\t\x00":
        if not _BUCKETS_FIELDS.search(text, max(0, start - 400), start):
            return Verdict.REJECT
        if not _LINE_END.match(text, start + len(value)):
            return Verdict.REJECT
    elif not _TABLE_ROW_END.match(text, start + len(value)):
        return Verdict.REJECT
    return _bucket_verdict(value, text, start)


def _ls_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """``aws s3 ls`` prints one ``<date> <time> <bucket>`` line per bucket. The date must begin its
    line (after indentation at most), a JSON string or a query argument's value, and the name must
    look like a name: a log line that ends in a plain word after its timestamp ("... 12:00:00 ready")
    is not a bucket listing, and a real bucket name, being globally unique, nearly always has a
    hyphen, dot or digit. What else a log line may end in is not a bucket: a number or reading, a
    version, a short git hash, an EC2 ID (left to the EC2 rule)."""
    i = start - len("2024-01-15 10:30:45 ") - 1  # (the LS_TIME before the name)
    while i >= 0 and text[i] in " \t":
        i -= 1
    # "\x00": a "\n" escape as the scanner sees it; a quote: the start of a string (or its key); "=":
    # the start of a query argument's value (channels.py scans it after its name and "=")
    if i >= 0 and text[i] not in "\n\x00\"'=":
        return Verdict.REJECT
    if _NOT_LISTED_NAME.fullmatch(value) or not any(c in value for c in "-.0123456789"):
        return Verdict.REJECT
    return _bucket_verdict(value, text, start)


_LS_NEWLINE = r"[ \t]*(?:\r?\n|\\+[\x00n])[ \t]*"  # a line break, also escaped, with blanks around
_LS_LINE_BEFORE = re.compile(
    r"(?:^|(?<=[\n\x00\"'])|(?<=\\n))[ \t]*[0-9]{4}" + LS_TIME_TAIL + "(" + BUCKET + ")" + _LS_NEWLINE + r"\Z"
)
_LS_LINE_AFTER = re.compile(
    _LS_NEWLINE + "[0-9]{4}" + LS_TIME_TAIL + "(" + BUCKET + r")(?=[ \t]*(?:\r?\n|\\+[\x00n]|\\?[\"']|\Z))"
)
_LS_COMMAND = re.compile(r"\baws\s+s3\s+ls\b")


def ls_listing(value: str, text: str, start: int) -> bool:
    """Whether an ``aws s3 ls`` line (``_ls_bucket_verdict`` masked its name) has more evidence that it
    lists buckets, enough to echo its name: the line before or after it has the same exact shape with
    a name of its own, or an ``aws s3 ls`` command comes shortly before it. A lone such line may be a
    log line that ends in a host (``10:30:45 web-01``): masked where it stands, not echoed. ``text``
    is the raw text (line breaks may be JSON escapes) or the scanner's view of it."""
    date = start - len("2024-01-15 10:30:45 ")
    # (the line after first: one match at a known place, where the line before needs a search)
    return (
        _listed(_LS_LINE_AFTER.match(text, start + len(value)))
        or _listed(_LS_LINE_BEFORE.search(text, max(0, date - 100), date))
        or _LS_COMMAND.search(text, max(0, date - 200), date) is not None
    )


def _listed(line: re.Match[str] | None) -> bool:
    """Whether a neighbouring ``aws s3 ls``-shaped line ends in a name, as ``_ls_bucket_verdict`` asks."""
    return (
        line is not None
        and any(c in line[1] for c in "-.0123456789")
        and not _NOT_LISTED_NAME.fullmatch(line[1])
    )


_NAME_MARK = re.compile(r"[-.0-9]")
# what a generic key's value may be that is not a resource's name: besides _NOT_LISTED_NAME's shapes,
# a region, an instance type (t3.micro, db.r6g.large), a hostname (its own rule masks it whole)
_INSTANCE_CLASS = r"(?:db\.|cache\.)?[a-z][a-z0-9-]*\.(?:nano|micro|small|medium|[0-9]*x?large|metal)"
"""An EC2, RDS or ElastiCache instance class (t3.micro, db.r6g.2xlarge): a size, not a name."""
_NOT_A_RESOURCE_NAME = re.compile(
    REGION
    + "|"
    + _INSTANCE_CLASS
    + r"|.*\.(?:amazonaws\.com(?:\.cn)?|cloudfront\.net|internal|on\.aws|elasticbeanstalk\.com"
    + r"|amazoncognito\.com|amplifyapp\.com|awsapps\.com)"
)
_RDS_RESOURCE_TYPE = re.compile(r"AWS::RDS::DB(?:Instance|Cluster)\b")


def _resource_value_verdict(value: str, text: str, start: int) -> Verdict:
    """A generic key's value (``OutputValue``, ``PhysicalResourceId``) is a resource's name when it
    looks like one: a valid bucket name with a hyphen, dot or digit that is not a number, version,
    hash, ID, region, instance type or hostname."""
    if (
        not _NAME_MARK.search(value)
        or _NOT_LISTED_NAME.fullmatch(value)
        or _NOT_A_RESOURCE_NAME.fullmatch(value)
    ):
        return Verdict.REJECT
    return _bucket_verdict(value, text, start)


def _suffix_key_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    """Under a key that only ends in "bucket" (a token bucket's size, too), not a number or version."""
    return Verdict.REJECT if _NOT_LISTED_NAME.fullmatch(value) else _bucket_verdict(value, text, start)


# hyphenated English before "bucket" ("the read-only bucket", "a cross-account bucket"): no name
_ENGLISH_FIRST = frozenset(
    {
        "pre",
        "non",
        "re",
        "co",
        "cross",
        "multi",
        "per",
        "self",
        "third",
        "first",
        "top",
        "well",
        "read",
        "write",
        "public",
        "private",
        "same",
        "single",
        "one",
        "two",
        "new",
        "old",
        "long",
        "short",
        "high",
        "low",
        "auto",
        "sub",
        "semi",
        "anti",
        "de",
        "un",
        "over",
        "under",
        "in",
        "out",
        "up",
        "down",
        "all",
        "full",
        "half",
        "front",
        "back",
        "end",
        "open",
        "on",
        "off",
        "so",
        "any",
        "much",
        "far",
        "last",
        "next",
    }
)
_ENGLISH_LAST = frozenset(
    {
        "only",
        "level",
        "based",
        "wide",
        "side",
        "enabled",
        "disabled",
        "specific",
        "scoped",
        "owned",
        "managed",
        "hosted",
        "encrypted",
        "replicated",
        "versioned",
        "existing",
        "party",
        "account",
        "region",
        "time",
        "named",
        "facing",
        "like",
        "style",
        "type",
        "sized",
        "run",
        "lived",
    }
)


# hyphenated English of the trade after "S3", "RDS" or "database" in prose ("RDS multi-az", "S3
# server-side encryption", "the database is read-only"): made of these words only, it is no name
# (adjectives and particles only: the nouns names are made of, postgres-replica, event-logs,
# backup-storage, are names)
_COMPOUND_PARTS = (
    _ENGLISH_FIRST
    | _ENGLISH_LAST
    | frozenset(
        [
            "az",
            "replica",
            "replicas",
            "blue",
            "green",
            "part",
            "signed",
            "level",
            "point",
            "date",
            "to",
            "compatible",
            "scaling",
            "fail",
            "enforced",
            "owner",
            "object",
            "server",
            "client",
            "at",
            "rest",
            "by",
        ]
    )
)


def english_compound(value: str) -> bool:
    """Whether ``value`` is hyphenated English of the trade (``multi-az``, ``read-only``): no name in
    prose."""
    lower = value.lower()
    parts = lower.split("-")
    return len(parts) > 1 and (all(part in _COMPOUND_PARTS for part in parts) or lower in _TRADE_TERMS)


# hyphenated terms of the trade that follow "S3", "database" or "DB cluster" in prose: S3's storage
# classes and features, a database's traits
_TRADE_TERMS = frozenset(
    [
        "intelligent-tiering",
        "standard-ia",
        "onezone-ia",
        "one-zone",
        "one-zone-ia",
        "express-one-zone",
        "glacier-ir",
        "deep-archive",
        "bucket-key",
        "access-point",
        "access-points",
        "object-lambda",
        "object-lock",
        "requester-pays",
        "sse-s3",
        "sse-kms",
        "dsse-kms",
        "sse-c",
        "path-style",
        "virtual-hosted",
        "virtual-hosted-style",
        "dual-stack",
        "transfer-acceleration",
        "batch-operations",
        "storage-lens",
        "event-notifications",
        "write-heavy",
        "read-heavy",
        "in-sync",
        "multi-tenant",
        "single-tenant",
        "connection-pool",
        "low-latency",
        "in-memory",
        "key-value",
        "time-series",
        "long-running",
        "zero-downtime",
        "non-prod",
        "non-production",
    ]
)


def distinctive_name(value: str, text: str, start: int) -> bool:
    """Whether a name found in prose is one no sentence would hold by chance, enough to echo it (an
    incident report names the DB in its header, then in backticks in its timeline): a digit in it, or
    three parts or more, and not hyphenated English."""
    return (any(c.isdigit() for c in value) or value.count("-") >= 2) and not english_compound(value)


def _bucket_before_word_verdict(value: str, text: str, start: int) -> Verdict:
    """A name right before the word "bucket" ("the acme-prod-logs bucket") when it looks like a bucket's
    name: a hyphen, dot or digit, not hyphenated English, a number, version, hash, region or host."""
    parts = value.split("-")
    if (
        value in _PROSE_STOPWORDS
        or parts[0] in _ENGLISH_FIRST
        or parts[-1] in _ENGLISH_LAST
        or value.startswith("s3")
    ):
        return Verdict.REJECT
    return _resource_value_verdict(value, text, start)


def _terraform_id(value: str) -> str:
    """After a Terraform resource type: the rest of its address (``.name``, ``["key"]``), then
    ``: ... [id=`` (a plan or apply progress line) or blanks (``terraform import <address> <id>``),
    then ``value`` as the ``v`` group, up to ``]``, ``,`` or the line's end."""
    return (
        r"\.[A-Za-z0-9_-]{1,64}(?:\[[^\]\n]{0,80}\])?"
        + r"(?::[^\n\[]{0,100}\[id=|[\"']?[ \t]+[\"']?)(?P<v>"
        + value
        + r")(?=[\],]|"
        + LINE_END
        + ")"
    )


_TF_IMPORT = re.compile(r"\bimport[ \t]")
"""`terraform import ADDRESS ID` (or `tofu import`, `terragrunt import`) earlier on the line."""


def _terraform_id_verdict(value: str, text: str, start: int) -> Verdict:
    """The ID of a Terraform resource: in apply/plan progress lines (``aws_s3_bucket.x: Creation complete
    after 2s [id=acme-logs]``) or after the address in ``terraform import``; not a token of this
    masker's."""
    if value[:4] == "AWS_" and _TOKEN_SHAPE.fullmatch(value):
        return Verdict.REJECT
    if text[start - 1] != "=":
        line = max(text.rfind("\n", max(0, start - 300), start) + 1, max(0, start - 300))
        if not _TF_IMPORT.search(text, line, start):
            return Verdict.REJECT
    return Verdict.MASK


def _terraform_bucket_verdict(value: str, text: str, start: int) -> Verdict:
    verdict = _terraform_id_verdict(value, text, start)
    return _bucket_verdict(value, text, start) if verdict is Verdict.MASK else verdict


def _terraform_rds_verdict(value: str, text: str, start: int) -> Verdict:
    verdict = _terraform_id_verdict(value, text, start)
    return _rds_key_verdict(value, text, start) if verdict is Verdict.MASK else verdict


def _rds_resource(text: str, start: int, end: int) -> bool:
    """The stack resource around a value is an RDS DB instance or cluster (its ``ResourceType``, a
    bounded look inside the same object)."""
    lo = max(0, start - 300)
    before = text.rfind("{", lo, start)
    after = text.find("}", end, end + 300)
    return _RDS_RESOURCE_TYPE.search(text, max(lo, before), after if after >= 0 else end + 300) is not None


def _rds_resource_value_verdict(value: str, text: str, start: int) -> Verdict:
    if _rds_resource(text, start, start + len(value)):
        return _rds_key_verdict(value, text, start)
    return Verdict.REJECT


# an AWS CLI operation ("aws rds describe-db-instances", "`aws rds create-db-snapshot`"): no name
_CLI_OPERATION = re.compile(
    r"(?:describe|create|delete|modify|reboot|start|stop|restore|add|remove|copy|promote|failover|list|"
    r"wait|download|generate|reset|purchase|authorize|revoke|apply|backtrack|cancel|switchover|register|"
    r"deregister|enable|disable|import|export|get|put|update|tag|untag)-[a-z-]+"
)


def _prose_rds_verdict(value: str, text: str, start: int) -> Verdict:
    if value.endswith("-") or "--" in value or english_compound(value) or _CLI_OPERATION.fullmatch(value):
        return Verdict.REJECT
    return Verdict.MASK if _looks_like_name(value, text, start) else Verdict.REJECT


def _rds_key_verdict(value: str, text: str, start: int) -> Verdict:
    # (an EC2 ID under a generic key, "instanceID": "i-0abc...", is the EC2 rule's)
    if value.endswith("-") or "--" in value or _EC2_ID.fullmatch(value) or value in _CODE_WORDS:
        return Verdict.REJECT
    return Verdict.MASK


# an event's SourceType: RDS's are db-instance, db-cluster, db-snapshot, ... (JSON, YAML; DB_ in SDKs)
_SOURCE_TYPE = re.compile(r"SourceType[\"']?[ \t]*[:=][ \t]*[\"']?([A-Za-z_-]{1,40})")


def _rds_event_source_verdict(value: str, text: str, start: int) -> Verdict:
    """``SourceIdentifier`` names an RDS resource in describe-events output, unless the event's
    ``SourceType`` (the next key, else one before; a bounded look inside the same object) names
    something else. (A JSON body's value is scanned with the next key only, not its value: masked.)"""
    end = start + len(value)
    close = text.find("}", end, end + 200)
    m = _SOURCE_TYPE.search(text, end, close if close >= 0 else end + 200)
    if m is None:
        lo = max(0, start - 200)
        m = _SOURCE_TYPE.search(text, max(lo, text.rfind("{", lo, start)), start)
    if m and not m[1].lower().startswith(("db", "custom-engine")):
        return Verdict.REJECT
    return _rds_key_verdict(value, text, start)


# Version strings ("v1.2.3.4", "version 10.0.1.4") and product tokens ("Chrome/120.0.0.0") look like
# IPv4 addresses; the preceding characters tell them apart.
_VERSION_BEFORE = re.compile(
    r"(?:\b[vV]|\b(?:[Vv]er(?:sion)?|VERSION|[Bb]uild|BUILD)[\s:=]*"
    # a key that ends in "Version" (SSM's "AgentVersion": "3.3.40.0", PLATFORM_VERSION=...)
    r"|(?:(?<=[a-z_])|\b)(?:Version|VERSION|version)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"|\b(?:Chrome|Chromium|CriOS|Firefox|FxiOS|Safari|Edg|EdgA|EdgiOS|Edge|OPR|Opera|Version|Mozilla|"
    r"AppleWebKit|Gecko|Trident|curl|Wget|Python|python-requests|okhttp|Java|Node|node)/)$"
)


def _preceded_by_version(text: str, start: int) -> bool:
    if start == 0 or text[start - 1] not in " \t:=/\"'":
        return False  # fast path: every version context ends in one of these characters
    lo = max(0, start - 24)
    if text[start - 1] in "\"'" and text.find("ersion", lo, start) < 0 and text.find("ERSION", lo, start) < 0:
        return False  # (a quoted value: only under a key that ends in "Version", as JSON writes one)
    return _VERSION_BEFORE.search(text, lo, start) is not None


def _private_ip_verdict(value: str, text: str, start: int) -> Verdict:
    return Verdict.REJECT if _preceded_by_version(text, start) else Verdict.MASK


_LEADING_ZERO = re.compile(r"(?<![0-9])0[0-9]")


def _public_ip_verdict(value: str, text: str, start: int) -> Verdict:
    if _preceded_by_version(text, start):
        return Verdict.REJECT
    address = value.split("/", 1)[0]
    if _LEADING_ZERO.search(address):
        return Verdict.REJECT  # leading zeros: not an address
    a, b, c, d = map(int, address.split("."))
    if a > 255 or b > 255 or c > 255 or d > 255:
        return Verdict.REJECT
    if (
        a in (0, 10, 127)
        or a >= 224  # multicast, reserved, broadcast, netmasks like 255.255.255.0
        or (a == 100 and 64 <= b <= 127)
        or (a == 169 and b == 254)  # link-local, e.g. the instance metadata address
        or (a == 172 and 16 <= b <= 31)
        or (a == 192 and b == 168)
    ):
        # Private ranges have their own rule; the rest identify nobody.
        return Verdict.KEEP
    return Verdict.MASK


def _ipv6_verdict(value: str, text: str, start: int) -> Verdict:
    addr_text = value.split("/", 1)[0]
    try:
        addr = ipaddress.IPv6Address(addr_text)
    except ValueError:
        return Verdict.REJECT
    if not any(c.isdigit() for c in addr_text) or len(addr_text) < 6:
        return Verdict.REJECT  # "dead::beef", "a::b": code, not addresses
    if addr.is_loopback or addr.is_unspecified:
        return Verdict.KEEP
    return Verdict.MASK


_HOST_KINDS: tuple[tuple[str, str, str], ...] = (
    # (suffix regex, kind, category)
    (r"\.rds\.amazonaws\.com(?:\.cn)?", "RDS_HOST", "rds"),
    (r"\.rds\." + REGION + r"\.amazonaws\.com\.cn", "RDS_HOST", "rds"),  # China: <name>.<id>.rds.<region>
    (
        r"\.s3-accesspoint(?:\.dualstack)?\." + REGION + r"\.amazonaws\.com(?:\.cn)?",
        "S3_ACCESS_POINT_HOST",
        "s3",
    ),
    (r"\.elb\.amazonaws\.com(?:\.cn)?", "ELB_HOST", "hostname"),
    (r"\.elb\." + REGION + r"\.amazonaws\.com(?:\.cn)?", "ELB_HOST", "hostname"),
    (r"\.execute-api\." + REGION + r"\.amazonaws\.com(?:\.cn)?", "APIGW_HOST", "hostname"),
    (r"\.cloudfront\.net", "CLOUDFRONT_HOST", "hostname"),
    (r"\.cache\.amazonaws\.com(?:\.cn)?", "ELASTICACHE_HOST", "hostname"),
    (r"\.eks\.amazonaws\.com(?:\.cn)?", "EKS_HOST", "hostname"),
    (r"\.dkr\.ecr\." + REGION + r"\.amazonaws\.com(?:\.cn)?", "ECR_HOST", "hostname"),
    (r"\.es\.amazonaws\.com(?:\.cn)?", "OPENSEARCH_HOST", "hostname"),
    (r"\.lambda-url\." + REGION + r"\.on\.aws", "LAMBDA_URL_HOST", "hostname"),
    (r"\.elasticbeanstalk\.com", "BEANSTALK_HOST", "hostname"),
    # DocumentDB and Neptune clusters are RDS clusters: <name>.cluster-<id>.<region>.docdb.amazonaws.com
    (r"\.(?:docdb|neptune)\.amazonaws\.com(?:\.cn)?", "RDS_HOST", "rds"),
    # brokers, clusters, workgroups, domains and apps with the resource's name or ID in a label
    (r"\.kafka(?:-serverless)?\." + REGION + r"\.amazonaws\.com(?:\.cn)?", "HOST", "hostname"),
    (r"\." + REGION + r"\.redshift(?:-serverless)?\.amazonaws\.com(?:\.cn)?", "HOST", "hostname"),
    (
        r"\.(?:mq|iot|dax-clusters|appsync-api|appsync-realtime-api|memorydb|grafana-workspace"
        r"|server\.transfer)\." + REGION + r"\.amazonaws\.com(?:\.cn)?",
        "HOST",
        "hostname",
    ),
    (r"\." + REGION + r"\.aoss\.amazonaws\.com", "HOST", "hostname"),
    (r"\.auth\." + REGION + r"\.amazoncognito\.com", "HOST", "hostname"),
    (r"\.amplifyapp\.com", "HOST", "hostname"),
    # an App Runner service's default domain (<id>.<region>.awsapprunner.com), a Global Accelerator's
    # DNS name (<id>.awsglobalaccelerator.com, also dual-stack: <id>.dualstack.awsglobalaccelerator.com)
    (r"\." + REGION + r"\.awsapprunner\.com", "HOST", "hostname"),
    (r"\.awsglobalaccelerator\.com", "HOST", "hostname"),
    # an IAM Identity Center (SSO) start URL: https://d-<directory ID>.awsapps.com/start, or an alias
    (r"\.awsapps\.com", "HOST", "hostname"),
    (r"\.compute(?:-1)?\.amazonaws\.com(?:\.cn)?", "EC2_HOST", "hostname"),
    (r"\.compute\.internal", "PRIVATE_DNS", "private_ip"),
    (r"\.ec2\.internal", "PRIVATE_DNS", "private_ip"),
)
# Every suffix above contains one of these (tests/test_catalogue.py checks it).
HOST_ANCHORS = (
    ".amazonaws.com",
    ".cloudfront.net",
    ".internal",
    ".on.aws",
    ".elasticbeanstalk.com",
    ".amazoncognito.com",
    ".amplifyapp.com",
    ".awsapps.com",
    ".awsapprunner.com",
    ".awsglobalaccelerator.com",
)
if not all(s.startswith(r"\.") for s, _k, _c in _HOST_KINDS):  # pragma: no cover - static data
    raise ValueError("every host suffix starts with a dot")
# The common leading dot is factored out, so the search jumps from dot to dot.
_HOST_SUFFIX_RE = re.compile(
    r"\.(?:" + "|".join(f"(?P<h{i}>{s[2:]})" for i, (s, _k, _c) in enumerate(_HOST_KINDS)) + ")$"
)


# each host kind belongs to exactly one category
_HOST_CATEGORY: dict[str, str] = {kind: category for _s, kind, category in _HOST_KINDS}


def _host_kind(value: str) -> str:
    m = _HOST_SUFFIX_RE.search(value)
    if m is None:  # pragma: no cover - the catalogue regex only admits listed suffixes
        return "HOST"
    return _HOST_KINDS[int(m.lastgroup[1:])][1]  # type: ignore[index]


# A host is labels then one of the suffixes; the first label must be followed by a dot, which rejects
# ordinary words right after their last letter.
HOST_REGEX = (
    r"[A-Za-z0-9](?<![A-Za-z0-9_.-].)"
    + run("[A-Za-z0-9-]")
    + r"(?:\."
    + run("[A-Za-z0-9-]", at_least_one=True)
    + r")*?(?:"
    + "|".join(s for s, _k, _c in _HOST_KINDS)
    + r")(?![A-Za-z0-9-])"
)


_GROUP_GAP = "[ \u00a0\u2007\u2009\u202f]"
"""A blank between the digit groups of an account ID (4839 2017 5526): a space, a no-break space, a
figure, thin or narrow no-break space."""
_DIGIT_GAP = "[- \u00a0\u2007\u2009\u202f]"

# What may stand right before an account ID: a key naming an account or an owner (JSON, YAML, HCL,
# env, INI), or the word "account" in prose. Checked on the 80 characters before the digits.
_ACCOUNT_KEY = (
    r"(?:[Oo]wner(?:Id|ID|Account)?|OWNER_ID|owner_id|[Aa]ccounts?(?:Id|ID|Ids|IDs|Number)?|ACCOUNT(?:_ID)?|"
    r"AWSAccountId|awsAccountId|UserId|RequesterId|account_(?:ids?|numbers?)|account-ids?|owner-ids?|owners|"
    r"SourceAccount|ImageLocation|[Rr]egistryIds?|registry_ids?|REGISTRY_ID|"
    r"recipientAccountId|PrincipalAccount|SourceOwner|AWS|"
    # the account under other names: Glue's catalog, GuardDuty's and Security Hub's administrator, RAM's
    # associated entity, a target (Identity Center, Organizations), a bare principal (Lambda permission)
    r"CatalogId|catalogId|catalog_id|AdministratorId|administratorId|MasterId|masterId|associatedEntity|"
    r"TargetId|targetId|target_id|Principal|"
    # the abbreviation: acct_id, AcctId, ACCT_ID
    r"[Aa]cct(?:Id|ID|_ids?)?|ACCT(?:_IDS?)?)"
)
# a map of accounts by name, up to its first entry's value: accounts = { prod = "
_ACCOUNT_MAP = (
    r"(?:[Aa]ccounts|ACCOUNTS|[Aa]ccount_?[Ii]ds|ACCOUNT_IDS|[Aa]ccount_?[Mm]ap|ACCOUNT_MAP)[\"']?\s*(?:=>|[:=])"
    r"\s*\{?\s*[\"']?[A-Za-z0-9_.-]{1,64}[\"']?[ \t]*(?:=>|[:=])[ \t]*[\"']?"
)
_ACCOUNT_CONTEXT_TEXT = (
    r"(?:"
    # a key: JSON/YAML/HCL/env/INI, CLI flags (--account-id 1234..., --owners 1234... 5678...), CLI
    # tables (| OwnerId | 1234... |), then maybe a list (JSON, YAML "- " items) whose earlier items
    # were account IDs or ARNs (a policy's principals: "AWS": ["arn:aws:iam::1234...:root", "5678..."])
    + _ACCOUNT_KEY
    # (or only blanks after the key: "OwnerId 1234..." in a log line or a transcript)
    # (a list's items may carry a `terraform plan`'s or `pulumi preview`'s change mark: + "1234...",)
    + r"[\"']?\s*(?:=>|[:=|>]|(?:(?<=-id)|(?<=-ids)|(?<=-owners))\s|[ \t])"
    + r"\s*(?:\[\s*(?:[-+~][ \t]+)?|-[ \t])?\s*"
    # (blanks inside the quote too, escaped ones as a backslash and NULs: " 1234...")
    + r"(?:[\"'](?:[ \t]|\\\x00{1,5})*)?"
    + r"(?:(?:[0-9]{12}|arn:[^\s\"',\[\]]{1,160})[\"']?(?:\s*,\s*(?:[-+~][ \t]+)?|[ \t]+|\s*-[ \t]+)[\"']?)*"
    # prose: "account 1234...", "account ID is 1234...", "accounts 1234... and 5678...", "account **1234**";
    # the abbreviation too: "acct 1234...", "Acct ID: 1234...", "acct#1234..."
    r"|(?:[Aa]ccounts?|ACCOUNTS?|[Aa]cct|ACCT)(?<![A-Za-z0-9_][Aa]ccount)(?<![A-Za-z0-9_][Aa]ccounts)"
    r"(?<![A-Za-z0-9_]ACCOUNT)(?<![A-Za-z0-9_]ACCOUNTS)(?<![A-Za-z0-9_][Aa]cct)(?<![A-Za-z0-9_]ACCT)"
    r"(?:\s+(?:IDs?|[Ii]ds?|[Nn]umbers?|no\.?|#))?(?:\s+(?:is|was|are|=))?"
    r"\s*[:#=]?\s*[\"'`(*]*(?:[0-9]{12}[\"'`)*]*\s*(?:,|and|or|&)\s*[\"'`(*]*)*"
    # the ID of an owner object (S3, EC2 and Glacier responses): "Owner": {"DisplayName": "x", "ID": ...,
    # or in YAML Owner:, then ID: on a line below
    r"|[Oo]wner[\"']?\s*:(?:\s*\{)?(?:\s*[\"']?DisplayName[\"']?\s*:\s*[\"']?[^\"'\n,{}]{0,64}[\"']?(?:\s*,)?)?"
    r"\s*[\"']?I[Dd][\"']?\s*:\s*[\"']?"
    # `aws ec2 describe-instances --output text`: RESERVATIONS <owner id> at the start of a line
    # (then the requester's, when there is one), or at the start of a JSON string (CLI output in a
    # log record)
    r"|RESERVATIONS\t(?<![^\n\"=]RESERVATIONS\t)(?:[0-9]{12}\t)?"
    # a condition key's values in `aws sts decode-authorization-message` output:
    # {"key": "aws:ResourceAccount", "values": {"items": [{"value": ...
    r"|(?:Resource|Principal|Source)Account[\"']?\s*,\s*[\"']?values[\"']?\s*:\s*\{\s*[\"']?items[\"']?"
    r"\s*:\s*\[\s*\{\s*[\"']?value[\"']?\s*:\s*[\"']?"
    # an IAM policy document in HCL (aws_iam_policy_document): a principals block's identifiers after
    # type = "AWS", a condition's values after an account condition key (in a plan, with change marks)
    r"|(?:type[ \t]*=[ \t]*\"AWS\"|variable[ \t]*=[ \t]*\"aws:(?:Source|Principal|Resource)Account\")"
    r"[ \t]*\r?\n[ \t]*(?:[-+~][ \t]+)?(?:identifiers|values)[ \t]*=[ \t]*\[\s*(?:[-+~][ \t]+)?\""
    # a map of accounts by name (HCL locals, YAML, JSON, Python, TypeScript): accounts = { prod = ...
    + "|"
    + _ACCOUNT_MAP
    # "accounts for <purpose>:" (`cdk bootstrap --trust`: Trusted accounts for deployment: 1234...)
    + r"|(?:[Aa]ccounts|ACCOUNTS) for [A-Za-z]{3,20}[ \t]*:[ \t]*(?:[0-9]{12}[ \t]*,[ \t]*)*"
    # the accounts an RDS snapshot is shared with (describe-db-snapshot-attributes): restore's values
    r"|AttributeName[\"']?\s*[:=]\s*[\"']?restore[\"']?\s*,\s*[\"']?AttributeValues[\"']?\s*[:=]\s*\[\s*[\"']?"
    r"(?:[0-9]{12}[\"']?\s*,\s*[\"']?)*"
    # an OCSF record's account (Security Lake, Security Hub's OCSF findings): "account": {"uid": ...
    r"|account[\"']?\s*:\s*\{\s*[\"']?uid[\"']?\s*:\s*[\"']?"
    # the Id of an account of AWS Organizations (list-accounts, describe-account, delegated admins)
    r"|(?:Accounts?|DelegatedAdministrators)[\"']?\s*:\s*(?:\[\s*)?(?:\{\s*|-[ \t]+)"
    r"[\"']?Id[\"']?\s*:\s*[\"']?"
    r")\Z"
)
_ACCOUNT_CONTEXT_FIRST = "[ACDIMOPRSTUacmortv]"
"""Every letter an alternative of ``_ACCOUNT_CONTEXT_TEXT`` can start with (tests/test_catalogue.py)."""
# Only whether it matches is asked, so it is searched for behind a class of those letters, the match
# held by a lookbehind from there: the regex engine skips to the letters (a pattern that begins with
# an alternation is tried at every position of the window: three times the cost before digits in prose).
_ACCOUNT_CONTEXT = re.compile(
    _ACCOUNT_CONTEXT_FIRST + "(?<=(?=" + _ACCOUNT_CONTEXT_TEXT + ")" + _ACCOUNT_CONTEXT_FIRST + ")"
)
# Right before the first item (searched only when one of _MARKED_CONTEXT_LITERALS is in the window):
# any CLI flag that names an owner or account (--owners, --owner-ids, --expected-bucket-owner,
# --accounts, --account-ids, --source-account, --restorable-by-user-ids, --principals), a filter on
# one (Name=owner-id,Values=1234...), the account folder of CloudTrail, ELB, VPC flow log, Config ...
# objects in S3 (AWSLogs/1234.../, in an organization's trail AWSLogs/o-.../1234.../); also the
# accounts an RDS snapshot is shared with (--values-to-add 1234...), owners after an alias (--owners
# self 1234...), a CDK environment (aws://1234.../us-east-1)
_MARKED_CONTEXT = re.compile(
    r"(?:-(?<=--)(?:[a-z0-9]+-)*(?:owners?|owner-ids?|accounts?|account-ids?|user-ids?|principals?|target-ids?"
    r"|registry-ids?"
    r"|values-to-(?:add|remove))"
    r"(?:=|[ \t]+)[\"']?(?:(?:self|amazon|aws-marketplace|aws-backup-vault)[ \t]+)*"
    r"|Name=(?:[a-z-]*-)?(?:owner|account)-ids?,Values="
    r"|AWSLogs/(?:o-[a-z0-9]{10,32}/)?|aws://"
    # the line after `aws sts get-caller-identity --query Account --output text` (or `aws organizations
    # list-accounts --query 'Accounts[].Id' ...`), maybe after a line that echoes the variable it set
    r"|-(?<=--)query[ =][\"']?(?:Account|Accounts\[\*?\]\.Id)[\"']?"
    r"(?:[ \t]+--[a-z-]+(?:[ =][A-Za-z0-9_.][A-Za-z0-9_.-]*)?)*[ \t]*\)?[ \t]*\r?\n"
    r"(?:[ \t]*[$#>]?[ \t]*echo[ \t][^\n]{1,40}\r?\n)?[ \t]*)\Z"
)
_MARKED_CONTEXT_LITERALS = ("--", "Values=", "AWSLogs/", "aws://")
# After the digits: a VPC flow log (default format): "<version> <account-id> <interface-id> ...",
# a log file delivered to S3: "<account-id>_CloudTrail_<region>_...", "..._elasticloadbalancing_...",
# or a console sign-in host
_ACCOUNT_AFTER = re.compile(
    r"[ \t]+eni-[0-9a-f]{8,17}\b|_[A-Za-z]+(?:-[A-Za-z]+)*_" + REGION + "_"
    # an IAM user's console sign-in URL: https://1234....signin.aws.amazon.com/console
    r"|\.signin\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)\b"
    # an Organizations child or policy target (list-children, list-targets-for-policy) of type ACCOUNT
    r"|[\"']?[ \t]*(?:,|\r?\n)[ \t]*[\"']?Type[\"']?[ \t]*:[ \t]*[\"']?ACCOUNT\b"
    # a Logs Insights @log value: <account>:<log group>
    r"|:/[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]"
)
# from the end of one account ID to the next object's "Id" in a list (of Organizations accounts): the
# rest of the object (no nesting) and the next one's first member (JSON; YAML "- Id:")
_NEXT_OBJECT_ID = re.compile(
    r"[\"']?[^{}\[\]]{0,300}?(?:\}\s*,\s*\{\s*[\"']?Id[\"']?\s*:|\n[ \t]*-[ \t]+Id[ \t]*:)[ \t]*[\"']?"
)
_SORTED_BLOCK_LIST = re.compile(r"(?:identifiers|values)[ \t]*=[ \t]*\[\s*(?:[-+~][ \t]+)?[\"']\Z")
_SORTED_BLOCK_AFTER = re.compile(
    r"[^\]\n]{0,2000}?(?:\n[^\]\n]{0,200}){0,40}\][ \t]*\r?\n[ \t]*(?:[-+~][ \t]+)?"
    r"(?:type[ \t]*=[ \t]*[\"']AWS[\"']"
    r"|variable[ \t]*=[ \t]*[\"']aws:(?:Source|Principal|Resource)Account[\"'])"
)
_NEXT_MAP_ENTRY = re.compile(
    r"[\"']?[ \t]*,?\s*[\"']?[A-Za-z0-9_.-]{1,64}[\"']?[ \t]*(?:=>|[:=])[ \t]*[\"']?"
)
# a map of accounts by name right before an account (the continuation to a map's next entry needs one)
_ACCOUNT_MAP_BEFORE = re.compile(_ACCOUNT_MAP + r"\Z")
# "accounts" (or "account IDs") and a few words before a list of IDs: "the accounts in scope are
# '1234...', '5678...'", "Affected accounts (prod): `1234...`, `5678...`"
_PROSE_ACCOUNTS_BEFORE = re.compile(
    r"(?:[Aa]ccounts?|ACCOUNTS?)(?<![A-Za-z0-9_][Aa]ccount)(?<![A-Za-z0-9_][Aa]ccounts)"
    r"(?:\s+(?:IDs?|[Ii]ds?|[Nn]umbers?))?"
    # (not when the words name other numbers: "the account team called about invoice 1234..., 5678...")
    r"(?:\s+(?![Ii]nvoices?|[Oo]rders?|[Tt]ickets?|[Cc]ases?|[Pp]hones?|[Tt]racking|[Rr]eceipts?|[Cc]ards?)"
    r"[A-Za-z()/'-]{1,20}[:,]?){1,5}\s*[:=]?\s*(?:(?:[-*\u2022]|[0-9]{1,3}[.)])[ \t]+)?[\"'`(*]*\Z"
)
# between two items of a list of IDs (after a quote and a short note such as "(prod)", before the next
# one): a comma, blanks, "and", "or", a YAML item's "- " or a bullet on the next line, a shell line
# continuation
_LIST_SEPARATOR = (
    r"[\"'`)*]*(?:[ \t]*\([^()\n]{1,30}\))?"
    r"(?:[ \t]*[,;][ \t\r\n]*(?:(?:and|or)[ \t]+|[-+~][ \t]+)?|[ \t]+(?:(?:and|or|&)[ \t]+)?"
    r"|[ \t]*\r?\n[ \t]*(?:[-*\u2022]|[0-9]{1,3}[.)])[ \t]+|[ \t]*\\\r?\n[ \t]*)[\"'`(*]*"
)
_LIST_NEXT = re.compile(_LIST_SEPARATOR + r"[0-9]{12}(?![0-9])")
_LIST_GAP = re.compile(_LIST_SEPARATOR)
_last_account = threading.local()
"""Per thread: (id and length of the text, end offset, value) of the last account ID masked, so each
item of a list of them needs only to see the one before it: a list of any length costs a constant per
item. (The scanner tries candidates in text order.)"""


_DYNAMODB_TYPED_BEFORE = re.compile(r"\{\s*[\"'][SN][\"']\s*:\s*[\"']\Z")


# Cost Explorer grouped or filtered by account (get-cost-and-usage --group-by ...,Key=LINKED_ACCOUNT,
# get-dimension-values --dimension LINKED_ACCOUNT, a filter on it): its Keys and Values are the
# accounts, with no key that says so. In a text that names the LINKED_ACCOUNT dimension anywhere (the
# command may follow its output), a number of twelve digits that stands on its own (not a decimal's
# integer part, nothing glued after it) is an account. Whether the text names it is looked for once
# per text, with the other marks of textmarks.py.
_NOT_ON_ITS_OWN = re.compile(r"\.[0-9]|[A-Za-z0-9_]")
_DIGIT_GLUE = frozenset("+-.,/:#$€£")  # (a signed or decimal number, a part of a path or a date)
_ACCOUNT_SENTENCE = re.compile(
    r"(?<![A-Za-z])(?:[Aa]ccounts?|ACCOUNTS?)(?![A-Za-z])|\b(?:owned by|[Oo]rgani[sz]ation|OU|AWS account)\b"
)
_OTHER_NUMBER_BEFORE = re.compile(
    r"(?i)(?:invoices?|orders?|tickets?|cases?|phones?|tracking|receipts?|cards?|iban|routing|bank|"
    r"customer|member(?:ship)?|loyalty|policy|claim|serial|ref(?:erence)?|balance|amount|total|"
    r"call(?:ed)?|dial|tel|fax|#|no\.)"
    r"(?:[^0-9\n]{0,20}[0-9]{1,20}(?![0-9])){0,20}[^0-9\n]{0,20}\Z"  # (also the next numbers of their list)
)


def _account_verdict(value: str, text: str, start: int) -> Verdict:
    _last_account.in_map = False
    verdict = _account_context_verdict(value, text, start)
    if verdict is Verdict.MASK:
        _last_account.at = (id(text), len(text), start + len(value), value, _last_account.in_map)
    return verdict


def _in_account_map(text: str, last: tuple) -> bool:  # type: ignore[type-arg]
    """Whether the account noted in ``last`` is an entry of a map of accounts by name (found as the next
    entry of one, or right after the map's key and its first entry's name)."""
    value_start = last[2] - len(last[3])
    return last[4] or _ACCOUNT_MAP_BEFORE.search(text, max(0, value_start - 200), value_start) is not None


def _account_context_verdict(value: str, text: str, start: int) -> Verdict:
    # the next item of a list whose previous item was an account ID
    last = getattr(_last_account, "at", None)
    if (
        last is not None
        and last[0] == id(text)
        and last[1] == len(text)
        and 0 < start - last[2] <= 400
        and text.startswith(last[3], last[2] - len(last[3]))  # (the same text, not one at its address)
    ):
        if (start - last[2] <= 40 and _LIST_GAP.fullmatch(text, last[2], start)) or _NEXT_OBJECT_ID.fullmatch(
            text, last[2], start
        ):  # (or the next object of a list, its Id first: Organizations' list-accounts)
            return Verdict.MASK
        # or the next entry of a map of accounts by name (prod = "1234...", ci = "5678...")
        if (
            start - last[2] <= 80
            and _NEXT_MAP_ENTRY.fullmatch(text, last[2], start)
            and _in_account_map(text, last)
        ):
            _last_account.in_map = True
            return Verdict.MASK
    # what stands before the value gives it context; for DynamoDB JSON's typed value ("accountId":
    # {"S": "4839..."}), what stands before the type wrapper
    before = start
    if text[start - 1 : start] in "\"'" and text.find("{", max(0, start - 16), start) >= 0:
        wrapper = _DYNAMODB_TYPED_BEFORE.search(text, max(0, start - 16), start)
        if wrapper is not None:
            before = wrapper.start()
    # an ECR repository's console page: …/ecr/repositories/private/<account>/<repository>
    if text.endswith("/repositories/private/", max(0, before - 22), before):
        return Verdict.MASK
    # A key or word right before is the common case, so look at short windows first: the search costs
    # what its window is long, and a match in a window is a match in every longer one.
    for window in (24, 40, 200):  # the longest for lists of IDs
        if _ACCOUNT_CONTEXT.search(text, max(0, before - window), before):
            return Verdict.MASK
        if before <= window:
            break
    # rarer contexts, each behind a literal search (C speed) of a short window
    lo = max(0, before - 80)
    if any(text.find(literal, lo, before) >= 0 for literal in _MARKED_CONTEXT_LITERALS) and (
        _MARKED_CONTEXT.search(text, lo, before)
    ):
        return Verdict.MASK
    end = start + len(value)
    if _ACCOUNT_AFTER.match(text, end):
        return Verdict.MASK
    # an IAM policy document's block in Terraform's sorted order (plan, state show): identifiers, then
    # type = "AWS"; values, then variable = "aws:SourceAccount"
    if _SORTED_BLOCK_LIST.search(text, max(0, before - 40), before) and _SORTED_BLOCK_AFTER.match(text, end):
        return Verdict.MASK
    if _LIST_NEXT.match(text, end):
        lo = max(0, before - 160)
        if (text.find("ccount", lo, before) >= 0 or text.find("CCOUNT", lo, before) >= 0) and (
            _PROSE_ACCOUNTS_BEFORE.search(text, lo, before)
        ):
            return Verdict.MASK
    if textmarks.holds(text, "linked") and not _NOT_ON_ITS_OWN.match(text, end):
        return Verdict.MASK
    # a sentence about accounts ("cross-account access from <a> to <b>", "owned by <a>", "the accounts
    # for the Workloads OU: <a>, <b>", "a role in <a> from our tooling account"): the number on its own,
    # on a line that says so, unless the words right before it name other numbers (invoice, order, ...)
    if (
        value.isdigit()
        and not _NOT_ON_ITS_OWN.match(text, end)
        and text[before - 1 : before] not in _DIGIT_GLUE
    ):
        line_start = text.rfind("\n", max(0, before - 300), before) + 1
        line_end = text.find("\n", end, end + 160)
        line = text[
            line_start if line_start else max(0, before - 300) : line_end if line_end >= 0 else end + 160
        ]
        if _ACCOUNT_SENTENCE.search(line) and not _OTHER_NUMBER_BEFORE.search(
            text, max(0, before - 240), before
        ):
            return Verdict.MASK
    # a cell of a CSV column (or tab- or semicolon-separated, or a Markdown table's) whose header names
    # an account (Cost Explorer's LinkedAccount, a Cost and Usage Report's lineItem/UsageAccountId)
    cell = csvview.column(text, start, end)  # (None at once where no delimiter stands beside)
    if cell is None:
        return Verdict.REJECT
    column, ruled = cell
    if ruled:  # a SQL client's table: only a column named for an account ID (account_id, accountid)
        return Verdict.MASK if _ACCOUNT_ID_COLUMN.search(column) else Verdict.REJECT
    if (
        _ACCOUNT_COLUMN.search(column)
        or _ACCOUNT_CONTEXT.search(f"{column}: ")
        or _ACCOUNT_CONTEXT.search(f'"{column}": "')
        # a Logs Insights export's @log column: <account>:<log group>, whatever the group is called
        or (column == "@log" and text.startswith(":", end))
    ):
        return Verdict.MASK
    return Verdict.REJECT


# a column named for an account in any spelling (useridentity.accountid, recipientaccountid,
# line_item_usage_account_id, "Linked account"), not for its name or alias
_ACCOUNT_COLUMN = re.compile(r"(?i)(?:\A|[^a-z])[a-z]*account(?:[ _-]?ids?|[ _-]?numbers?)?\Z")
_ACCOUNT_ID_COLUMN = re.compile(
    r"(?i)(?:\A|[^a-z])(?:[a-z]*account[ _-]?(?:ids?|numbers?)"
    r"|(?:linked|payer|usage|member|aws|owner|recipient)[ _-]?account|owner[ _-]?id)\Z"
)


# An account ID in a resource's name, joined to it by a hyphen: AWS names the buckets it makes so
# (aws-cloudtrail-logs-<account>-<suffix>, sagemaker-<region>-<account>, elasticbeanstalk-<region>-
# <account>, aws-athena-query-results-<account>-<region>, aws-glue-assets-<account>-<region>,
# config-bucket-<account>) and people follow it (<account>-terraform-state, orders-logs-<account>).
_NAME_PART_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9.]*-(?:[A-Za-z0-9.]+-)*\Z")
_NAME_PART_AFTER = re.compile(r"-[A-Za-z]")
_UUID_HEAD = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-\Z")
# twelve digits that read as a time of this century (a snapshot's or a build's name:
# backup-202411111030, YYYYMMDDhhmm) are not taken for an account: about one account in 20,000 reads
# so (YYMMDDhhmmss would be one in 300: 111122223333 does)
_TIME_DIGITS = re.compile(
    r"20[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?:[01][0-9]|2[0-3])[0-5][0-9]"
)


def _account_in_name_verdict(value: str, text: str, start: int) -> Verdict:
    """Twelve digits joined by a hyphen to a name with a letter in it, before or after them, that do
    not read as a time and do not end a UUID."""
    if _TIME_DIGITS.fullmatch(value) or _UUID_HEAD.search(text, max(0, start - 24), start):
        return Verdict.REJECT
    if _NAME_PART_AFTER.match(text, start + len(value)):
        return Verdict.MASK
    joined = text[start - 1 : start] == "-" and _NAME_PART_BEFORE.search(text, max(0, start - 64), start)
    return Verdict.MASK if joined else Verdict.REJECT


def _account_number_verdict(value: str, text: str, start: int) -> Verdict:
    """An account ID written as a number in pasted JSON or YAML (``-483920175526``: the digits after
    the sign; ``4.83920175526e11``): what jsonbody.py decides for a JSON body's number, that is, an
    integer of twelve digits, with the context ``account_id`` asks for (read before the sign)."""
    if "." in value:
        try:
            number = Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only a number
            return Verdict.REJECT
        if not 10**11 <= number < 10**12 or number != number.to_integral_value():
            return Verdict.REJECT
    before = start - 1 if text[start - 1 : start] == "-" else start
    return Verdict.MASK if _account_context_verdict(value, text, before) is Verdict.MASK else Verdict.REJECT


_ORG_ROOT_ID = r"r-(?=[a-z]{0,31}[0-9])[a-z0-9]{4,32}(?![A-Za-z0-9_-])"
"""An AWS Organizations root ID: r- and 4-32 lower-case letters and digits, one a digit at least."""
_ORG_ROOT_KEYS = (
    "RootId",
    "rootId",
    "root_id",
    "ParentId",
    "parentId",
    "parent_id",
    "TargetId",
    "targetId",
    "--root-id",
    "--parent-id",
    "--target-id",
    # prose and notes: "the root r-ab12", "Root ID: r-ab12" (the ID's shape, with a digit, does the rest)
    "root",
    "Root",
    "ROOT",
    "root ID",
    "root id",
    "Root ID",
    "Root Id",
)
_ORG_ROOTS_BEFORE = re.compile(r"[\"']?Roots[\"']?\s*:")
_ORG_ROOT_AFTER = re.compile(
    # (or the Arn member right after: a JSON value is scanned with the key after it, not its value)
    r"[\"']?Type[\"']?\s*[:=]\s*[\"']?ROOT\b|[\"']?\s*,\s*[\"']Arn[\"']\s*:"
)


def _org_root_verdict(value: str, text: str, start: int) -> Verdict:
    """A root ID as a plain ``Id``: only in an object of ``list-roots`` ("Roots": [{"Id": ..., "Arn":
    ...}]) or one whose ``Type`` is ``ROOT`` (``list-parents``)."""
    end = start + len(value)
    if _ORG_ROOTS_BEFORE.search(text, max(0, start - 40), start):
        return Verdict.MASK
    if _ORG_ROOT_AFTER.search(text, end, end + 120):
        return Verdict.MASK
    return Verdict.REJECT


# ---- IDs of other services' resources, under their keys and flags ---------------------------------
_ID_END = r"(?![A-Za-z0-9_-])"
_KMS_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_KMS_KEY_KEYS = (
    "KeyId",
    "keyId",
    "key_id",
    "KmsKeyId",
    "kmsKeyId",
    "kms_key_id",
    "KMSKeyId",
    "KMS_KEY_ID",
    "KMSMasterKeyID",
    "SSEKMSKeyId",
    "TargetKeyId",
    "--key-id",
    "--kms-key-id",
    "--target-key-id",
    "--sse-kms-key-id",
    "--ssekms-key-id",
    "x-amz-server-side-encryption-aws-kms-key-id",
)
# a CloudFront distribution ID: E and 12-13 upper-case letters and digits (a digit among them)
_CF_DIST_ID = r"E(?=[A-Z]{0,12}[0-9])[A-Z0-9]{12,13}"
_CF_DIST_KEYS = (
    "DistributionId",
    "distributionId",
    "distribution_id",
    "DISTRIBUTION_ID",
    "CLOUDFRONT_DISTRIBUTION_ID",
    "CloudFrontDistributionId",
    "--distribution-id",
    # a console URL (#/distributions/E...) or a path outside an ARN
    "distributions/",
    "distribution/",
)
# prose that names distributions: what may stand between the word and the first ID ("ID", "with ID",
# "ID is", a colon, a table's bar, a parenthesis, a line break, quotes, backticks or bold), and between
# the IDs of a list
_CF_PROSE_GAP = (
    r"(?:[ \t]+(?:with[ \t]+)?(?:IDs?|[Ii]ds?)(?:[ \t]+(?:is|are))?)?"
    # (never two blank runs side by side: on a long run of blanks the regex engine would try every
    # split between them)
    r"[ \t]*(?:[:=|(][ \t]*)?(?:\r?\n[ \t]*)?[\"'`*]{0,2}"
)
_CF_PROSE_ITEM = _CF_DIST_ID + r"(?![A-Za-z0-9])"
_CF_PROSE_WORDS = (
    "distribution",
    "distributions",
    "Distribution",
    "Distributions",
    "DISTRIBUTION",
    "DISTRIBUTIONS",
)
_CF_PROSE_SEPARATOR = r"[\"'`*]{0,2}[ \t]*(?:,[ \t]*(?:and[ \t]+)?|and[ \t]+|&[ \t]*)[\"'`*]{0,2}"
# a Route 53 hosted zone ID: Z and 8-32 upper-case letters and digits (a digit among them)
_ZONE_ID = r"Z(?=[A-Z]{0,31}[0-9])[A-Z0-9]{8,32}"
_ZONE_KEYS = (
    "HostedZoneId",
    "hostedZoneId",
    "hosted_zone_id",
    "HOSTED_ZONE_ID",
    "zone_id",
    "ZoneId",
    "--hosted-zone-id",
    "--delegation-set-id",
    "hostedzone/",
)
# an API Gateway API ID: 10 lower-case letters and digits (a digit among them)
_APIGW_ID = r"(?=[a-z]{0,9}[0-9])[a-z0-9]{10}"
_APIGW_KEYS = (
    "restApiId",
    "RestApiId",
    "rest_api_id",
    "REST_API_ID",
    "ApiId",
    "apiId",
    "api_id",
    "API_ID",
    "--rest-api-id",
    "--api-id",
    "API-Gateway-Execution-Logs_",
    "aws/apigateway/",
)
_ECS_TASK_KEYS = ("taskId", "task_id", "--task", "--tasks", "task/")


def _keyed_id(keys: tuple[str, ...], value: str) -> str:
    """``value`` (a group ``v``) after one of ``keys``: a key and ``ASSIGN`` or blanks, a flag (a key
    that starts with "--"; the rule starts at its first letter, as the scanner tries rules at letters)
    and "=" or blanks, or a key that ends in "/" or "_" (a path, a log group) right before it."""
    flags = [k[2:] for k in keys if k.startswith("--")]
    return (
        words([k.lstrip("-") for k in keys], "[A-Za-z0-9_]")
        + r"(?:(?<=[/_])|"
        + "".join(f"(?<!--{re.escape(f)})" for f in flags)
        + ASSIGN
        + r"|[\"']?[ \t]+[\"']?)(?P<v>"
        + value
        + ")"
        + _ID_END
    )


def _keyed_anchors(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        re.escape(k.lstrip("-")) + ("" if k[-1] in "/_" else f"[{AFTER_KEY}]") for k in dict.fromkeys(keys)
    )


# ---- resource names under their keys, flags and CloudWatch dimensions (ninth review) ---------------
# a resource's name: letters, digits, "_", "-", "/" and inner dots (a sentence's dot ends it); not an
# ARN (its own rule) nor an AWS log group path (/aws/lambda/<name>: the name alone is masked there)
_RESOURCE_NAME = r"(?!arn:|/aws/)[A-Za-z0-9_./](?:[A-Za-z0-9_/-]|\.(?=[A-Za-z0-9_/-])){0,255}" + POSSESSIVE
_NAME_END = r"(?![A-Za-z0-9_/-]|\.[A-Za-z0-9_/-])"
_PLAIN_WORD = re.compile(r"[a-z]+|[A-Z]+|[A-Z][a-z]+")
_TF_REFERENCE = re.compile(r"(?:var|local|module|data|each|self|aws_[a-z0-9_]+)\.")


_METRIC_PAIR_BEFORE = re.compile(r"[\"'],[ \t]*[\"']\Z")
_SERVICE_NAME = re.compile(r"(?:com\.amazonaws\.|aws\.)[a-z0-9.-]+|[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?")


_TOKEN_SHAPE = re.compile(r"AWS_[A-Z][A-Z0-9_]*_[0-9a-f]{12}")
"""A token of this masker's (tokens.py; its exact grammar is built from this catalogue): never a name."""


# a status, not a name (a stack event's CREATE_COMPLETE after a logical ID that ends in Function)
_STATUS = re.compile(r"[A-Z]+(?:_[A-Z]+)*_(?:IN_PROGRESS|COMPLETE|FAILED|SKIPPED)")


def _resource_name_verdict(value: str, text: str, start: int) -> Verdict:
    """A value under a key or flag that names a resource: masked unless it is a plain word ("default",
    "Orders"), a number, version, hash, UUID or EC2 ID (their own rules), a region, an instance
    class (db.t3.micro), a Terraform
    reference (var.name, aws_lambda_function.x.function_name), a path of slashes only, or an AWS
    service's name (lambda.amazonaws.com, com.amazonaws.eu-west-1.s3)."""
    if (
        (value[:4] == "AWS_" and _TOKEN_SHAPE.fullmatch(value))
        or _SERVICE_NAME.fullmatch(value)
        or _PLAIN_WORD.fullmatch(value)
        or _STATUS.fullmatch(value)
        or _NOT_LISTED_NAME.fullmatch(value)
        or _AWS_REGION.fullmatch(value)  # (not REGION's shape alone: ci-deployer-2 is a name)
        or re.fullmatch(_INSTANCE_CLASS, value)
        or _TF_REFERENCE.match(value)
        or not value.strip("/.")
        or _code_reference(value, text, start)
        or _yaml_key(value, text, start)
    ):
        return Verdict.REJECT
    return Verdict.MASK


def _console_ecs_service_verdict(value: str, text: str, start: int) -> Verdict:
    """``services/<name>`` only in an ECS console URL: a cluster's path before it on the same URL."""
    if not _CONSOLE_ECS_CLUSTER.search(text, max(0, start - 400), start):
        return Verdict.REJECT
    return _resource_name_verdict(value, text, start)


_CONSOLE_ECS_CLUSTER = re.compile(r"console\.[a-z.-]{3,40}/ecs/v2/clusters/[^\s\"'/]{1,255}/services/\Z")


def _prose_secret_verdict(value: str, text: str, start: int) -> Verdict:
    """A secret key's shape, not a hash's or a word's: upper- and lower-case letters and a digit."""
    upper = any(c.isupper() for c in value)
    lower = any(c.islower() for c in value)
    digit = any(c.isdigit() for c in value)
    return Verdict.MASK if upper and lower and digit else Verdict.REJECT


def _named_key_verdict(value: str, text: str, start: int) -> Verdict:
    """``_resource_name_verdict``; after a key in a list ("FunctionName", "x"), only in a CloudWatch
    metrics array (its namespace "AWS/..." before it): a list of key names (a schema's "required", a
    list of columns) is not a key and its value."""
    if (
        _METRIC_PAIR_BEFORE.search(text, max(0, start - 8), start)
        and text.rfind("AWS/", max(0, start - 300), start) < 0
    ):
        return Verdict.REJECT
    return _resource_name_verdict(value, text, start)


_AWS_CLI_LINE = re.compile(r"(?<![A-Za-z0-9_-])aws(?:\.exe)?[ \t]+[a-z0-9-]+[ \t]+[a-z0-9-]+[ \t]")


def _cli_name_verdict(value: str, text: str, start: int) -> Verdict:
    """``--name``/``--names``: only on an ``aws <service> <operation>`` command line."""
    line_start = max(text.rfind("\n", 0, start), start - 2000) + 1
    if not _AWS_CLI_LINE.search(text, line_start, start):
        return Verdict.REJECT
    return _resource_name_verdict(value, text, start)


def _snake_forms(snake: str) -> tuple[str, ...]:
    """function_name -> FunctionName, functionName, function_name, FUNCTION_NAME, functionname (an HTTP
    header's name, as Kong hands it over: lower case)."""
    parts = snake.split("_")
    camel = "".join(p.capitalize() for p in parts)
    return tuple(dict.fromkeys((camel, camel[0].lower() + camel[1:], snake, snake.upper(), camel.lower())))


def _name_keys(*snakes: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(dict.fromkeys([k for s in snakes for k in _snake_forms(s)] + list(extra)))


def _named_by_key(keys: tuple[str, ...]) -> str:
    """A name under one of ``keys``: JSON/YAML/HCL/env (``ASSIGN``), a CloudWatch dimension in text
    output (DIMENSIONS<tab>FunctionName<tab>x), in a dashboard's metrics array ("FunctionName", "x")
    and in the CLI's shorthand (Name=FunctionName,Value=x)."""
    return (
        words(keys)
        + "(?:"
        + ASSIGN
        + "|"
        + TAB
        + r"|[\"'],[ \t]*[\"']|,Value=)(?P<v>"
        + _RESOURCE_NAME
        + ")"
        + _NAME_END
    )


def _key_name_anchors(keys: tuple[str, ...]) -> tuple[str, ...]:
    # (one pattern for all of a rule's keys: the prefilter's cost grows with its patterns; no key here
    # ends another of the same rule, so no two ways end at the same place)
    return (one_of(keys) + f"[{AFTER_KEY},]",)


def _named_by_flag(flags: tuple[str, ...]) -> str:
    """A name after one of the CLI ``flags`` (written without their "--"), "=" or blanks between."""
    by_first: dict[str, list[str]] = {}
    for f in flags:
        by_first.setdefault(f[0], []).append(f)
    firsts = "".join(sorted(by_first))
    trie = "|".join(
        f"(?<={re.escape(ch)})" + literal_trie([w[1:] for w in ws]) for ch, ws in sorted(by_first.items())
    )
    return (
        f"[{firsts}](?<=--[{firsts}])(?:{trie})"
        # (a mark in the value's first 40 characters: see _flag_anchors)
        + r"(?:=|[ \t]{1,4})[\"']?(?=[A-Za-z0-9_]{0,40}[-_./0-9])(?P<v>"
        + _RESOURCE_NAME
        + ")"
        + _NAME_END
    )


def _flag_anchors(flags: tuple[str, ...]) -> tuple[str, ...]:
    """Up to a mark in the value (a hyphen, underscore, dot, slash or digit): "service runs" in prose
    is not tried."""
    return (one_of(flags) + r"(?:=|[ \t]{1,4})[\"']?[A-Za-z0-9_]{0,40}[-_./0-9]",)


# (token kind, snake-case key names, CLI flags): the kind an ARN of the same resource gets, so a name
# seen here and inside its ARN (arnnames.py) has one token
_NAMED_RESOURCES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("LAMBDA_ARN", ("function_name",), ("function-name",)),
    ("DYNAMODB_ARN", ("table_name",), ("table-name",)),
    ("SQS_ARN", ("queue_name",), ("queue-name",)),
    ("SNS_ARN", ("topic_name",), ("topic-name",)),
    ("CFN_STACK_ARN", ("stack_name",), ("stack-name",)),
    ("ECS_ARN", ("cluster_name", "service_name", "cluster"), ("cluster", "services", "service")),
    ("LOG_GROUP_ARN", ("log_group_name",), ("log-group-name", "log-group-identifier")),
    ("SECRET_ARN", ("secret_id", "secret_name"), ("secret-id",)),
    ("ECR_ARN", ("repository_name",), ("repository-name",)),
    ("KINESIS_ARN", ("stream_name",), ("stream-name",)),
    ("FIREHOSE_ARN", ("delivery_stream_name",), ("delivery-stream-name",)),
    ("STEP_FN_ARN", ("state_machine_name", "execution_name"), ()),
    (
        "BATCH_ARN",
        (
            "job_queue",
            "job_queue_name",
            "compute_environment",
            "compute_environment_name",
            "job_definition_name",
        ),
        ("job-queue", "compute-environment", "compute-environments"),
    ),
    ("GLUE_ARN", ("crawler_name", "job_name"), ("crawler-name", "job-name")),
    ("CODEBUILD_ARN", ("project_name",), ("project-name",)),
    ("ELB_ARN", ("load_balancer_name", "target_group_name"), ("load-balancer-name", "load-balancer-names")),
    (
        "ELASTICACHE_ARN",
        ("cache_cluster_id", "replication_group_id"),
        ("cache-cluster-id", "replication-group-id"),
    ),
    ("SSM_ARN", ("parameter_name",), ()),
    # IAM names outside their ARNs (get-role, list-access-keys, CloudTrail's userIdentity.userName)
    ("IAM_ROLE_ARN", ("role_name",), ("role-name",)),
    ("IAM_USER_ARN", ("user_name",), ("user-name",)),
    ("IAM_PROFILE_ARN", ("instance_profile_name",), ("instance-profile-name",)),
    # (a pipeline, a key pair, an Elastic Beanstalk environment and application)
    (
        "ARN",
        ("pipeline_name", "key_name", "environment_name", "application_name"),
        ("pipeline-name", "key-name", "environment-name", "application-name"),
    ),
    ("REDSHIFT_ARN", ("cluster_identifier",), ("cluster-identifier",)),
    ("EVENTS_ARN", ("rule_name", "event_bus_name"), ("rule", "event-bus-name")),
    (
        "SAGEMAKER_ARN",
        ("endpoint_name", "notebook_instance_name", "training_job_name"),
        ("endpoint-name", "notebook-instance-name", "training-job-name"),
    ),
)
_NAMED_EXTRA_KEYS = {
    "LOG_GROUP_ARN": ("awslogs-group", "logGroup"),
    "SSM_ARN": ("parameterName",),
    "ARN": ("Environment details for",),  # (`eb status`)
    # (DynamoDB's errors: "Requested resource not found: Table: orders-prod not found")
    "DYNAMODB_ARN": ("Table",),
}
# keys of lists of names: what list operations return (dynamodb list-tables: {"TableNames": [...]},
# an Auto Scaling group's LoadBalancerNames, a replication group's MemberClusters)
_NAMED_LIST_KEYS = {
    "DYNAMODB_ARN": ("table_names",),
    "LAMBDA_ARN": ("function_names", "lambda_function_names"),
    "KINESIS_ARN": ("stream_names",),
    "FIREHOSE_ARN": ("delivery_stream_names",),
    "GLUE_ARN": ("job_names", "crawler_names"),
    "ELB_ARN": ("load_balancer_names",),
    "ELASTICACHE_ARN": ("member_clusters",),
}
# a JSON or YAML flow list ([...]; also inside a string: a header's value), or a YAML block list
# (lines of "- item") after the key
# (or HCL's "=": a Terraform output, table_names = [...])
_NAME_LIST = (
    r"[\"']?[ \t]*[:=][ \t]*[\"']?(?P<v>\[[^\[\]{}]{0,65536}\]|(?:\r?\n[ \t]*-[ \t]+[^\r\n]{1,1024})+)"
)
_NAME_ITEM = _RESOURCE_NAME + _NAME_END


def _list_keys(*snakes: str) -> tuple[str, ...]:
    """A list key's forms: those of ``_snake_forms``, and the AWS CLI's text output's (TABLENAMES:
    the key in capitals, then each item on its own line after a tab)."""
    return _name_keys(*snakes, extra=tuple(s.replace("_", "").upper() for s in snakes))


def _named_rules() -> tuple[Rule, ...]:
    out: list[Rule] = []
    for kind, snakes, flags in _NAMED_RESOURCES:
        list_keys = _list_keys(*_NAMED_LIST_KEYS.get(kind, ()))
        keys = _name_keys(*snakes, extra=_NAMED_EXTRA_KEYS.get(kind, ()) + list_keys)
        slug = kind.lower().removesuffix("_arn") or "generic"
        key_sample, flag_sample = _snake_forms(snakes[0])[0], flags[0] if flags else ""
        if flags:  # (before the key rule, which would take --cluster=x as a key's value)
            out.append(
                Rule(
                    name=f"named_{slug}_flag",
                    echo=True,
                    category="arn",
                    kind=kind,
                    regex=_named_by_flag(flags),
                    description=f"A resource's name after its AWS CLI flags (--{flag_sample})",
                    anchors=_flag_anchors(flags),
                    validate=_resource_name_verdict,
                    must_match=(
                        (f"aws x y --{flag_sample} prod-x7-name --output json", "prod-x7-name"),
                        (f"--{flag_sample}=prod_x7.name.", "prod_x7.name"),
                    ),
                    must_not_match=(f"{flag_sample} prod-x7-name", f"--{flag_sample} default"),
                )
            )
        if list_keys:  # (before the key rule, which would take a list's first item alone)
            list_sample = list_keys[0]
            out.append(
                Rule(
                    name=f"named_{slug}_list",
                    echo=True,
                    category="arn",
                    kind=kind,
                    regex=words(list_keys) + _NAME_LIST,
                    items=_NAME_ITEM,
                    description=f"The names in a list of them under its key ({list_sample})",
                    anchors=_key_name_anchors(list_keys),
                    validate=_resource_name_verdict,
                    must_match=(
                        (f'{{"{list_sample}": ["prod-x7-name", "prod-y8-name"]}}', "prod-y8-name"),
                        (f"{list_sample}:\n- prod-x7-name\n- prod-y8-name\n", "prod-y8-name"),
                        (f"{list_sample}: [prod-x7-name, prod-y8-name]", "prod-x7-name"),
                    ),
                    must_not_match=(
                        f'{{"{list_sample}": ["default", "orders"]}}',
                        f'"{list_sample}": ["${{var.name}}"]',
                    ),
                )
            )
        out.append(
            Rule(
                name=f"named_{slug}_key",
                echo=True,
                category="arn",
                kind=kind,
                regex=_named_by_key(keys),
                description=f"A resource's name under its keys and CloudWatch dimensions ({key_sample})",
                anchors=_key_name_anchors(keys),
                validate=_named_key_verdict,
                must_match=(
                    (f'{{"{key_sample}": "prod-x7-name"}}', "prod-x7-name"),
                    (f'["AWS/X", "Errors", "{key_sample}", "prod-x7-name"]', "prod-x7-name"),
                    (f"--dimensions Name={key_sample},Value=prod-x7-name", "prod-x7-name"),
                    (f"DIMENSIONS\t{key_sample}\tprod-x7-name\n", "prod-x7-name"),
                ),
                must_not_match=(
                    f'"{key_sample}": "default"',
                    f'"{key_sample}": "${{var.name}}"',
                    f"{key_sample} = var.prod_name",
                    f'"{key_sample}": "1.2.3"',
                    f'"{key_sample}": "arn:aws:x:us-east-1:483920175526:y/z"',
                ),
            )
        )
    return tuple(out)


_SSM_PATH = r"/(?!aws/service/)[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+/?" + POSSESSIVE
_SSM_PATH_KEYS = ("Name", "name", "Path", "path", "valueFrom", "ValueFrom")

_APIGW_SIBLINGS = re.compile(
    r"(?:[\"']|^[ \t]*-?[ \t]*)(?:apiKeySource|endpointConfiguration|rootResourceId|disableExecuteApiEndpoint"
    r"|binaryMediaTypes)(?:[\"']|:)",
    re.M,
)

# words the rules below start at that are plain words elsewhere (the ``words`` scanner must try them)
LEAD_WORDS.update(("Name", "name", "Path", "path", "valueFrom", "ValueFrom", "Id", "id"))
LEAD_WORDS.update(("names", "cluster", "service", "services", "functions", "Environment"))
LEAD_WORDS.update(("Table", "Bucket", "Object", "MultipartUpload"))  # (boto3's resource API)

# Terraform resource types whose ID (in plan and apply progress lines, `terraform import`) or `name`
# argument is the resource's name or ID, by the token kind an ARN of the same resource gets
_TF_NAMED_TYPES: dict[str, tuple[str, ...]] = {
    "DYNAMODB_ARN": ("dynamodb_table",),
    "LAMBDA_ARN": ("lambda_function",),
    "SQS_ARN": ("sqs_queue",),
    "SNS_ARN": ("sns_topic",),
    "ELASTICACHE_ARN": ("elasticache_replication_group", "elasticache_cluster"),
    "LOG_GROUP_ARN": ("cloudwatch_log_group",),
    "SSM_ARN": ("ssm_parameter",),
    "KMS_ARN": ("kms_key",),
    "CLOUDFRONT_ARN": ("cloudfront_distribution",),
    "APIGW_ARN": ("api_gateway_rest_api", "apigatewayv2_api"),
    "IAM_ROLE_ARN": ("iam_role",),
    "IAM_USER_ARN": ("iam_user",),
    "ECR_ARN": ("ecr_repository",),
    "KINESIS_ARN": ("kinesis_stream",),
    "GLUE_ARN": ("glue_job", "glue_crawler"),
    "ECS_ARN": ("ecs_cluster", "ecs_service"),
    "EKS_ARN": ("eks_cluster", "eks_node_group"),
    "SECRET_ARN": ("secretsmanager_secret",),
    "ELB_ARN": ("lb", "alb", "elb", "lb_target_group", "alb_target_group"),
    "CODEBUILD_ARN": ("codebuild_project",),
    "COGNITO_ARN": ("cognito_user_pool",),
    "STEP_FN_ARN": ("sfn_state_machine",),
    "ARN": ("opensearch_domain", "elasticsearch_domain", "backup_vault", "backup_plan", "kms_alias"),
}
_TF_TYPE_OF = {f"aws_{t}": kind for kind, types in _TF_NAMED_TYPES.items() for t in types}
_TF_RESOURCE_HEADER = re.compile(r'resource[ \t]+"(aws_[a-z0-9_]+)"[ \t]+"[^"\n]*"[ \t]*\{')
_TF_ARGUMENT_NAME = r"(?!arn:)[A-Za-z0-9_./:-]{1,255}"


def _terraform_name_verdict(value: str, text: str, start: int) -> Verdict:
    """A ``name = "..."`` argument inside a resource block (in a plan or a configuration) of a type
    whose name is its identity: the nearest resource header above says which."""
    headers = list(_TF_RESOURCE_HEADER.finditer(text, max(0, start - 3000), start))
    if not headers or headers[-1][1] not in _TF_TYPE_OF:
        return Verdict.REJECT
    return _resource_name_verdict(value, text, start)


def _terraform_named_rules() -> tuple[Rule, ...]:
    out = []
    for kind, types in _TF_NAMED_TYPES.items():
        names = [f"aws_{t}" for t in types]
        out.append(
            Rule(
                name=f"terraform_{kind.lower().removesuffix('_arn')}_id",
                echo=True,
                category="arn",
                kind=kind,
                regex=(words(names) + _terraform_id(_TF_ARGUMENT_NAME)),
                description=f"A {types[0]}'s ID in Terraform's progress lines and `terraform import`",
                anchors=(one_of(names) + r"\.",),
                validate=_terraform_id_verdict,
                must_match=(
                    (f"{names[0]}.main: Refreshing state... [id=prod-x7-name]", "prod-x7-name"),
                    (f"terraform import {names[0]}.main prod-x7-name\n", "prod-x7-name"),
                ),
                must_not_match=(f"{names[0]}.main will be created", f"see {names[0]}.main for prod-x7-name"),
            )
        )
    return tuple(out)


# The names the Terraform AWS provider gives resource types in its messages, by token kind: its errors
# name the resource after a verb and its type ("Error: creating DynamoDB Table (orders-sessions): ...")
_TF_MESSAGE_TYPES: dict[str, tuple[str, ...]] = {
    "DYNAMODB_ARN": ("DynamoDB Table",),
    "LAMBDA_ARN": ("Lambda Function",),
    "SQS_ARN": ("SQS Queue",),
    "SNS_ARN": ("SNS Topic", "SNS Topic Subscription"),
    "ELASTICACHE_ARN": ("ElastiCache Replication Group", "ElastiCache Cache Cluster", "ElastiCache Cluster"),
    "LOG_GROUP_ARN": ("CloudWatch Logs Log Group",),
    "SSM_ARN": ("SSM Parameter",),
    "KMS_ARN": ("KMS Key", "KMS Alias"),
    "IAM_ROLE_ARN": ("IAM Role", "IAM Role Policy"),
    "IAM_USER_ARN": ("IAM User",),
    "IAM_POLICY_ARN": ("IAM Policy",),
    "IAM_PROFILE_ARN": ("IAM Instance Profile",),
    "ECR_ARN": ("ECR Repository",),
    "KINESIS_ARN": ("Kinesis Stream",),
    "FIREHOSE_ARN": ("Kinesis Firehose Delivery Stream",),
    "GLUE_ARN": ("Glue Job", "Glue Crawler"),
    "ECS_ARN": ("ECS Cluster", "ECS Service", "ECS Task Definition"),
    "EKS_ARN": ("EKS Cluster", "EKS Node Group"),
    "SECRET_ARN": ("Secrets Manager Secret",),
    "STEP_FN_ARN": ("Step Functions State Machine", "SFN State Machine"),
    "CFN_STACK_ARN": ("CloudFormation Stack",),
    "ELB_ARN": ("ELBv2 Load Balancer", "ELBv2 Target Group", "ELBv2 Listener"),
    "CODEBUILD_ARN": ("CodeBuild Project",),
    "EVENTS_ARN": ("EventBridge Rule", "EventBridge Target"),
    "REDSHIFT_ARN": ("Redshift Cluster",),
    "ES_DOMAIN_ARN": ("OpenSearch Domain",),
    "COGNITO_ARN": ("Cognito User Pool",),
    "APIGW_ARN": ("API Gateway REST API", "API Gateway Stage", "API Gateway V2 API"),
    "ROUTE53_ARN": ("Route 53 Hosted Zone", "Route53 Hosted Zone"),
    "ARN": ("CloudWatch Metric Alarm",),
}
_TF_MESSAGE_VERBS = (
    "creating|reading|updating|deleting|waiting for|putting|setting|importing|tagging|untagging|listing"
    "|finding|describing|modifying|enabling|disabling|attaching|detaching|adding|removing|associating"
    "|disassociating|starting|stopping|restoring|replacing|refreshing"
)
_TF_MESSAGE_NAME = r"(?!arn:)[A-Za-z0-9_./:+=@#-]{1,255}"


_TF_MESSAGE_HEAD = re.compile(
    r"(?<![A-Za-z0-9_])(?i:" + _TF_MESSAGE_VERBS + r")[ \t]+[A-Za-z0-9 ]{2,40}[ \t]+\([\"'`]?\Z"
)


def _terraform_message_verdict(value: str, text: str, start: int) -> Verdict:
    """Any name the provider names after a verb and the type (a plain word too: ``orders``), but a
    token. (The rule matches from the type's name: a verb in front, looked for here, would make
    every word a place to try it in the fallback scanner.)"""
    if value[:4] == "AWS_" and _TOKEN_SHAPE.fullmatch(value):
        return Verdict.REJECT
    return Verdict.MASK if _TF_MESSAGE_HEAD.search(text, max(0, start - 80), start) else Verdict.REJECT


def _terraform_message_rules() -> tuple[Rule, ...]:
    out = []
    for kind, names in _TF_MESSAGE_TYPES.items():
        spelled = (*names, *(name.lower() for name in names))
        out.append(
            Rule(
                name=f"terraform_message_{kind.lower().removesuffix('_arn')}",
                echo=True,
                category="arn",
                kind=kind,
                regex=words(spelled) + r"[ \t]+\([\"'`]?(?P<v>" + _TF_MESSAGE_NAME + r")[\"'`]?\)",
                description=(
                    f"A {names[0]}'s name in the Terraform AWS provider's messages "
                    f"(Error: creating {names[0]} (<name>): ...)"
                ),
                anchors=(one_of(spelled) + r"[ \t]{1,4}\(",),
                validate=_terraform_message_verdict,
                must_match=(
                    (f"Error: creating {names[0]} (orders-prod-x7): AlreadyExists", "orders-prod-x7"),
                    (f"│ Error: reading {names[-1]} (orders): not found", "orders"),
                    (f"error waiting for {names[0].lower()} (`orders-x7`) to be ready", "orders-x7"),
                ),
                must_not_match=(f"the {names[0]} (default) is used", f"a {names[0]} (Node.js) handler"),
            )
        )
    return tuple(out)


# a key that ends in what the resource is (ORDERS_TABLE, LAMBDA_FUNCTION, ECS_SERVICE, RDS_INSTANCE,
# DB_INSTANCE_IDENTIFIER, SessionsTableName, a CDK output's Stack.OrdersFunctionName, Pulumi's
# dbIdentifier): environment variables, CI variables, stack outputs
_NAMED_SUFFIXES = (
    "Table",
    "Function",
    "Queue",
    "Topic",
    "Stream",
    "Cluster",
    "Service",
    "Instance",
    "Identifier",
    "Repository",
    "Pipeline",
    "StateMachine",
)
_SNAKE_PARTS = [re.findall("[A-Z][a-z]*", word) for word in _NAMED_SUFFIXES]
# (STATE_MACHINE, state_machine, state-machine; StateMachine after a lower-case letter or a digit)
_NAMED_SUFFIX_SNAKE = "|".join(
    "[_-]".join(case(part) for part in parts) for case in (str.upper, str.lower) for parts in _SNAKE_PARTS
)
_NAMED_SUFFIX_CAMEL = "|".join(_NAMED_SUFFIXES)
_NAMED_SUFFIX_KEY = (
    r"[A-Za-z][A-Za-z0-9_.-]{0,60}(?:[_-](?:"
    + _NAMED_SUFFIX_SNAKE
    + ")|[a-z0-9](?:"
    + _NAMED_SUFFIX_CAMEL
    + "))"
)
WORD_GUARDS += (_NAMED_SUFFIX_KEY,)


# AWS Config (evaluation results, configuration items) and other inventories: a resource named by
# ResourceId/resourceName beside its type
_NAMED_RESOURCE_TYPE = re.compile(
    r"[Rr]esource_?[Tt]ype[\"']?\s*[:=]\s*[\"']?AWS::(?:S3::Bucket|Lambda::Function|DynamoDB::Table|SQS::Queue"
    r"|SNS::Topic|RDS::DB(?:Instance|Cluster)|ECS::(?:Cluster|Service)|Kinesis::Stream|ECR::Repository"
    r"|Logs::LogGroup|SecretsManager::Secret|SSM::Parameter|ElastiCache::\w+|CloudFormation::Stack"
    r"|CodeBuild::Project|Glue::(?:Job|Crawler)|StepFunctions::StateMachine|KinesisFirehose::DeliveryStream)\b"
)


def _typed_resource_verdict(value: str, text: str, start: int) -> Verdict:
    """A ResourceId or resourceName is a name where the object it stands in (within 300 characters
    either way) gives a resource type whose ID is its name."""
    if not _NAMED_RESOURCE_TYPE.search(text, max(0, start - 300), start + len(value) + 300):
        return Verdict.REJECT
    return _resource_name_verdict(value, text, start)


_NINTH_REVIEW_RULES: tuple[Rule, ...] = (
    *_named_rules(),
    *_terraform_named_rules(),
    *_terraform_message_rules(),
    Rule(
        name="typed_resource_id",
        echo=True,
        category="arn",
        kind="ARN",
        regex=words(["ResourceId", "resourceId", "resourceName", "ResourceName", "ComplianceResourceId"])
        + ASSIGN
        + r"(?P<v>"
        + _RESOURCE_NAME
        + ")"
        + _NAME_END,
        description=(
            "A resource's name as its ResourceId/resourceName beside a type whose ID is its name "
            "(AWS Config's evaluation results and configuration items: buckets, functions, tables...)"
        ),
        anchors=(
            one_of(["ResourceId", "resourceId", "resourceName", "ResourceName", "ComplianceResourceId"])
            + f"[{AFTER_KEY}]",
        ),
        validate=_typed_resource_verdict,
        must_match=(
            (
                '{"ResourceType": "AWS::Lambda::Function", "ResourceId": "acme-billing-sync"}',
                "acme-billing-sync",
            ),
            (
                '{"resourceType": "AWS::DynamoDB::Table", "resourceName": "acme-sessions-prod"}',
                "acme-sessions-prod",
            ),
        ),
        must_not_match=(
            '{"ResourceType": "AWS::EC2::Volume", "ResourceId": "data-volume-1"}',
            '{"ResourceId": "acme-billing-sync"}',
        ),
    ),
    Rule(
        name="named_suffix_key",
        echo=True,
        category="arn",
        kind="ARN",
        regex=(
            r"[A-Za-z](?<![A-Za-z0-9_.-].)[A-Za-z0-9_.-]{0,60}?(?:[_-](?:"
            + _NAMED_SUFFIX_SNAKE
            + r")(?:[_-](?:NAME|name))?|(?<=[a-z0-9])(?:"
            + _NAMED_SUFFIX_CAMEL
            + r")(?:Name)?)"
            # (or columns apart: a two-column table of outputs, `pulumi stack output`)
            + r"(?:[\"']?[ \t]*[:=][ \t]*[\"']?|\t[ \t]*|[ \t]{2,})(?P<v>"
            + _RESOURCE_NAME
            + ")"
            + _NAME_END
        ),
        description=(
            "A resource's name under a key that ends in what it is (ORDERS_TABLE, LAMBDA_FUNCTION, "
            "ECS_SERVICE, RDS_INSTANCE, SessionsTableName, a CDK output's Stack.OrdersFunctionName), also "
            "in a column after it"
        ),
        # (the key and what may follow it: "describe-instances" in prose is no key)
        anchors=(_NAMED_SUFFIX_KEY + "(?:[_-](?:NAME|name)|Name)?[\"' \t:=]",),
        validate=_resource_name_verdict,
        must_match=(
            ("ECS_CLUSTER: acme-prod-ecs", "acme-prod-ecs"),
            ("export ORDERS_TABLE=acme-orders-prod", "acme-orders-prod"),
            (
                "AcmeApiStack.OrdersFunctionName = AcmeApiStack-OrdersHandler5B2E-Xy9Zw8Vu7Ts6",
                "AcmeApiStack-OrdersHandler5B2E-Xy9Zw8Vu7Ts6",
            ),
            ('{"DeadLetterQueueName": "acme-orders-dlq"}', "acme-orders-dlq"),
            ("    dbIdentifier  orders-db-4d5e6f\n", "orders-db-4d5e6f"),
            ("RDS_INSTANCE=orders-db-prod-1", "orders-db-prod-1"),
        ),
        must_not_match=(
            "HASH_TABLE=default",
            "MAX_QUEUE=100",
            "PRIMARY_CLUSTER: us-east-1",
            '"StreamName": "prod-x7-name"',  # (its own key rule's)
        ),
    ),
    Rule(
        name="serverless_info_functions",
        echo=True,
        category="arn",
        kind="LAMBDA_ARN",
        # `serverless info` (sls info, sls deploy): each function's handle and the name it was deployed
        # as (<service>-<stage>-<function>), under a "functions:" line
        regex=(
            # (at a line's start, a string's or a query argument's)
            r"functions:(?<![^\n\"'=]functions:)[ \t]*\r?\n"
            # (`sls deploy` adds each function's size: getOrders: orders-prod-getOrders (1.2 MB))
            r"(?P<v>(?:[ \t]+[A-Za-z0-9_-]{1,64}:[ \t]+[^\s:]{1,170}(?:[ \t]+\([0-9.]{1,8}[ \t]?[kKMG]?B\))?"
            r"[ \t]*(?:\r?\n|\Z))+)"
        ),
        items=r":[ \t]+(?P<v>" + _RESOURCE_NAME + ")" + _NAME_END,
        description="The Lambda function names `serverless info` lists under its functions: line",
        anchors=("functions:",),
        validate=_resource_name_verdict,
        must_match=(
            ("functions:\n  listOrders: orders-api-prod-listOrders\n", "orders-api-prod-listOrders"),
            ("stage: prod\nfunctions:\n  a: svc-prod-a\n  b: svc-prod-b\nlayers:\n  None\n", "svc-prod-b"),
        ),
        must_not_match=(
            "functions:\n  hello:\n    handler: handler.hello\n",
            "functions:\n  hello: handler\n",
            "my functions:\n  a: svc-prod-a\n",
        ),
    ),
    Rule(
        name="boto3_table",
        echo=True,
        category="arn",
        kind="DYNAMODB_ARN",
        # boto3's resource API: dynamodb.Table("orders-prod"), also with name=
        regex=(r"Table\((?<=\.Table\()[ \t]*(?:name[ \t]*=[ \t]*)?[\"'](?P<v>" + _RESOURCE_NAME + r")[\"']"),
        description="A DynamoDB table's name given to boto3's resource API (dynamodb.Table(\"x\"))",
        anchors=(r"Table\(",),
        validate=_resource_name_verdict,
        must_match=(
            ('table = ddb.Table("orders-prod-table")', "orders-prod-table"),
            ("ddb.Table(name='orders_v2')", "orders_v2"),
        ),
        must_not_match=('ddb.Table("orders")', 'Table("orders-prod")', "ddb.Table(name)"),
    ),
    Rule(
        name="boto3_bucket",  # (Bucket("x") itself: s3_sdk_bucket)
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # boto3's resource API: s3.Bucket("acme-data"), s3.Object("acme-data", "key"), s3.BucketPolicy(...)
        regex=(
            r"[BOM](?<=\.[BOM])(?:(?<=B)ucket(?:Policy|Acl|Versioning|Cors|Lifecycle|Logging|Tagging|Website)?"
            r"|(?<=O)bject(?:Summary|Acl)?|(?<=M)ultipartUpload)"
            r"\([ \t]*(?:(?:bucket_name|name)[ \t]*=[ \t]*)?[\"'](?P<v>" + BUCKET + r")[\"']"
        ),
        description=(
            'A bucket\'s name given to boto3\'s resource API (s3.Bucket("x"), s3.Object("x", "key"), '
            's3.BucketPolicy("x"))'
        ),
        anchors=(r"Bucket[A-Za-z]{0,12}\(", r"Object[A-Za-z]{0,7}\(", r"MultipartUpload\("),
        validate=_bucket_verdict,
        must_match=(
            ("obj = s3.Object('acme-data-prod', 'k.json')", "acme-data-prod"),
            ('s3.BucketPolicy(bucket_name="acme-data-prod")', "acme-data-prod"),
        ),
        must_not_match=('Object("acme-data-prod")', "s3.Object(name, key)", 'x.Objects("acme-data-prod")'),
    ),
    Rule(
        name="terraform_resource_name",
        echo=True,
        category="arn",
        kind="ARN",
        regex=r"n(?<![A-Za-z0-9_]n)ame[ \t]{0,40}=[ \t]{0,4}\"(?P<v>" + _RESOURCE_NAME + r')"',
        description=(
            "The name argument of a Terraform resource whose name is its identity (a table, function, "
            "queue, log group...), in a plan or a configuration"
        ),
        anchors=(r"name[ \t]{0,40}=[ \t]{0,4}\"",),
        validate=_terraform_name_verdict,
        must_match=(
            ('  ~ resource "aws_dynamodb_table" "orders" {\n        name = "orders-prod"\n', "orders-prod"),
            ('resource "aws_sqs_queue" "q" {\n  + name = "order-events-prod"\n', "order-events-prod"),
        ),
        must_not_match=(
            'resource "aws_security_group" "web" {\n  name = "web-sg-prod"\n',
            'resource "aws_dynamodb_table" "t" {\n  name = "orders"\n',
            'name = "orders-prod"',
        ),
    ),
    Rule(
        name="service_user_name_account",
        category="account",
        kind="ACCOUNT",
        regex=(
            words(["ServiceUserName", "serviceUserName"])
            + ASSIGN
            + r"[A-Za-z0-9+=,.@_-]{1,64}?-at-(?P<v>[0-9]{12})(?![0-9])"
        ),
        description="The account in a service-specific credential's user name (<user>-at-<account>)",
        anchors=(one_of(["ServiceUserName", "serviceUserName"]) + f"[{AFTER_KEY}]",),
        must_match=(('"ServiceUserName": "ci-deployer-at-520394817263"', "520394817263"),),
        must_not_match=('"ServiceUserName": "ci-deployer-at-5203948172630"',),
    ),
    Rule(
        name="logs_tail_group",
        echo=True,
        category="arn",
        kind="LOG_GROUP_ARN",
        regex=words(["logs"]) + r"[ \t]{1,4}tail[ \t]{1,4}[\"']?(?P<v>" + _RESOURCE_NAME + ")" + _NAME_END,
        description="The log group of `aws logs tail <group>` (a positional argument)",
        anchors=(r"logs[ \t]{1,4}tail[ \t]",),
        validate=_cli_name_verdict,
        must_match=(("$ aws logs tail /ecs/orders-api-prod --follow", "/ecs/orders-api-prod"),),
        must_not_match=("aws logs tail --help", "check the logs tail -f output"),
    ),
    Rule(
        name="named_cli_name_flag",
        echo=True,
        category="arn",
        kind="ARN",
        regex=_named_by_flag(("name", "names")),
        description=(
            "A resource's name after --name/--names on an `aws <service> <operation>` line (eks "
            "update-kubeconfig, glue start-crawler, codepipeline get-pipeline-state, ssm get-parameter)"
        ),
        anchors=_flag_anchors(("name", "names")),
        validate=_cli_name_verdict,
        must_match=(
            ("aws eks update-kubeconfig --name prod-eks-1 --region us-east-1", "prod-eks-1"),
            ("aws ssm get-parameter --name /prod/db/password", "/prod/db/password"),
        ),
        must_not_match=("docker run --name web-1 nginx", "aws eks update-kubeconfig --name default"),
    ),
    Rule(
        name="ssm_parameter_path",
        echo=True,
        category="arn",
        kind="SSM_ARN",
        regex=(
            r"[NnPpVv](?<![A-Za-z0-9_].)(?:(?<=[Nn])ame|(?<=P)ath|(?<=--p)ath|(?<=[Vv])alueFrom)"
            r"[\"']?[ \t]{0,4}(?:[:=]|(?<=--path|--name)[ \t])"
            r"[ \t]{0,4}[\"']?(?P<v>" + _SSM_PATH + ")" + _NAME_END
        ),
        description=(
            "An SSM parameter's hierarchical name (/prod/db/password) under Name, Path and valueFrom "
            "(an ECS secret) and after --name/--path; AWS's public /aws/service/ parameters are kept"
        ),
        anchors=(
            *(re.escape(k) + r"[\"']?[ \t]{0,4}[:= \t][ \t]{0,4}[\"']?/" for k in ("Name", "name", "Path")),
            r"path[ \t=][ \t]{0,4}[\"']?/",
            r"[Vv]alueFrom[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?/",
        ),
        must_match=(
            ('{"Parameter": {"Name": "/prod/db/password", "Type": "SecureString"}}', "/prod/db/password"),
            ('"valueFrom": "/prod/db/password"', "/prod/db/password"),
            ("aws ssm get-parameters-by-path --path /prod/db/ --recursive", "/prod/db/"),
        ),
        must_not_match=(
            '"Name": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"',
            '"name": "/"',
            "the name /etc",
        ),
    ),
    Rule(
        name="ssm_dynamic_reference",
        echo=True,
        category="arn",
        kind="SSM_ARN",
        regex=(
            r"s(?:(?<=\{s)|(?<=resolve:s))sm(?:-secure)?:(?P<v>(?!aws/service/|/aws/service/)"
            r"/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)" + _NAME_END
        ),
        description=(
            "An SSM parameter's name in CloudFormation's {{resolve:ssm:NAME}} and {{resolve:ssm-secure:"
            "NAME}} and the Serverless Framework's ${ssm:NAME}"
        ),
        anchors=("ssm:", "ssm-secure:"),
        must_match=(
            ("{{resolve:ssm-secure:/prod/db/password:1}}", "/prod/db/password"),
            ("${ssm:/prod/db/password}", "/prod/db/password"),
            ("{{resolve:ssm:prod.db.host}}", "prod.db.host"),
        ),
        must_not_match=(
            "arn:aws:ssm:us-east-1",
            '"Action": "ssm:GetParameter"',
            "{{resolve:ssm:/aws/service/x/y}}",
        ),
    ),
    Rule(
        name="aws_log_group_name",
        echo=True,
        category="arn",
        kind="LAMBDA_ARN",
        kind_of=lambda v: "LAMBDA_ARN",
        regex=(
            r"a(?<=/a)(?<![A-Za-z0-9_.-]/a)ws/(?:lambda|codebuild|eks|rds/(?:instance|cluster)|ecs/containerinsights"
            r"|vendedlogs/states|batch/job|glue/jobs/[a-z]+|sagemaker/[A-Za-z]+|kinesisfirehose"
            r"|elasticbeanstalk|opensearch/domains|msk|ssm|ecs|events|appsync/apis)/"
            # (not a token of this masker's: a masked text scanned again finds nothing)
            r"(?!AWS_[A-Z][A-Z0-9_]*_[0-9a-f]{12}(?![A-Za-z0-9_.-]))(?P<v>"
            r"[A-Za-z0-9_.-]{1,256}" + POSSESSIVE + ")(?![A-Za-z0-9_.-])"
        ),
        description=(
            "The resource name in an AWS log group: /aws/lambda/<function>, /aws/codebuild/<project>, "
            "/aws/eks/<cluster>/cluster, /aws/rds/instance/<db>/..., /aws/ecs/containerinsights/<cluster>, "
            "/aws/elasticbeanstalk/<environment>/..., /aws/opensearch/domains/<domain>/..., "
            "/aws/msk/<cluster>, /aws/ssm/<name>, /aws/ecs/<cluster>, /aws/events/<rule>"
        ),
        anchors=(
            "aws/(?:lambda|codebuild|eks|rds|ecs|vendedlogs|batch|glue|sagemaker|kinesisfirehose|elasticbeanstalk"
            "|opensearch|msk|ssm|events|appsync)/",
        ),
        must_match=(
            ("aws logs tail /aws/lambda/prod-order-handler --follow", "prod-order-handler"),
            ('"logGroupName": "/aws/codebuild/prod-build"', "prod-build"),
            ("/aws/eks/prod-eks-1/cluster", "prod-eks-1"),
            (
                '"logGroupName": "/aws/elasticbeanstalk/acme-web-prod/var/log/nginx/error.log"',
                "acme-web-prod",
            ),
            ('"CloudWatchLogGroupName": "/aws/ssm/acme-runcommand"', "acme-runcommand"),
        ),
        must_not_match=(
            "/aws/service/x",
            "/aws/lambda/",
            "x/aws/lambda/y",
            "/aws/ecs/AWS_ECS_ARN_0123456789ab",
        ),
    ),
    Rule(
        name="lambda_log_stream",
        category="arn",
        kind="LOG_GROUP_ARN",
        regex=(
            r"(?:"
            + words(["LATEST"])
            + r"(?<=\[\$LATEST)|[0-9](?<![A-Za-z0-9_]\[[0-9])(?<=\[[0-9])[0-9]{0,2})"
            r"\](?P<v>[0-9a-f]{32})" + _ID_END
        ),
        description="A Lambda log stream's execution environment ID: 2024/01/15/[$LATEST]<32 hex>",
        anchors=(r"LATEST\][0-9a-f]{32}", r"[0-9]{1,3}\][0-9a-f]{32}"),
        must_match=(
            ("2024/01/15/[$LATEST]0a1b2c3d4e5f67890a1b2c3d4e5f6789", "0a1b2c3d4e5f67890a1b2c3d4e5f6789"),
            ("2024/01/15/[12]0a1b2c3d4e5f67890a1b2c3d4e5f6789", "0a1b2c3d4e5f67890a1b2c3d4e5f6789"),
        ),
        must_not_match=("[$LATEST]0a1b", "x[1]0a1b2c3d4e5f67890a1b2c3d4e5f6789"),
    ),
    Rule(
        name="service_id",
        echo=True,
        category="arn",
        kind="ARN",
        regex=(
            r"[dejipsw](?<![A-Za-z0-9_.][dejipsw])(?:"
            # EMR: a cluster (j-), a step (s-), an instance group (ig-) or fleet (if-): 12-14 upper-case
            # letters and digits, one of each at least
            r"(?:(?<=[js])-|(?<=i)[gf]-)(?=[A-Z]{0,13}[0-9])(?=[0-9]{0,13}[A-Z])[A-Z0-9]{12,14}"
            + _ID_END
            # a Transfer Family server (s- and 17 hex digits)
            + r"|(?<=s)-[0-9a-f]{17}"
            + _ID_END
            # a Directory Service directory or Identity Store (d- and 10 hex digits, a digit among them)
            + r"|(?<=d)-(?=[a-f]{0,9}[0-9])[0-9a-f]{10}"
            + _ID_END
            # a CodeDeploy deployment (d- and 9 upper-case letters and digits, one of each)
            + r"|(?<=d)-(?=[A-Z]{0,8}[0-9])(?=[0-9]{0,8}[A-Z])[A-Z0-9]{9}"
            + _ID_END
            # an Elastic Beanstalk environment (e- and 10 lower-case letters and digits, a digit); also in
            # its resources' names (awseb-e-abcd1234ef-stack)
            + r"|(?<=e)-(?=[a-z]{0,9}[0-9])[a-z0-9]{10}(?![A-Za-z0-9_])"
            # a WorkSpace (ws-, 9 lower-case letters and digits, a digit)
            + r"|(?<=w)s-(?=[a-z]{0,8}[0-9])[a-z0-9]{9}"
            + _ID_END
            # Service Catalog: a product, provisioning artifact, portfolio (13 letters and digits, a digit)
            + r"|(?<=p)(?:rod|a|ort)-(?=[a-z]{0,12}[0-9])[a-z0-9]{13}"
            + _ID_END
            # IAM Identity Center: an instance and a permission set (16 hex digits)
            + r"|(?<=s)soins-[0-9a-f]{16}"
            + _ID_END
            + r"|(?<=p)s-[0-9a-f]{16}"
            + _ID_END
            # a Glue job run
            + r"|(?<=j)r_[0-9a-f]{64}"
            + _ID_END
            + ")"
        ),
        description=(
            "IDs of EMR clusters, steps and instance groups, Transfer servers, directories, CodeDeploy "
            "deployments, Beanstalk environments, WorkSpaces, Service Catalog products, Identity Center "
            "instances and permission sets, Glue job runs: by their shapes"
        ),
        anchors=(
            "[js]-[A-Z0-9]{12}",
            "i[gf]-[A-Z0-9]{12}",
            "s-[0-9a-f]{17}",
            "d-[0-9a-f]{10}",
            "d-[A-Z0-9]{9}",
            "e-[a-z0-9]{10}",
            "ws-[a-z0-9]{9}",
            "prod-[a-z0-9]{13}",
            "pa-[a-z0-9]{13}",
            "port-[a-z0-9]{13}",
            "ssoins-[0-9a-f]{16}",
            "ps-[0-9a-f]{16}",
            "jr_[0-9a-f]{64}",
        ),
        must_match=(
            ("aws emr describe-cluster --cluster-id j-2AXXXXXXGAPLF", "j-2AXXXXXXGAPLF"),
            ('{"StepIds": ["s-1A2B3C4D5E6F7"]}', "s-1A2B3C4D5E6F7"),
            ("aws transfer describe-server --server-id s-01234567890abcdef", "s-01234567890abcdef"),
            ('{"DirectoryId": "d-906716a2b1"}', "d-906716a2b1"),
            ("Deployment d-A1B2C3D4E failed", "d-A1B2C3D4E"),
            ("awseb-e-abcd1234ef-stack", "e-abcd1234ef"),
            ('{"WorkspaceId": "ws-f9abc1234"}', "ws-f9abc1234"),
            ('{"ProductId": "prod-4v6rc4hwaiiha"}', "prod-4v6rc4hwaiiha"),
            ("instance/ssoins-72231234567890ab", "ssoins-72231234567890ab"),
            ("jr_" + "0a1b2c3d" * 8, "jr_" + "0a1b2c3d" * 8),
        ),
        must_not_match=(
            "j-ABCDEFGHIJKLM",
            "s-1234567890123",
            "e-commerce and e-learning",
            "d-deadbeefaa",
            "prod-environment",
            "ws-frontends",
            "x.j-2AXXXXXXGAPLF",
        ),
    ),
    Rule(
        name="uuid_id_key",
        echo=True,
        category="arn",
        kind="ARN",
        regex=_keyed_id(
            (
                "CommandId",
                "commandId",
                "--command-id",
                "QueryExecutionId",
                "queryExecutionId",
                "--query-execution-id",
                "pipelineExecutionId",
                "--pipeline-execution-id",
                "executionId",
                "--execution-id",
                "IdentityStoreUserId",
                "PrincipalId",
            ),
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        ),
        description="UUIDs of SSM commands, Athena queries, pipeline executions and Identity Store users",
        anchors=_keyed_anchors(
            (
                "CommandId",
                "commandId",
                "--command-id",
                "QueryExecutionId",
                "queryExecutionId",
                "--query-execution-id",
                "pipelineExecutionId",
                "--pipeline-execution-id",
                "executionId",
                "--execution-id",
                "IdentityStoreUserId",
                "PrincipalId",
            )
        ),
        must_match=(
            ('{"CommandId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"}', "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
            (
                "--query-execution-id 1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
                "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
            ),
        ),
        must_not_match=('"RequestId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"',),
    ),
    Rule(
        name="ssm_session_id",
        echo=True,
        category="arn",
        kind="SSM_ARN",
        regex=_keyed_id(("SessionId", "sessionId", "--session-id"), r"[A-Za-z0-9_.@+=-]{1,64}-[0-9a-f]{17}"),
        description="An SSM Session Manager session's ID (<user>-<17 hex digits>) under its keys and flag",
        anchors=_keyed_anchors(("SessionId", "sessionId", "--session-id")),
        must_match=(
            ("Starting session with SessionId: alice-0a1b2c3d4e5f67890", "alice-0a1b2c3d4e5f67890"),
            ("aws ssm terminate-session --session-id alice-0a1b2c3d4e5f67890", "alice-0a1b2c3d4e5f67890"),
        ),
        must_not_match=('"SessionId": "abc"',),
    ),
    Rule(
        name="cloudfront_plain_id",
        echo=True,
        category="arn",
        kind="CLOUDFRONT_ARN",
        # (a plain Id is every other key of a dump: the anchor runs into the value's shape, so the rule
        # is tried only where an Id holds E and 12-13 upper-case letters and digits)
        regex=(
            r"I(?<![A-Za-z0-9_]I)d[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?P<v>" + _CF_DIST_ID + ")" + _ID_END
        ),
        description="A CloudFront distribution's ID under a plain Id key (get-distribution and the like)",
        anchors=(r"Id[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?E[A-Z0-9]{12}",),
        must_match=(('{"Distribution": {"Id": "E1A2B3C4D5E6F7", "ARN": "x"}}', "E1A2B3C4D5E6F7"),),
        must_not_match=('{"Id": "EXAMPLEEXAMPLE"}', '{"Id": "E1A2B3C4D5E6F7G8"}'),
    ),
    Rule(
        name="apigateway_plain_id",
        echo=True,
        category="arn",
        kind="APIGW_ARN",
        regex=(
            r"i(?<![A-Za-z0-9_]i)d[\"']?[ \t]{0,4}:[ \t]{0,4}[\"']?(?P<v>"
            + _APIGW_ID
            # (quoted; or in YAML unquoted, to the end of its line)
            + r")(?:[\"']|[ \t]*(?=\r?\n|\Z))"
        ),
        description=(
            "An API Gateway REST API's ID under a plain id key, with a REST API's members around it "
            "(get-rest-apis, get-rest-api: apiKeySource, endpointConfiguration, rootResourceId)"
        ),
        anchors=(r"id[\"']?[ \t]{0,4}:[ \t]{0,4}[\"']?[a-z0-9]{10}",),
        validate=lambda value, text, start: (
            Verdict.MASK if _APIGW_SIBLINGS.search(text, max(0, start - 600), start + 600) else Verdict.REJECT
        ),
        must_match=(
            ('{"id": "a1b2c3d4e5", "name": "prod-api", "apiKeySource": "HEADER"}', "a1b2c3d4e5"),
            ("items:\n- apiKeySource: HEADER\n  id: k3m9x2p7q1\n  name: orders-api\n", "k3m9x2p7q1"),
        ),
        must_not_match=(
            '{"id": "a1b2c3d4e5", "name": "prod-api"}',
            "id: k3m9x2p7q1\nname: my-api\n",
            '{"id": "abcdefghij", "apiKeySource": "x"}',
        ),
    ),
)


# --------------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------------

_S3_PROSE_WORDS = ("S3", "s3", "Bucket", "bucket")
_S3_LIST_WORDS = ("S3", "s3", "Buckets", "buckets")
_RDS_PROSE_WORDS = (
    "RDS",
    "rds",
    "Database",
    "database",
    "DB",
    "db",
    "Aurora",
    "aurora",
    # an Aurora cluster's members, as the console and `describe-db-clusters` summaries name them
    "Reader instance",
    "reader instance",
    "Writer instance",
    "writer instance",
    # the API's own messages: "DBInstance orders-db not found", "DBClusterSnapshot x not found"
    "DBInstance",
    "DBCluster",
    "DBSnapshot",
    "DBClusterSnapshot",
    # (the SDKs' spelling in some messages: "DbCluster x is not currently in the available state")
    "DbInstance",
    "DbCluster",
)
# Resource names in prose after the service and the resource's type ("the ECS service checkout-api in
# cluster payments-prod", "Lambda function `orders-handler`", "SQS queue orders-dlq"): per service, the
# words that lead to a name and the kind of its token. A name needs a hyphen, dot, digit or underscore,
# or quotes, or "named"/"called" before it (as for buckets and RDS identifiers in prose); hyphenated
# English and the AWS CLI's operations are no names.
_PROSE_NAME_LEADS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "lambda",
        "LAMBDA_ARN",
        ("Lambda function", "lambda function", "Lambda"),
        ("function",),
        "orders-handler",
    ),
    (
        "dynamodb",
        "DYNAMODB_ARN",
        ("DynamoDB table", "DynamoDB", "dynamodb table", "Dynamo table"),
        (),
        "orders-db",
    ),
    ("sqs", "SQS_ARN", ("SQS queue", "SQS", "sqs queue"), ("queue",), "orders-dlq"),
    ("sns", "SNS_ARN", ("SNS topic", "SNS", "sns topic"), (), "alerts-prod"),
    (
        "ecs",
        "ECS_ARN",
        ("ECS service", "ECS cluster", "ECS task definition", "ECS"),
        ("service", "cluster"),
        "api-svc-2",
    ),
    ("eks", "EKS_ARN", ("EKS cluster", "EKS", "eks cluster"), (), "prod-eks-1"),
    (
        "stack",
        "CFN_STACK_ARN",
        ("CloudFormation stack", "CFN stack"),
        ("stack", "Stack"),
        "orders-prod-stack",
    ),
    ("secret", "SECRET_ARN", ("Secrets Manager secret",), ("secret", "Secret"), "prod/orders/db-creds"),
    ("log_group", "LOG_GROUP_ARN", ("log group", "Log group", "log stream"), (), "orders-api-logs"),
    (
        "state_machine",
        "STEP_FN_ARN",
        ("state machine", "State machine", "Step Function"),
        (),
        "orders-flow-2",
    ),
    (
        "kinesis",
        "KINESIS_ARN",
        ("Kinesis stream", "kinesis stream", "Kinesis data stream", "Firehose stream", "delivery stream"),
        (),
        "clicks-stream-1",
    ),
    ("iam_role", "IAM_ROLE_ARN", ("IAM role", "iam role"), ("role", "Role"), "orders-lambda-exec"),
    ("iam_user", "IAM_USER_ARN", ("IAM user", "iam user"), (), "ci-deployer-2"),
)
"""Per service: the rule's name, the kind of its tokens, the words that name the service and the
resource's type, the plain words of prose and code that may name the type alone ("function",
"service", "role": after one of them a name needs a hyphen or a digit, not only quotes: "the function
`main`" is code), and a sample name."""
_PROSE_NAME = r"[A-Za-z0-9][A-Za-z0-9_./-]{0,254}"
_PROSE_NAME_LEAD_END = r"(?:[ \t]{1,4}(?:named|called|is))?:?[ \t]{1,4}"
_SHAPED_NAME_AHEAD = r"(?=[A-Za-z0-9_./]{0,60}[-0-9])"
"""A hyphen or a digit within the name's first 61 characters (the anchors of the plain-word leads say
the same, so Hyperscan passes over "the service is", "the function returns")."""


def _prose_name_verdict(value: str, text: str, start: int) -> Verdict:
    value = value.rstrip(".")
    if not _SHAPED.search(value) and not _looks_like_name(value, text, start):
        return Verdict.REJECT
    if (
        (value[:4] == "AWS_" and _TOKEN_SHAPE.fullmatch(value))
        or value.endswith("-")
        or "--" in value
        or english_compound(value)
        or _CLI_OPERATION.fullmatch(value)
        or _AWS_REGION.fullmatch(value)
        or _VERSIONISH.fullmatch(value)
        or _HASH.fullmatch(value)
        or not any(c.isalpha() for c in value)
    ):
        return Verdict.REJECT
    return Verdict.MASK


_SHAPED = re.compile(r"[-0-9]")
_HASH = re.compile(r"[0-9a-fA-F]{16,}")  # (a hash or a key's hex: no resource's name)
_AWS_REGION = re.compile(
    r"(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?-(?:north|south|east|west|central)(?:east|west)?-[0-9]"
)
_VERSIONISH = re.compile(
    r"[vV]?[0-9]+(?:\.[0-9A-Za-z]+)*|[a-z]+[0-9]+(?:\.[0-9x]+)+|[A-Za-z]+-[0-9]+(?:\.[0-9]+)+"
)


def _prose_name_rules(
    service: str, kind: str, leads: tuple[str, ...], plain: tuple[str, ...], sample: str
) -> tuple[Rule, ...]:
    def regex(lead_words: tuple[str, ...], ahead: str = "") -> str:
        # (not a flag's name: --cluster x is the flag's rule's)
        return (
            words(lead_words, not_after="[A-Za-z0-9_./-]")
            + _PROSE_NAME_LEAD_END
            + OPEN_QUOTE
            + r"(?P<v>"
            + ahead
            + _PROSE_NAME
            + r")(?<!\.)(?![A-Za-z0-9_/-])"
        )

    def samples(lead: str) -> tuple[tuple[str, str], ...]:
        return ((f"the {lead} {sample} is failing", sample), (f"{lead} `{sample}`.", sample))

    shared = {"echo_when": distinctive_name, "category": "arn", "kind": kind, "validate": _prose_name_verdict}
    rule = Rule(
        name=f"{service}_prose",
        regex=regex(leads),
        description=f"A name in prose after its service and type ({leads[0]} <name>)",
        anchors=word_anchors(leads, BLANK + ":"),
        must_match=samples(leads[0]),
        must_not_match=(f"the {leads[0]} is healthy", f"{leads[0]} read-only mode"),
        **shared,  # type: ignore[arg-type]
    )
    if not plain:
        return (rule,)
    alone = Rule(
        name=f"{service}_prose_word",
        regex=regex(plain, _SHAPED_NAME_AHEAD),
        description=f"A name with a hyphen or digit in prose after the word for its type ({plain[0]} <name>)",
        anchors=(
            one_of(plain)
            + r"(?:[ \t]{1,4}(?:named|called|is))?:?[ \t]{1,4}(?:``|[\"'`?(])?[A-Za-z0-9_./]{0,60}[-0-9]",
        ),
        must_match=samples(plain[0]),
        must_not_match=(f"the {plain[0]} is healthy", f"{plain[0]} `main` returns", f"{plain[0]} read-only"),
        **shared,  # type: ignore[arg-type]
    )
    return (rule, alone)


_RDS_LIST_WORDS = ("RDS", "rds", "Databases", "databases", "DB", "Aurora", "aurora")
_SNAPSHOT_WORDS = ("snapshot", "Snapshot")
_RDS_NAME_KEYS = (
    "DBName",
    "db_name",
    "identifier",
    "instanceID",  # (Enhanced Monitoring)
    # outputs of Terraform modules (terraform-aws-modules' rds and rds-aurora), a template's parameter
    "db_instance_id",
    "this_db_instance_id",
    "rds_instance_id",
    "db_cluster_id",
    "rds_cluster_id",
    "cluster_id",
    "DBInstanceName",
    "db_instance_name",
)
# after a bucket's key, an object whose first member is its name: an S3 event notification's or
# EventBridge event's "bucket": {"name": "..."}, in YAML bucket: / name: ...
_NAMED_OBJECT = (
    r"(?:\{"
    + run(r"\s")
    + r"[\"']?[Nn]ame[\"']?"
    + run(r"\s")
    + ":"
    + run(r"\s")
    + r"[\"']?|(?<=\s)[Nn]ame:[ \t]*[\"']?)?"
)
_BUCKET_KEYS = (
    "Bucket",
    "BucketName",
    "bucket",
    "bucket_name",
    "bucketName",
    "S3Bucket",
    "s3_bucket",
    "S3BucketName",
    "TargetBucket",
    "SourceBucket",
    "DestinationBucket",
    "LoggingBucket",
    "DeploymentBucket",
    "DestinationBucketName",
    "TargetBucketName",
    "target_bucket",
    "source_bucket",
    "destination_bucket",
    "log_bucket",
    "state_bucket",
    "AWS_S3_BUCKET",
    "S3_BUCKET",
    "BUCKET_NAME",
    "s3_bucket_id",  # (an output of terraform-aws-modules' s3-bucket)
    "s3-bucket-name",  # (the AWS Load Balancer Controller's access-log annotation)
    "bucket-name",
    "bucketnames",  # (Loki's storage_config)
    "bucketNames",
)
# the resources `cdk bootstrap` names after the account and region (cdk-<qualifier>-<what>-<account>-<region>)
_CDK_BOOTSTRAP = (
    "assets",
    "container-assets",
    "cfn-exec-role",
    "deploy-role",
    "lookup-role",
    "file-publishing-role",
    "image-publishing-role",
)
_S3_VPCE_HOST_TAIL = (
    r"vpce-[a-z0-9]{8,17}-[a-z0-9]{4,8}\.s3\." + REGION + r"\.vpce\.amazonaws\.com(?:\.cn)?(?![A-Za-z0-9-])"
)
"""The end of an S3 interface endpoint's DNS name (after its first labels)."""
_BUCKET_FLAGS = ("bucket", "bucket-name", "source-bucket", "target-bucket", "destination-bucket", "s3-bucket")
_HTTP_METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE", "OPTIONS", "PATCH")
# a canonical user ID, for samples
_CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"

RULES: tuple[Rule, ...] = (
    # ---- ARNs: first, so nothing else ever splits one -------------------------------------------
    Rule(
        name="arn",
        category="arn",
        kind="ARN",
        regex=(
            r"arn:(?<![A-Za-z0-9_-]arn:)" + PARTITION + r":[a-z0-9-]+:(?:" + REGION + r"|\*)?:"
            r"(?:[0-9]{12}|aws|\*)?:[A-Za-z0-9_/:.+=@*!$%&?~#{}-]*[A-Za-z0-9_/+=@*$%&?~#{}-]"
        ),
        description="Any ARN in any partition, masked as one unit; the kind names the service",
        anchors=("arn:",),
        validate=_arn_verdict,
        kind_of=_arn_kind,
        kinds=tuple(dict.fromkeys(ARN_KINDS.values())),
        must_match=(
            ("role arn:aws:iam::123456789012:role/Admin.", "arn:aws:iam::123456789012:role/Admin"),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
            ),
            ("arn:aws:s3:::acme-prod-data/logs/*", "arn:aws:s3:::acme-prod-data/logs/*"),
            (
                "arn:aws-cn:eks:cn-north-1:123456789012:cluster/prod-eks",
                "arn:aws-cn:eks:cn-north-1:123456789012:cluster/prod-eks",
            ),
            (
                "arn:aws-us-gov:rds:us-gov-west-1:123456789012:db:prod-db-1",
                "arn:aws-us-gov:rds:us-gov-west-1:123456789012:db:prod-db-1",
            ),
            (
                '"arn:aws:kms:eu-west-2:210987654321:key/1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"',
                "arn:aws:kms:eu-west-2:210987654321:key/1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
            ),
        ),
        must_not_match=(
            "arn:aws:iam::aws:policy/AdministratorAccess",
            '"Resource": "arn:aws:s3:::*"',
            "arn:aws:logs:*:*:*",
            "Action: ec2:DescribeInstances",
        ),
    ),
    Rule(
        name="arn_irregular",
        category="arn",
        kind="ARN",
        regex=(
            r"arn:(?<![A-Za-z0-9_-]arn:)[^\s\"'`,;|<>]{0,100}?(?:<[A-Za-z_ -]{1,30}>[^\s\"'`,;|<>]{0,60}?)?"
            r":[0-9]{12}:[A-Za-z0-9_/:.+=@*!$%&?~#{}<>-]*[A-Za-z0-9_/+=@*$%&?~#{}>-]"
        ),
        description=(
            "An ARN whose partition, service or region is malformed or a placeholder "
            "(arn:aws:sns:REGION:<account>:x, arn:${AWS::Partition}:...): the account makes it one, "
            "masked whole"
        ),
        anchors=("arn:",),
        kind_of=_arn_kind,
        must_match=(
            ("arn:aws:sns:REGION:123456789012:alerts", "arn:aws:sns:REGION:123456789012:alerts"),
            ("arn:aws:iam:<region>:123456789012:role/x.", "arn:aws:iam:<region>:123456789012:role/x"),
            (
                "!Sub arn:${AWS::Partition}:logs:${AWS::Region}:123456789012:log-group:/x",
                "arn:${AWS::Partition}:logs:${AWS::Region}:123456789012:log-group:/x",
            ),
            (
                '"arn:aws:Lambda:us-east-1:123456789012:function:f"',
                "arn:aws:Lambda:us-east-1:123456789012:function:f",
            ),
        ),
        must_not_match=(
            "arn:aws:sns:REGION:ACCOUNT:alerts",
            "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/x",
            "warn:x:123456789012:y",
        ),
    ),
    Rule(
        name="arn_any_case",
        category="arn",
        kind="ARN",
        regex=(
            r"[Aa](?<![A-Za-z0-9_-].)[Rr][Nn]:[Aa][Ww][Ss](?:-[A-Za-z-]{1,12})?:[A-Za-z0-9-]+:[A-Za-z0-9-]*:"
            r"(?:[0-9]{12}|[Aa][Ww][Ss]|\*)?:[A-Za-z0-9_/:.+=@*!$%&?~#{}-]*[A-Za-z0-9_/+=@*$%&?~#{}-]"
        ),
        description=(
            "An ARN written in upper or mixed case (ARN:AWS:IAM::<account>:ROLE/X), which a model reads as "
            "the same ARN: masked whole, as its lower-case form would be"
        ),
        anchors=(any_case("arn:"),),
        validate=_arn_any_case_verdict,
        kind_of=_arn_any_case_kind,
        must_match=(
            ("ROLE: ARN:AWS:IAM::123456789012:ROLE/X.", "ARN:AWS:IAM::123456789012:ROLE/X"),
            ("ARN:AWS:S3:::ACME-DATA/logs", "ARN:AWS:S3:::ACME-DATA/logs"),
        ),
        must_not_match=("ARN:AWS:IAM::AWS:POLICY/ADMIN", "ARN:AWS:S3:::*", "ARN: the resource name"),
    ),
    Rule(
        name="arn_spaced",
        category="arn",
        kind="ARN",
        regex=(
            r"[Aa](?<![A-Za-z0-9_-].)[Rr][Nn]"
            + ARN_GAP
            + r"[A-Za-z-]{2,20}"
            + ARN_GAP
            + r"[A-Za-z0-9-]{1,40}"
            + ARN_GAP
            + r"[A-Za-z0-9-]{0,30}"
            + ARN_GAP
            + r"[0-9]{12}"
            + ARN_GAP
            + r"[A-Za-z0-9_/:.+=@*!$%&?~#{}-]*[A-Za-z0-9_/+=@*$%&?~#{}-]"
        ),
        description=(
            "An ARN with blanks around its colons (arn : aws : iam :: <account> : role/x) or broken over "
            "lines at a colon: masked whole when it names an account"
        ),
        anchors=(r"[Aa][Rr][Nn][ \t]{0,3}[:\r\n]",),
        kind_of=_arn_spaced_kind,
        must_match=(
            ("arn : aws : iam :: 123456789012 : role/x now", "arn : aws : iam :: 123456789012 : role/x"),
            ("arn:aws:iam::\n  123456789012:role/x", "arn:aws:iam::\n  123456789012:role/x"),
        ),
        must_not_match=("the arn : aws : iam :: role/x", "arn: aws docs: 2024 :: 12"),
    ),
    # ---- Endpoint hostnames that embed a resource name or ID ------------------------------------
    Rule(
        name="s3_privatelink_host",
        echo=True,
        category="s3",
        kind="S3_VPCE_HOST",
        pair_kind="S3_BUCKET",
        # the endpoint's DNS name: bucket.vpce-<id>-<suffix>.s3.<region>.vpce.amazonaws.com, then the
        # bucket in the path (path style); or <bucket>.bucket.vpce-..., accesspoint.vpce-..., ...
        regex=(
            r"[a-z0-9](?<![A-Za-z0-9_.-].)(?:(?<=b)ucket\."
            + _S3_VPCE_HOST_TAIL
            + r"(?P<t>/(?P<p>"
            + BUCKET
            + r")(?![a-z0-9-]|\.[A-Za-z0-9]))|"
            + run("[a-z0-9-]")
            + r"(?:\."
            + run("[a-z0-9-]", at_least_one=True)
            + r")*?\."
            + _S3_VPCE_HOST_TAIL
            + ")"
        ),
        description=(
            "S3 interface (PrivateLink) endpoint hostnames, as a unit (they hold the VPC endpoint ID, "
            "and a bucket when virtual-hosted), and the bucket after a path-style one"
        ),
        host_anchors=(".amazonaws.com",),
        must_match=(
            (
                "--endpoint-url https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
                "bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com",
            ),
            ("https://bucket.vpce-0123abcd-abcd1234.s3.eu-west-1.vpce.amazonaws.com/acme-data/", "acme-data"),
            (
                "https://acme-data.bucket.vpce-0123abcd-abcd1234.s3.us-east-1.vpce.amazonaws.com/k",
                "acme-data.bucket.vpce-0123abcd-abcd1234.s3.us-east-1.vpce.amazonaws.com",
            ),
        ),
        must_not_match=(
            "https://s3.us-east-1.amazonaws.com/acme-data",
            "https://vpce.amazonaws.com/",
            "bucket.vpce-xyz.s3.us-east-1.vpce.amazonaws.com",
        ),
    ),
    Rule(
        name="ecr_image",
        category="hostname",
        kind="ECR_HOST",
        pair_kind="ECR_REPO",
        # an image reference: the registry (whose first label is the account) and the repository's
        # name after it, namespaces too (<account>.dkr.ecr.<region>.amazonaws.com/acme/orders-api:1.4)
        regex=(
            r"[0-9]{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]{1,30}\.amazonaws\.com(?:\.cn)?"
            r"(?P<t>/(?P<p>[a-z0-9](?:[a-z0-9._/-]{0,254}[a-z0-9])?))(?![A-Za-z0-9._/-])"
        ),
        description="An ECR image reference's registry host and repository name (namespaces too)",
        anchors=(r"[0-9]{12}\.dkr\.ecr",),
        must_match=(
            (
                "483920175526.dkr.ecr.eu-west-1.amazonaws.com/acme/orders-api:1.4.2",
                "483920175526.dkr.ecr.eu-west-1.amazonaws.com",
            ),
            (
                "image: 483920175526.dkr.ecr.eu-west-1.amazonaws.com/acme/orders-api@sha256:ab",
                "acme/orders-api",
            ),
        ),
        must_not_match=("483920175526.dkr.ecr.eu-west-1.amazonaws.com",),
    ),
    Rule(
        name="s3_virtual_host",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[a-z0-9](?<![A-Za-z0-9_.-].)"
            + run("[a-z0-9-]")
            + r"(?:\."
            + run("[a-z0-9-]", at_least_one=True)
            + r")*?(?P<t>\.s3(?:-accelerate(?:\.dualstack)?|[.-](?:website[.-])?"
            r"(?:dualstack\.)?" + REGION + r")?\.amazonaws\.com(?:\.cn)?)(?![A-Za-z0-9-])"
        ),
        description="Bucket in a virtual-hosted S3 URL: <bucket>.s3[.<region>].amazonaws.com",
        host_anchors=(".amazonaws.com",),
        validate=_bucket_verdict,
        must_match=(
            ("https://acme-prod-data.s3.amazonaws.com/a.txt", "acme-prod-data"),
            ("acme.logs.s3.eu-west-1.amazonaws.com", "acme.logs"),
            ("http://site-assets.s3-website-us-east-1.amazonaws.com", "site-assets"),
        ),
        must_not_match=("https://s3.amazonaws.com/", "s3.us-east-1.amazonaws.com"),
    ),
    Rule(
        name="aws_hostname",
        category="hostname",
        kind="HOST",
        regex=HOST_REGEX,
        description=(
            "AWS endpoint hostnames that embed a name or ID, masked as a unit: RDS endpoints (category rds), "
            "EC2 private DNS names (private_ip), ELB, API Gateway, CloudFront, ElastiCache, EKS, ECR, "
            "OpenSearch, Lambda URLs, EC2 public DNS (hostname)"
        ),
        host_anchors=HOST_ANCHORS,
        kind_of=_host_kind,
        category_of=_HOST_CATEGORY.__getitem__,
        kinds=tuple(dict.fromkeys(k for _s, k, _c in _HOST_KINDS)),
        must_match=(
            (
                "host=prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com port=5432",
                "prod-db.c9akciq32xyz.us-east-1.rds.amazonaws.com",
            ),
            (
                "orders.cluster-ro-abcdefghij12.eu-west-1.rds.amazonaws.com",
                "orders.cluster-ro-abcdefghij12.eu-west-1.rds.amazonaws.com",
            ),
            ("ip-10-0-0-1.ec2.internal", "ip-10-0-0-1.ec2.internal"),
            ("node ip-10-0-1-5.us-west-2.compute.internal Ready", "ip-10-0-1-5.us-west-2.compute.internal"),
            (
                "i-0123456789abcdef0.eu-west-1.compute.internal",
                "i-0123456789abcdef0.eu-west-1.compute.internal",
            ),
            (
                "my-alb-1234567890.us-east-1.elb.amazonaws.com",
                "my-alb-1234567890.us-east-1.elb.amazonaws.com",
            ),
            (
                "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod",
                "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            ),
            ("d111111abcdef8.cloudfront.net", "d111111abcdef8.cloudfront.net"),
            ("https://x7kq2mz9ab.eu-west-1.awsapprunner.com/", "x7kq2mz9ab.eu-west-1.awsapprunner.com"),
            ("a1b2c3d4e5f6a7b8.awsglobalaccelerator.com", "a1b2c3d4e5f6a7b8.awsglobalaccelerator.com"),
            (
                "sessions.ab12cd.0001.use1.cache.amazonaws.com:6379",
                "sessions.ab12cd.0001.use1.cache.amazonaws.com",
            ),
            (
                "https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.us-east-1.eks.amazonaws.com",
                "0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.us-east-1.eks.amazonaws.com",
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com login succeeded",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            ),
            ("ec2-54-12-34-56.compute-1.amazonaws.com", "ec2-54-12-34-56.compute-1.amazonaws.com"),
        ),
        must_not_match=(
            "https://sts.amazonaws.com",
            "ec2.us-east-1.amazonaws.com",
            "cloudfront.net",
            "rds.amazonaws.com",
            "https://rds.us-east-1.amazonaws.com",
            "compute.internal",
            "my.internal.host",
        ),
    ),
    Rule(
        name="eks_oidc_issuer_id",
        category="hostname",
        kind="EKS_HOST",
        regex=(
            r"o(?<![A-Za-z0-9_.-]o)idc\.eks\." + REGION + r"\.amazonaws\.com(?:\.cn)?/id/"
            r"(?P<v>[0-9A-F]{32})(?![A-Za-z0-9])"
        ),
        description=(
            "An EKS cluster's OIDC issuer ID (oidc.eks.<region>.amazonaws.com/id/<ID>: the ID its API "
            "endpoint's hostname starts with), in the issuer URL, IRSA trust policies' condition keys"
        ),
        anchors=(r"oidc\.eks\.",),
        must_match=(
            (
                '"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9"',
                "0A1B2C3D4E5F60718293A4B5C6D7E8F9",
            ),
            (
                '"oidc.eks.eu-west-1.amazonaws.com/id/0A1B2C3D4E5F60718293A4B5C6D7E8F9:sub": "system:x"',
                "0A1B2C3D4E5F60718293A4B5C6D7E8F9",
            ),
        ),
        must_not_match=("https://oidc.eks.us-east-1.amazonaws.com/id/", "oidc.eks.us-east-1.amazonaws.com"),
    ),
    Rule(
        name="elb_log_name",
        category="arn",
        kind="ELB_ARN",
        regex=(
            r"[agnt](?<![A-Za-z0-9_-].)(?:(?<=a)pp|(?<=n)et|(?<=g)wy|(?<=t)argetgroup)/"
            r"(?P<v>[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?/[0-9a-f]{16})(?![A-Za-z0-9_/-])"
        ),
        description=(
            "A load balancer's or target group's name and ID as ALB/NLB access logs and CloudWatch "
            "dimensions write them (app/<name>/<id>, net/..., targetgroup/...): the end of its ARN"
        ),
        anchors=(r"(?:app|net|gwy|targetgroup)/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}",),
        must_match=(
            (
                "https 2024-01-15T10:30:45.123456Z app/prod-web-alb/50dc6c495c0c9188 10.0.1.23:5432",
                "prod-web-alb/50dc6c495c0c9188",
            ),
            ("tls 2.0 2024-01-15T10:30:45 net/prod-nlb/c6e77e28c25b2234 g3d4", "prod-nlb/c6e77e28c25b2234"),
            ('"TargetGroup": "targetgroup/web-tg/73e2d6bc24d8a067"', "web-tg/73e2d6bc24d8a067"),
        ),
        must_not_match=("src/app/components/index.ts", "webapp/x/50dc6c495c0c9188", "app/x/50dc6c495c0c91"),
    ),
    Rule(
        name="clb_log_name",
        category="arn",
        kind="ELB_ARN",
        regex=(
            r"[0-9](?<![A-Za-z0-9_.:-][0-9])[0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z "
            r"(?P<v>[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?) (?=" + DOTTED_QUAD + r"[0-9]{0,2}:[0-9])"
        ),
        description="A Classic Load Balancer's name in its access log (<time> <elb> <client:port> ...)",
        anchors=(ISO_TIME.split("(?:")[0] + r"\.[0-9]{6}Z [A-Za-z0-9-]{1,32} [0-9]",),
        must_match=(
            (
                "2024-01-15T10:30:45.123456Z prod-classic-elb 192.168.131.39:2817 10.0.0.1:80 0.000073",
                "prod-classic-elb",
            ),
        ),
        must_not_match=(
            "2024-01-15T10:30:45.123456Z INFO 10 workers",
            "2024-01-15T10:30:45Z web 10.0.0.1:80",
        ),
    ),
    Rule(
        name="sqs_queue_url",
        category="hostname",
        kind="SQS_QUEUE",
        regex=(
            r"[a-z](?<![A-Za-z0-9.-].)(?:(?<=s)qs\." + REGION + r"|(?<=q)ueue"
            # the legacy regional form: us-west-2.queue.amazonaws.com (the region's first letter is read)
            r"|[a-z](?:-gov|-iso[a-z]?)?-[a-z]{1,20}-[0-9]\.queue)\.amazonaws\.com(?:\.cn)?/"
            r"(?P<v>[0-9]{12}/[A-Za-z0-9_-]{1,80}(?:\.fifo)?)(?![A-Za-z0-9_-])"  # (a FIFO queue's .fifo)
        ),
        description="Account and queue name in an SQS queue URL",
        anchors=(
            r"sqs\.",
            r"queue\.amazonaws\.com",
            r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]{1,20}-[0-9]\.queue\.amazonaws\.com",
        ),
        must_match=(
            (
                "https://sqs.us-east-1.amazonaws.com/123456789012/orders-queue.fifo",
                "123456789012/orders-queue.fifo",
            ),
            ("https://us-west-2.queue.amazonaws.com/123456789012/orders-queue", "123456789012/orders-queue"),
        ),
        must_not_match=("https://sqs.us-east-1.amazonaws.com/",),
    ),
    # ---- S3 buckets -------------------------------------------------------------------------------
    Rule(
        name="s3_uri",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=r"s(?<![A-Za-z0-9]s)3a?n?://(?P<v>" + BUCKET + r")(?![a-z0-9-]|\.[A-Za-z0-9])",
        description="Bucket in s3://bucket/key URIs",
        anchors=(r"s3a?n?://",),
        validate=_bucket_verdict,
        must_match=(
            ("aws s3 cp s3://acme-prod-data/2024/01/x.csv .", "acme-prod-data"),
            ("Upload it to s3://acme-prod-data.", "acme-prod-data"),
        ),
        must_not_match=("s3:// is a URI scheme", "s3://x/"),
    ),
    Rule(
        name="s3_uri_any_case",
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[Ss](?<![A-Za-z0-9].)3[Aa]?[Nn]?://(?P<v>[A-Za-z0-9][A-Za-z0-9.-]{1,61}[A-Za-z0-9])"
            r"(?![A-Za-z0-9_-]|\.[A-Za-z0-9])"
        ),
        description="A bucket in an s3:// URI written in upper or mixed case (S3://ACME-DATA/x)",
        anchors=(r"[Ss]3[Aa]?[Nn]?://",),
        validate=_bucket_any_case_verdict,
        must_match=(
            ("copy S3://ACME-DATA/x there", "ACME-DATA"),
            ("s3://Acme-Data/", "Acme-Data"),
            ("copy S3://acme-data/x there", "acme-data"),
        ),
        must_not_match=("S3://", "S3://X/", "s3://a..b/"),
    ),
    Rule(
        name="s3_path_style",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"s(?<![A-Za-z0-9.-]s)3(?:[.-](?:dualstack\.)?" + REGION + r")?\.amazonaws\.com(?:\.cn)?/"
            r"(?P<v>" + BUCKET + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        description="Bucket in path-style S3 URLs: s3.<region>.amazonaws.com/<bucket>/key",
        anchors=(r"s3[.-]",),
        validate=_bucket_verdict,
        must_match=(("https://s3.us-west-2.amazonaws.com/acme-backups/db.dump", "acme-backups"),),
        must_not_match=("https://s3.us-west-2.amazonaws.com/",),
    ),
    Rule(
        name="s3_console_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # (the console's host, regional or not: us-east-1.console..., s3.console...; GovCloud, China)
        regex=(
            r"c(?<![A-Za-z0-9-]c)onsole\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)"
            r"/s3/(?:buckets|object|upload)/(?P<v>" + BUCKET + r")(?![a-z0-9.-])"
        ),
        description="Bucket in an S3 console URL: console.aws.amazon.com/s3/buckets/<bucket>, /s3/object/<b>",
        anchors=(r"console\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)/s3/",),
        validate=_bucket_verdict,
        must_match=(
            ("https://us-east-1.console.aws.amazon.com/s3/buckets/invoices?region=us-east-1", "invoices"),
            ("https://s3.console.aws.amazon.com/s3/object/acme-data?prefix=x/y.txt", "acme-data"),
            ("https://console.aws.amazon.com/s3/buckets/acme-data/", "acme-data"),
        ),
        must_not_match=(
            "https://console.aws.amazon.com/s3/home?region=us-east-1",
            "https://console.aws.amazon.com/s3/",
        ),
    ),
    Rule(
        name="console_resource",
        echo=True,
        category="arn",
        kind="ARN",
        # a resource's page in the console: a Lambda function, a DynamoDB table, an ECS cluster, an IAM
        # role or user
        regex=(
            r"c(?<![A-Za-z0-9-]c)onsole\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)/"
            r"(?:lambda/home[^#\s\"']{0,200}#/functions/|dynamodbv2/home[^#\s\"']{0,200}#"
            r"(?:table\?name=|item-explorer\?(?:[^\s\"'#]{0,100}&)?table=)|ecs/v2/clusters/"
            r"|iam/home[^#\s\"']{0,40}#/(?:roles|users)/(?:details/)?)"
            r"(?P<v>[A-Za-z0-9_.%+=,@-]{1,255})"
        ),
        description="A resource's name in its console page's URL (Lambda, DynamoDB, ECS, IAM)",
        anchors=(
            r"console\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)"
            r"/(?:lambda|dynamodbv2|ecs|iam)/",
        ),
        validate=_resource_name_verdict,
        must_match=(
            (
                "https://eu-west-1.console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/orders-fn?tab=code",
                "orders-fn",
            ),
            (
                "https://console.aws.amazon.com/dynamodbv2/home?region=eu-west-1#table?name=orders-db",
                "orders-db",
            ),
            ("https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/pay-ecs-1/services", "pay-ecs-1"),
            (
                "https://us-east-1.console.aws.amazon.com/iam/home#/roles/details/orders-exec?x=1",
                "orders-exec",
            ),
        ),
        must_not_match=("https://console.aws.amazon.com/lambda/home?region=eu-west-1#/functions",),
    ),
    Rule(
        name="console_ecs_service",
        echo=True,
        category="arn",
        kind="ECS_ARN",
        regex=words(["services"], not_after="[A-Za-z0-9_.-]") + r"/(?P<v>[A-Za-z0-9_-]{1,255})",
        description="An ECS service's name in its console page's URL (…/ecs/v2/clusters/<c>/services/<s>)",
        anchors=(r"services/[A-Za-z0-9_-]",),
        validate=_console_ecs_service_verdict,
        must_match=(
            (
                "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/pay-ecs-1/services/api-svc/health",
                "api-svc",
            ),
        ),
        must_not_match=("https://example.com/services/api-svc",),
    ),
    Rule(
        name="console_secret",
        echo=True,
        category="arn",
        kind="SECRET_ARN",
        regex=(
            r"c(?<![A-Za-z0-9-]c)onsole\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)/"
            r"secretsmanager/secret\?name=(?P<v>[A-Za-z0-9_.%+=,@/-]{1,512})"
        ),
        description="A secret's name in its console page's URL (/secretsmanager/secret?name=<name>)",
        anchors=(r"console\.(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn)/secretsmanager/",),
        validate=_resource_name_verdict,
        must_match=(
            (
                "https://console.aws.amazon.com/secretsmanager/secret?name=prod-db-creds&r=1",
                "prod-db-creds",
            ),
        ),
        must_not_match=("https://console.aws.amazon.com/secretsmanager/listsecrets",),
    ),
    Rule(
        name="s3_bucket_key",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(words(_BUCKET_KEYS) + ASSIGN + _NAMED_OBJECT + r"(?P<v>" + BUCKET + r")(?=[\"'\s,;}\]&]|$)"),
        description=(
            'Bucket under JSON/YAML/HCL/env keys: "Bucket": "...", bucket = "...", S3_BUCKET=..., and '
            'the name of a "bucket": {"name": "..."} object (S3 event notifications, EventBridge)'
        ),
        anchors=word_anchors(_BUCKET_KEYS, AFTER_KEY),
        validate=_bucket_verdict,
        must_match=(
            ('{"Bucket": "acme-prod-data", "Key": "a"}', "acme-prod-data"),
            ('  bucket = "tf-state-7731"', "tf-state-7731"),
            ("BucketName: media-uploads-eu\n", "media-uploads-eu"),
            ('"detail": {"bucket": {"name": "invoices"}, "object": {"key": "a.pdf"}}', "invoices"),
            ("bucket:\n  name: invoices\n", "invoices"),
            ('{"Bucket": " acme-prod-data"}', "acme-prod-data"),
        ),
        must_not_match=('"Bucket": "arn:aws:s3:::*"', '"bucket": "A"', '"bucket": {"arn": "x", "name": "A"}'),
    ),
    Rule(
        name="s3_bucket_suffix_key",
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[A-Za-z](?<![A-Za-z0-9_].)(?:(?<=B)UCKET|[A-Za-z0-9_]{0,40}?"
            r"(?:_BUCKET(?:_NAME)?|_[Bb]ucket(?:_?[Nn]ame)?|(?<=[a-z0-9])Bucket(?:Name)?))"
            + ASSIGN
            + _NAMED_OBJECT
            + r"(?P<v>"
            + BUCKET
            + r")(?=[\"'\s,;}\]&]|$)"
        ),
        description=(
            "Bucket under BUCKET or any key that ends in _BUCKET, _BUCKET_NAME, _bucket, Bucket, BucketName "
            "(environment variables, outputs, app config): masked where it stands, not echoed"
        ),
        anchors=(
            r"[A-Za-z][A-Za-z0-9_]{0,40}(?:_BUCKET|_[Bb]ucket|[a-z0-9]Bucket)",
            "BUCKET[" + AFTER_KEY + "]",  # a Lambda function's environment variable BUCKET
        ),
        validate=_suffix_key_bucket_verdict,
        must_match=(
            ("ARTIFACTS_BUCKET=acme-ci-artifacts\n", "acme-ci-artifacts"),
            ('"Variables": {"BUCKET": "acme-uploads"}', "acme-uploads"),
            ('export STATIC_ASSETS_BUCKET_NAME="acme-static"', "acme-static"),
            ('terraform_state_bucket = "acme-tfstate"', "acme-tfstate"),
            ('{"mediaBucket": "acme-media"}', "acme-media"),
            # (the Serverless Framework's provider.deploymentBucket, given as an object)
            ("  deploymentBucket:\n    name: acme-sls-deploys\n", "acme-sls-deploys"),
            ('{"deploymentBucket": {"name": "acme-sls-deploys"}}', "acme-sls-deploys"),
        ),
        must_not_match=("MY_BUCKET_SIZE=10", '"LogsBucket": "A"', "RATE_LIMIT_BUCKET=100", "bucket_name = x"),
    ),
    Rule(
        name="s3_artifact_store",
        category="s3",
        kind="S3_BUCKET",
        # a CodePipeline's artifact store: its location is a bucket (JSON, YAML, HCL's artifact_store block)
        regex=(
            words(["artifactStore", "ArtifactStore", "artifact_store"])
            + r"[\"']?[ \t]{0,4}(?:[:=][ \t]{0,4})?(?:\{|\r?\n)[^{}]{0,240}?"
            r"(?<![A-Za-z0-9_])[Ll]ocation[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?(?P<v>"
            + BUCKET
            + r")(?=[\"'\s,;}\]&]|$)"
        ),
        description="A CodePipeline artifact store's location (its bucket): JSON, YAML, HCL",
        anchors=(r"(?:artifactStore|ArtifactStore|artifact_store)[\"']?[ \t]{0,4}[:={\r\n]",),
        validate=_bucket_verdict,
        must_match=(
            (
                '"artifactStore": {"type": "S3", "location": "codepipeline-eu-west-1-8823"}',
                "codepipeline-eu-west-1-8823",
            ),
            ("ArtifactStore:\n  Type: S3\n  Location: acme-pipeline-artifacts\n", "acme-pipeline-artifacts"),
            (
                'artifact_store {\n    location = "acme-pipeline-artifacts"\n    type = "S3"\n}',
                "acme-pipeline-artifacts",
            ),
        ),
        must_not_match=("artifact_store {\n    location = aws_s3_bucket.a.bucket\n}",),
    ),
    Rule(
        name="rds_resource_value",
        category="rds",
        kind="RDS",
        regex=words(["PhysicalResourceId"]) + ASSIGN + r"(?P<v>" + RDS_ID + r")(?=[\"'\s,;}\]&]|$)",
        description="A CloudFormation stack resource's physical ID, for AWS::RDS::DBInstance or DBCluster",
        validate=_rds_resource_value_verdict,
        must_match=(
            ('{"PhysicalResourceId": "app-db-1x2y", "ResourceType": "AWS::RDS::DBInstance"}', "app-db-1x2y"),
        ),
        must_not_match=('{"PhysicalResourceId": "app-db-1x2y", "ResourceType": "AWS::S3::Bucket"}',),
    ),
    Rule(
        name="resource_value_key",
        category="s3",
        kind="S3_BUCKET",
        regex=words(["OutputValue", "PhysicalResourceId"])
        + ASSIGN
        + r"(?P<v>"
        + BUCKET
        + r")(?=[\"'\s,;}\]&]|$)",
        description=(
            "A bucket-shaped name under CloudFormation's generic keys (OutputValue, PhysicalResourceId): "
            "masked as a bucket unless it is a number, version, ID, region, instance type or hostname"
        ),
        validate=_resource_value_verdict,
        must_match=(
            ('{"OutputKey": "Uploads", "OutputValue": "media-uploads-x7k2"}', "media-uploads-x7k2"),
            ('"PhysicalResourceId": "stack-logsbucket-1q2w3e4r"', "stack-logsbucket-1q2w3e4r"),
        ),
        must_not_match=(
            '"OutputValue": "t3.micro"',
            '"OutputValue": "enabled"',
            '"OutputValue": "1.4.2"',
            '"OutputValue": "eu-west-1"',
            '"OutputValue": "api.example.execute-api.us-east-1.amazonaws.com"',
        ),
    ),
    Rule(
        name="cfn_generated_physical_id",
        echo=True,
        category="arn",
        kind="CFN_STACK_ARN",
        # CloudFormation names what it creates <stack>-<logical id>-<random suffix of 12 or 13>: tables,
        # clusters, functions, roles, queues, in mixed case (a bucket's lower case name is the rule above's)
        regex=words(["PhysicalResourceId"])
        + ASSIGN
        + r"(?P<v>[A-Za-z0-9][A-Za-z0-9._-]{0,200}-(?=[A-Za-z]{0,12}[0-9])[A-Za-z0-9]{12,13})"
        + r"(?=[\"'\s,;}\]&|]|$)",
        description="A name CloudFormation generated (<stack>-<logical id>-<suffix>): PhysicalResourceId",
        must_match=(
            (
                '"PhysicalResourceId": "orders-prod-OrdersTable-1XK9M2P7Q3ZB"',
                "orders-prod-OrdersTable-1XK9M2P7Q3ZB",
            ),
            ('"PhysicalResourceId": "orders-prod-Cluster-Xk2m9P4q7LbZ"', "orders-prod-Cluster-Xk2m9P4q7LbZ"),
        ),
        must_not_match=(
            '"PhysicalResourceId": "orders-prod-OrdersTable"',
            '"PhysicalResourceId": "my-stack-Handler"',
        ),
    ),
    Rule(
        name="s3_listed_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=words(["Name"], "[A-Za-z0-9_]") + r"[\"']?\s*:\s*[\"']?(?P<v>" + BUCKET + r")(?=[\"'\s,}]|$)",
        description=(
            'Bucket names in `aws s3api list-buckets` output ("Name" inside the "Buckets" list) and the '
            '"Name" of a list-objects response'
        ),
        # "Name" then a blank or ":" (or what the prefilter reads for any other character: "?"): not
        # every "Name" (a tag's "Key": "Name", in every EC2 dump)
        anchors=(r"Name[\"']?[\t-\r\x1c-\x20:?]",),
        validate=_listed_bucket_verdict,
        must_match=(
            ('{"Buckets": [{"Name": "acme-prod-data", "CreationDate": "2024-01-01"}]}', "acme-prod-data"),
            (
                "Buckets:\n- CreationDate: '2024-01-01T00:00:00+00:00'\n  Name: acme-prod-data\n",
                "acme-prod-data",
            ),
            (
                '"Buckets": [\n  {"Name": "a-1", "CreationDate": "2024-01-01"},\n'
                '  {"Name": "logs-archive-eu", "CreationDate": "2024-02-01"}\n]',
                "logs-archive-eu",
            ),
            (
                '{"Contents": [], "Name": "acme-prod-data", "Prefix": "exports/", "MaxKeys": 1000}',
                "acme-prod-data",
            ),
            ("Contents: []\nName: acme-prod-data\nPrefix: exports/\n", "acme-prod-data"),
        ),
        must_not_match=(
            '{"State": {"Name": "running"}}',
            '{"Buckets": [], "Owner": {"Name": "not-a-bucket"}}',
            '{"Name": "web-sg", "Description": "x"}',
        ),
    ),
    Rule(
        name="s3_cli_flag",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            words(_BUCKET_FLAGS)
            + "(?:"
            + "|".join(f"(?<=--{flag})" for flag in _BUCKET_FLAGS)
            + r")(?:=|\s+)[\"']?(?P<v>"
            + BUCKET
            + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        description="Buckets after CLI flags (aws s3api ... --bucket acme-data, --s3-bucket, ...)",
        validate=_bucket_verdict,
        must_match=(
            ("aws s3api get-bucket-acl --bucket acme-prod-data --output text", "acme-prod-data"),
            ("sam deploy --s3-bucket=sam-artifacts-7", "sam-artifacts-7"),
        ),
        must_not_match=("--bucket", "a bucket named", "--bucket-name ."),
    ),
    Rule(
        name="s3_prose_list",
        echo_when=distinctive_name,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            words(_S3_LIST_WORDS)
            + r"(?:[ \t]{1,4}buckets)?(?:[ \t]{1,4}(?:named|called))?:?[ \t]{1,4}(?P<v>"
            + prose_list(BUCKET)
            + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        items=r"(?<![A-Za-z0-9_.-])(?P<v>" + BUCKET + r")(?![A-Za-z0-9_-]|\.[A-Za-z0-9])",
        description='Buckets listed in prose after "S3 buckets" ("S3 buckets acme-a, acme-b and acme-c")',
        anchors=word_anchors(_S3_LIST_WORDS, BLANK),
        validate=_prose_bucket_verdict,
        must_match=(
            ("the S3 buckets acme-billing-exports and acme-audit-2023 are public", "acme-audit-2023"),
            ("buckets acme-a1, acme-b2, and acme-c3 need a lifecycle rule", "acme-c3"),
            ("S3 buckets `acme-logs` or `acme-logs-2`", "acme-logs-2"),
        ),
        must_not_match=("S3 buckets logs and backups", "buckets read-only and write-only"),
    ),
    Rule(
        name="s3_prose",
        echo_when=distinctive_name,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            words(_S3_PROSE_WORDS)
            + r"(?:\s+buckets?)?(?:\s+(?:named|called|[Nn]ame))?:?\s+"
            + OPEN_QUOTE
            + r"(?P<v>"
            + BUCKET
            + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        description='Bucket named in prose right after "S3" or "bucket" ("S3 my-bucket", "bucket named x")',
        anchors=word_anchors(_S3_PROSE_WORDS, BLANK + ":"),
        validate=_prose_bucket_verdict,
        must_match=(
            ("Analyze: S3 my-bucket returns 403", "my-bucket"),
            ("the bucket named logs-prod is public", "logs-prod"),
            ("S3 bucket 'billing' was deleted", "billing"),
            ("a bucket called ``invoices`` holds the PDFs", "invoices"),
            ("the bucket named \u201creports\u201d", "reports"),
        ),
        must_not_match=(
            "S3 bucket policies are JSON",
            "in the bucket\n2024-03-02 17:20:11 logs-prod",
            "the bucket is empty",
            "S3 is cheap",
            "blogs and catalogs",
        ),
    ),
    Rule(
        name="s3_prose_before",
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[a-z0-9](?<![A-Za-z0-9_./:@#$%&*+=\\-].)[a-z0-9.-]{0,60}[a-z0-9]"
            r"(?=[ \t]{1,4}(?:[Ss]3[ \t]{1,4})?[Bb]ucket(?![A-Za-z0-9_]|s\b))"
        ),
        description=(
            'A bucket named in prose right before the word "bucket" ("the acme-prod-logs bucket", "the '
            'acme-logs S3 bucket"), when the name has a hyphen, dot or digit and is not hyphenated English'
        ),
        anchors=(r"[a-z0-9][a-z0-9.-]{0,60}[a-z0-9][ \t]{1,4}(?:[Ss]3[ \t]{1,4})?[Bb]ucket",),
        validate=_bucket_before_word_verdict,
        must_match=(
            ("upload to the acme-prod-logs bucket failed", "acme-prod-logs"),
            ("in the media.example.com S3 bucket", "media.example.com"),
            ("the tfstate-7731 Bucket", "tfstate-7731"),
        ),
        must_not_match=(
            "the read-only bucket",
            "a cross-account bucket",
            "the us-east-1 bucket",
            "a 10 bucket limit",
            "the logs bucket",
            "two buckets",
            "the v1.2.3 bucket",
            "a token-bucket algorithm",
        ),
    ),
    Rule(
        name="s3_name_before_type",
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[a-z0-9](?<![A-Za-z0-9_./:@#$%&*+\\-].)[a-z0-9.-]{0,60}[a-z0-9]"
            r"(?=[ \t]{1,4}\((?:Amazon[ \t]{1,4})?S3(?:[ \t]{1,4}[Bb]ucket)?\))"
        ),
        description='A bucket named before its type in parentheses ("acme-web-assets (S3)")',
        anchors=(r"[a-z0-9][a-z0-9.-]{0,60}[a-z0-9][ \t]{1,4}\((?:Amazon[ \t]{1,4})?S3",),
        validate=_bucket_before_word_verdict,
        must_match=(
            ("acme-web-assets (S3) and the API", "acme-web-assets"),
            ("- billing.exports.2024 (Amazon S3 bucket)", "billing.exports.2024"),
        ),
        must_not_match=("logs (S3)", "read-only (S3)"),
    ),
    Rule(
        name="rds_name_before_type",
        category="rds",
        kind="RDS",
        regex=(
            r"[a-z](?<![A-Za-z0-9_./:@#$%&*+\\-].)[a-z0-9-]{0,62}"
            r"(?=[ \t]{1,4}\((?:Amazon[ \t]{1,4})?(?:RDS|Aurora)(?:[ \t]{1,4}[A-Za-z]{1,12}){0,2}\))"
        ),
        description='An RDS identifier named before its type in parentheses ("orders-prod-db-1 (RDS)")',
        anchors=(r"[a-z][a-z0-9-]{0,62}[ \t]{1,4}\((?:Amazon[ \t]{1,4})?(?:RDS|Aurora)",),
        validate=_bucket_before_word_verdict,
        must_match=(
            ("orders-prod-db-1 (RDS) is the primary", "orders-prod-db-1"),
            ("ledger-aurora-2 (Aurora PostgreSQL)", "ledger-aurora-2"),
        ),
        must_not_match=("postgres (RDS)", "multi-az (RDS)"),
    ),
    Rule(
        name="s3_terraform_id",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # every aws_s3_bucket* resource's ID is its bucket's name (not aws_s3_bucket_object's, a key)
        regex=(words(["aws_s3_bucket"]) + r"(?:_(?!object\.)[a-z_]{1,40})?" + _terraform_id(BUCKET)),
        description=(
            "A bucket as a Terraform resource's ID: apply/plan progress lines (aws_s3_bucket.x: Creation "
            "complete after 2s [id=<bucket>]) and `terraform import aws_s3_bucket.x <bucket>`"
        ),
        validate=_terraform_bucket_verdict,
        must_match=(
            ("aws_s3_bucket.logs: Creation complete after 2s [id=acme-prod-logs]", "acme-prod-logs"),
            ('module.s.aws_s3_bucket_policy.this["a"]: Refreshing state... [id=acme-logs]', "acme-logs"),
            ("aws_s3_bucket.logs: Still destroying... [id=acme-logs, 10s elapsed]", "acme-logs"),
            ("terraform import aws_s3_bucket.logs acme-prod-logs\n", "acme-prod-logs"),
        ),
        must_not_match=(
            "aws_s3_bucket.logs will be created",
            "aws_s3_bucket_object.page: Refreshing state... [id=index.html]",
            "see aws_s3_bucket.logs website-config",
        ),
    ),
    Rule(
        name="s3_bucket_list",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # the buckets in a list under a key that names them (a Terraform output, s3_buckets = [...]; a
        # config's bucket_names: [...]), JSON, YAML or HCL
        regex=words(
            ["s3_buckets", "bucket_names", "s3_bucket_names", "bucketNames", "BucketNames", "S3Buckets"]
        )
        + _NAME_LIST,
        items=r"(?<![A-Za-z0-9_.-])(?P<v>" + BUCKET + r")(?![A-Za-z0-9_.-])",
        description="The buckets in a list under a key that names them (s3_buckets = [...])",
        anchors=(
            one_of(
                ["s3_buckets", "bucket_names", "s3_bucket_names", "bucketNames", "BucketNames", "S3Buckets"]
            )
            + r"[\"']?[ \t]{0,40}[:=]",
        ),
        validate=_bucket_verdict,
        must_match=(
            ('s3_buckets = [\n  "acme-orders-artifacts",\n  "acme-orders-logs",\n]', "acme-orders-logs"),
            ("bucket_names:\n- acme-orders-artifacts\n- acme-orders-logs\n", "acme-orders-logs"),
        ),
        must_not_match=("bucket_names = var.names",),
    ),
    Rule(
        name="s3_terraform_for_each_key",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # a bucket as the key of a Terraform resource made with for_each (state list, plan headers,
        # apply progress: aws_s3_bucket.buckets["acme-orders-artifacts"])
        regex=words(["aws_s3_bucket"])
        + r"(?!_object\b)(?:_[a-z_]{1,60})?\.[A-Za-z0-9_-]{1,64}\[\\?[\"'](?P<v>"
        + BUCKET
        + r")\\?[\"']\]",
        description='A bucket as a Terraform for_each key (aws_s3_bucket.x["<bucket>"])',
        anchors=(r"aws_s3_bucket(?:_[a-z_]{1,60})?\.",),
        validate=_bucket_verdict,
        must_match=(
            ('aws_s3_bucket.buckets["acme-orders-artifacts"]: Refreshing state...', "acme-orders-artifacts"),
            (
                '  # aws_s3_bucket_public_access_block.this["acme-orders-logs"] will be created',
                "acme-orders-logs",
            ),
        ),
        must_not_match=('aws_s3_bucket_object.page["index-html"]',),
    ),
    Rule(
        name="rds_terraform_for_each_key",
        echo=True,
        category="rds",
        kind="RDS",
        regex=words(["aws_db_instance", "aws_rds_cluster", "aws_rds_cluster_instance"])
        + r"\.[A-Za-z0-9_-]{1,64}\[\\?[\"'](?P<v>"
        + RDS_ID
        + r")\\?[\"']\]",
        description='An RDS identifier as a Terraform for_each key (aws_db_instance.x["<db>"])',
        anchors=(r"aws_(?:db_instance|rds_cluster|rds_cluster_instance)\.",),
        validate=_rds_key_verdict,
        must_match=(('aws_db_instance.dbs["orders-prod-db-1"]: Creating...', "orders-prod-db-1"),),
        must_not_match=('aws_db_instance.dbs["bad--"]',),
    ),
    Rule(
        name="s3_terraform_block_id",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            # a bucket's resources in a plan or `terraform state show` (aws_s3_bucket, its policy,
            # versioning, public access block, ...: not an object, whose id is its key) have the
            # bucket's name as their id, shown among the block's first lines
            words(["resource"]) + r"[ \t]{1,40}\"aws_s3_bucket(?!_object\b)(?:_[a-z_]{1,60})?\""
            r"[ \t]+\"[^\"\n]{1,200}\"[ \t]*\{\r?\n"
            r"(?:[^\n]{0,400}\n){0,20}?[ \t]*(?:[~+-][ \t]+)?id[ \t]*=[ \t]*\"(?P<v>" + BUCKET + r")\""
        ),
        description='A bucket as the id of its resources in a Terraform plan or state (id = "<bucket>")',
        anchors=(r"resource[ \t]{1,40}\"aws_s3_bucket",),
        validate=_bucket_verdict,
        must_match=(
            (
                '  ~ resource "aws_s3_bucket_policy" "artifacts" {\n'
                '        id     = "acme-orders-artifacts"\n',
                "acme-orders-artifacts",
            ),
            (
                'resource "aws_s3_bucket" "logs" {\n    arn    = "arn:aws:s3:::acme-logs"\n'
                '    id = "acme-logs"\n',
                "acme-logs",
            ),
        ),
        must_not_match=('resource "aws_s3_bucket_object" "page" {\n    id = "index.html"\n',),
    ),
    Rule(
        name="s3_sdk_call",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            # a bucket passed by position to the SDKs' calls: boto3's download_file(Bucket, Key, Filename)
            # and upload_file(Filename, Bucket, Key), the Java SDK's .bucket("x"), getObject("x", key),
            # new PutObjectRequest("x", ...)
            words(
                [
                    "download_file",
                    "download_fileobj",
                    "upload_file",
                    "upload_fileobj",
                    "bucket",
                    "getObject",
                    "putObject",
                    "deleteObject",
                    "copyObject",
                    "PutObjectRequest",
                    "GetObjectRequest",
                ]
            )
            # (a first argument before it: upload_file's file name)
            + r"\([ \t]*(?:(?:[\"'][^\"'\n]{0,200}[\"']|[A-Za-z0-9_.\[\]]{1,100})[ \t]*,[ \t]*)?"
            + r"[\"'](?P<v>"
            + BUCKET
            + r")[\"']"
        ),
        description=(
            "A bucket passed by position to the SDKs' S3 calls (boto3's download_file and upload_file, the "
            "Java SDK's .bucket(...), getObject(...), new PutObjectRequest(...))"
        ),
        anchors=(
            one_of(
                [
                    "download_file",
                    "download_fileobj",
                    "upload_file",
                    "upload_fileobj",
                    "bucket",
                    "getObject",
                    "putObject",
                    "deleteObject",
                    "copyObject",
                    "PutObjectRequest",
                    "GetObjectRequest",
                ]
            )
            + r"\(",
        ),
        validate=_bucket_verdict,
        must_match=(
            (
                "    s3.download_file('acme-data-lake-raw', 'events/part-0000.parquet', '/tmp/p')",
                "acme-data-lake-raw",
            ),
            ("    s3.upload_file('/tmp/report.csv', 'acme-reports-prod', key)", "acme-reports-prod"),
            ('GetObjectRequest.builder().bucket("acme-media-prod").key(key).build();', "acme-media-prod"),
            ('s3Client.getObject("acme-uploads-prod", key)', "acme-uploads-prod"),
        ),
        must_not_match=("s3.download_file(bucket, key, path)", "bucket(name)"),
    ),
    Rule(
        name="s3_sdk_copy_source",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=words(["CopySource"]) + r"[ \t]{0,40}=[ \t]*[\"'](?P<v>" + BUCKET + r")/",
        description="A bucket in boto3's CopySource='<bucket>/<key>'",
        anchors=(r"CopySource[ \t]{0,40}=",),
        validate=_bucket_verdict,
        must_match=(
            (
                "s3.copy_object(CopySource='acme-media-prod/avatars/42.png', Bucket=dst, Key=k)",
                "acme-media-prod",
            ),
        ),
        must_not_match=("CopySource=source",),
    ),
    Rule(
        name="s3_terraform_lock_path",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # Terraform's "Error acquiring the state lock": Lock Info's Path is <bucket>/<key> of the S3 backend
        regex=words(["Path"])
        + r":[ \t]{1,20}(?P<v>"
        + BUCKET
        + r")/[^\s\"']{0,1024}\.tfstate(?![A-Za-z0-9_.-])",
        description="The S3 backend's bucket in Terraform's state lock info (Path: <bucket>/<key>.tfstate)",
        anchors=(r"Path:[ \t]{1,20}[a-z0-9]",),
        validate=_bucket_verdict,
        must_match=(
            ("Lock Info:\n  Path:      acme-tfstate-prod/orders/terraform.tfstate\n", "acme-tfstate-prod"),
        ),
        must_not_match=("Path: src/main.tf",),
    ),
    Rule(
        name="s3_cfn_event",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            # CDK and CloudFormation stack events: <status> AWS::S3::Bucket <logical ID> [(<logical ID>)]
            # <physical ID or reason>, columns parted by blanks or a table's bars
            r"A(?<![A-Za-z0-9_:]A)WS::S3::Bucket(?:(?:[ \t|]|" + TAB + r")+[A-Za-z][A-Za-z0-9]{0,254}"
            r"(?:[ \t]+\([A-Za-z][A-Za-z0-9]{0,254}\))?)?"
            # (or the status between: <logical ID> AWS::S3::Bucket CREATE_FAILED <reason>)
            r"(?:(?:[ \t|]|" + TAB + r")+[A-Z][A-Z_]{3,40})?(?:[ \t|]|" + TAB + r")+"
            r"(?:Resource handler returned message:[ \t]*)?(?:\\?[\"'])?"
            r"(?P<v>" + BUCKET + r")(?![A-Za-z0-9_.-])"
        ),
        description=(
            "A bucket in CloudFormation and CDK stack events and resource lists, after its type and "
            "logical ID (CREATE_FAILED AWS::S3::Bucket LogsBucket <bucket> already exists)"
        ),
        anchors=("AWS::S3::Bucket",),
        validate=_resource_value_verdict,
        must_match=(
            ("CREATE_FAILED  AWS::S3::Bucket  LogsBucket  acme-prod-logs already exists", "acme-prod-logs"),
            (
                "| CREATE_FAILED | AWS::S3::Bucket | LogsBucket (LogsBucket9C4D8843) acme-logs exists",
                "acme-logs",
            ),
            ("LogsBucket  AWS::S3::Bucket  CREATE_FAILED  acme-prod-logs already exists", "acme-prod-logs"),
        ),
        must_not_match=(
            "CREATE_COMPLETE  AWS::S3::Bucket  LogsBucket",
            "CREATE_FAILED AWS::S3::Bucket LogsBucket Resource creation cancelled",
            "AWS::S3::BucketPolicy  Policy  stack-policy-1",
        ),
    ),
    Rule(
        name="s3_cfn_already_exists",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            # the S3 handler's message (stack events, cdk deploy, sam deploy), whatever stands around it;
            # and the identifier of a bucket in Cloud Control's message
            words(["Resource"]) + r"(?: handler returned message:[ \t]*(?:\\?[\"'])?"
            r"| of type [\"']AWS::S3::Bucket[\"'] with identifier [\"'])"
            r"(?P<v>" + BUCKET + r")(?=[\"'][ \t]+(?:already exists|was not found)|[ \t]+already exists)"
        ),
        description=(
            "A bucket in CloudFormation's handler messages (Resource handler returned message: \"<bucket> "
            "already exists\"; Resource of type 'AWS::S3::Bucket' with identifier '<bucket>' already exists)"
        ),
        anchors=("Resource handler returned message:", "Resource of type [\"']AWS::S3::Bucket"),
        must_match=(
            (
                "ArtifactsBucket\tCREATE_FAILED\tResource handler returned message: "
                '"acme-uploads-prod already '
                'exists" (RequestToken: 1a2b, HandlerErrorCode: AlreadyExists)',
                "acme-uploads-prod",
            ),
            (
                "Resource of type 'AWS::S3::Bucket' with identifier 'acme-uploads-prod' already exists.",
                "acme-uploads-prod",
            ),
        ),
        must_not_match=(
            'Resource handler returned message: "Access Denied (Service: S3, Status Code: 403)"',
            'Resource handler returned message: "invalid request" already exists',
        ),
    ),
    Rule(
        name="cfn_already_exists",
        echo=True,
        category="arn",
        kind="ARN",
        regex=(
            # Cloud Control's message for any other type (stack events, cdk deploy, sam deploy)
            words(["Resource"]) + r" of type [\"']AWS::[A-Za-z0-9]{2,40}::[A-Za-z0-9:]{2,80}[\"'] with "
            r"identifier [\"'](?P<v>[A-Za-z0-9_./:+=@#|-]{1,255})[\"'][ \t]+(?:already exists|was not found)"
        ),
        description=(
            "A resource's name in CloudFormation's Cloud Control messages (Resource of type '<type>' with "
            "identifier '<name>' already exists)"
        ),
        anchors=("Resource of type [\"']AWS::",),
        validate=_resource_name_verdict,
        must_match=(
            (
                "Resource of type 'AWS::DynamoDB::Table' with identifier 'orders-prod-table' already exists.",
                "orders-prod-table",
            ),
        ),
        must_not_match=("Resource of type 'AWS::S3::Bucket' is new",),
    ),
    Rule(
        name="iam_already_exists",
        echo=True,
        category="arn",
        kind="ARN",
        regex=(
            words(
                [
                    "Role",
                    "role",
                    "Policy",
                    "policy",
                    "Instance profile",
                    "Instance Profile",
                    "User",
                    "user",
                    "Group",
                ]
            )
            + r" (?:with name|called) "
            r"(?P<v>[A-Za-z0-9_+=,.@-]{1,128}) (?:already exists|cannot be found)"
        ),
        description=(
            "An IAM name in IAM's EntityAlreadyExists message (Role with name <name> already exists, "
            "A policy called <name> already exists)"
        ),
        anchors=("(?:[Rr]ole|[Pp]olicy|Instance [Pp]rofile|[Uu]ser|Group) (?:with name|called) ",),
        validate=_resource_name_verdict,
        must_match=(
            (
                "Role with name orders-prod-processor-role already exists. (Service: Iam)",
                "orders-prod-processor-role",
            ),
            ("EntityAlreadyExists: A policy called OrdersReadOnly already exists.", "OrdersReadOnly"),
            ("NoSuchEntity: The role with name orders-exec cannot be found.", "orders-exec"),
        ),
        must_not_match=("a Role with name clashes already",),
    ),
    Rule(
        name="eks_not_found",
        echo=True,
        category="arn",
        kind="EKS_ARN",
        regex=words(["No cluster found for name"])
        + r":[ \t]{1,4}(?P<v>[A-Za-z0-9][A-Za-z0-9_-]{0,99})(?<!-)",
        description="A cluster's name in EKS's not-found error (No cluster found for name: <name>.)",
        anchors=("No cluster found for name:",),
        validate=_resource_name_verdict,
        must_match=(("ResourceNotFoundException: No cluster found for name: prod-eks-1.", "prod-eks-1"),),
        must_not_match=("No cluster found for name: default.",),
    ),
    Rule(
        name="elasticache_not_found",
        echo=True,
        category="arn",
        kind="ELASTICACHE_ARN",
        regex=(
            words(["CacheCluster", "ReplicationGroup"])
            + r" not found:[ \t]{1,4}(?P<v>[A-Za-z0-9][A-Za-z0-9-]{0,49})(?<!-)"
        ),
        description="An ID in ElastiCache's not-found errors (CacheCluster not found: <id>)",
        anchors=("(?:CacheCluster|ReplicationGroup) not found:",),
        validate=_resource_name_verdict,
        must_match=(("CacheClusterNotFound: CacheCluster not found: sessions-prod-1", "sessions-prod-1"),),
        must_not_match=("CacheCluster not found: default",),
    ),
    Rule(
        name="redshift_not_found",
        echo=True,
        category="arn",
        kind="REDSHIFT_ARN",
        regex=words(["ClusterNotFound"]) + r"[^\n]{0,40}?\bCluster (?P<v>[a-z][a-z0-9-]{0,62}) not found",
        description="A cluster's identifier in Redshift's ClusterNotFound error (Cluster <id> not found.)",
        anchors=("ClusterNotFound",),
        validate=_resource_name_verdict,
        must_match=(("ClusterNotFound: Cluster orders-dw-1 not found.", "orders-dw-1"),),
        must_not_match=("ClusterNotFound: Cluster default not found.",),
    ),
    Rule(
        name="lambda_already_exists",
        echo=True,
        category="arn",
        kind="LAMBDA_ARN",
        regex=words(["Function"]) + r" already exist: (?P<v>[A-Za-z0-9_-]{1,140})(?![A-Za-z0-9_-])",
        description=(
            "A function's name in Lambda's ResourceConflictException (Function already exist: <name>)"
        ),
        anchors=("Function already exist: ",),
        must_match=(("Function already exist: orders-prod-processor", "orders-prod-processor"),),
        must_not_match=("Function already exists",),
    ),
    Rule(
        name="s3_cfn_physical_id",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[a-z0-9](?<![A-Za-z0-9_./:@#$%&*+=\\-].)[a-z0-9.-]{0,61}[a-z0-9]"
            r"(?=(?:[ \t|]|" + TAB + r"){1,12}AWS::S3::Bucket(?![A-Za-z0-9])"
            r"|[ \t]+already exists \(Service: (?:Amazon )?S3[,;)])"
        ),
        description=(
            "A bucket before its type in CloudFormation's resource lists (STACKRESOURCES <logical ID> "
            '<bucket> AWS::S3::Bucket, as text or a table), or before "already exists (Service: S3"'
        ),
        anchors=(
            r"[a-z0-9][a-z0-9.-]{0,61}[a-z0-9][ \t|\\\x00]{1,12}AWS::S3::Bucket",
            r"[a-z0-9][a-z0-9.-]{0,61}[a-z0-9][ \t]{1,4}already exists \(Service: ",
        ),
        validate=_resource_value_verdict,
        must_match=(
            (
                "STACKRESOURCES\tLogsBucket\tacme-prod-logs\tAWS::S3::Bucket\tCREATE_COMPLETE",
                "acme-prod-logs",
            ),
            ("|  LogsBucket |  acme-prod-logs  |  AWS::S3::Bucket  |  CREATE_COMPLETE |", "acme-prod-logs"),
            ('message: "acme-prod-logs already exists (Service: S3, Status Code: 0)"', "acme-prod-logs"),
        ),
        must_not_match=(
            "|  LogsBucket |  AWS::S3::Bucket  |",
            "the stack already exists (Service: S3, x)",
            "STACKRESOURCES\tPolicy\tstack-policy-1\tAWS::S3::BucketPolicy",
        ),
    ),
    Rule(
        name="s3_xml_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # (the element's "<" before the word: not </Bucket>)
        regex=(
            words(["Bucket", "BucketName", "ListBucketResult", "ListVersionsResult"], "[^<]")
            + r"(?:[ \t][^<>]{0,300})?>"
            + run(r"\s")
            + r"(?:<Name>)?(?P<v>"
            + BUCKET
            + ")(?=<)"
        ),
        description=(
            "A bucket in S3's XML: <Bucket>, <BucketName> (errors: NoSuchBucket), the <Name> of a listed "
            "bucket (ListAllMyBucketsResult) or of a listing (ListBucketResult, ListVersionsResult)"
        ),
        anchors=("Bucket>", "BucketName>", r"List(?:Bucket|Versions)Result[\t >]"),
        validate=_bucket_verdict,
        must_match=(
            ("<Code>NoSuchBucket</Code><BucketName>acme-prod-logs</BucketName>", "acme-prod-logs"),
            ("<Buckets><Bucket><Name>acme-prod-logs</Name><CreationDate>", "acme-prod-logs"),
            ('<ListBucketResult xmlns="urn:x"><Name>acme-x</Name>', "acme-x"),
            ("<Bucket>acme-uploads</Bucket><Key>a.txt</Key>", "acme-uploads"),
        ),
        must_not_match=("</Bucket>acme-x<", "<Buckets>acme-x<", "<Bucket><Name>A</Name>"),
    ),
    Rule(
        name="s3_sdk_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            # (lead words through words(): the fallback scanner stops at them)
            words(["Bucket", "Failed to upload"])
            + r"(?:(?<=Bucket)\((?:(?:bucket_)?name=)?[\"']|(?<=upload) [^\n]{1,300}? to )(?P<v>"
            + BUCKET
            + r")(?=[\"'/])"
        ),
        description=(
            "A bucket in a boto3 resource's repr (s3.Bucket(name='acme-logs')) or an S3UploadFailedError "
            "(Failed to upload <file> to <bucket>/<key>: ...)"
        ),
        anchors=(r"Bucket\(", "Failed to upload "),
        validate=_bucket_verdict,
        must_match=(
            ("s3.Bucket(name='acme-prod-logs')", "acme-prod-logs"),
            ("s3.Bucket('acme-prod-logs').objects.all()", "acme-prod-logs"),
            ("S3UploadFailedError: Failed to upload /tmp/a to acme-logs/r/a: An error", "acme-logs"),
        ),
        must_not_match=("Bucket(name=bucket)", "Failed to upload the file to disk"),
    ),
    Rule(
        name="s3_location",
        category="s3",
        kind="S3_BUCKET",
        regex=words(["Location"]) + r"[\"']\s*:\s*[\"']/(?P<v>" + BUCKET + r")[\"']",
        description='The bucket in `aws s3api create-bucket` output: {"Location": "/<bucket>"}',
        anchors=(r"Location[\"']",),
        validate=_bucket_verdict,
        must_match=(('{"Location": "/acme-prod-logs"}', "acme-prod-logs"),),
        must_not_match=("Location: /dashboard", '"Location": "/api/v1"'),
    ),
    Rule(
        name="s3_access_log_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"(?P<v>[a-z0-9](?<=[0-9a-f]{64} [a-z0-9])[a-z0-9.-]{1,61}[a-z0-9])"
            r"(?= " + ACCESS_LOG_TIME + ")"
        ),
        description="The bucket field of S3 server access log lines (after the owner's canonical ID)",
        anchors=(BUCKET + " " + ACCESS_LOG_TIME,),
        validate=_bucket_verdict,
        must_match=((_CANONICAL + " backups [06/Feb/2024:00:00:38 +0000] 10.0.0.1", "backups"),),
        must_not_match=(
            "deadbeef backups [06/Feb/2024:00:00:38 +0000]",
            '10.0.0.1 - - [06/Feb/2024:00:00:38 +0000] "GET / HTTP/1.1"',
        ),
    ),
    Rule(
        name="s3_access_log_uri_bucket",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        # the method right after the request's opening quote (words: not preceded by anything else)
        regex=words(_HTTP_METHODS, '[^"]') + r" /(?P<v>" + BUCKET + r")(?=[/? ])",
        description="A path-style request URI's bucket in S3 server access logs (that line's bucket)",
        anchors=(one_of(_HTTP_METHODS) + " /",),
        validate=_access_log_uri_bucket_verdict,
        must_match=(
            (
                _CANONICAL + " acme-logs [06/Feb/2024:00:00:38 +0000] 10.0.0.1 - 3E57427F33A59F07 "
                'REST.GET.VERSIONING - "GET /acme-logs?versioning HTTP/1.1" 200',
                "acme-logs",
            ),
        ),
        must_not_match=(
            '10.0.0.1 - - [06/Feb/2024:00:00:38 +0000] "GET /api-v2/users HTTP/1.1" 200',
            _CANONICAL + " acme-logs [06/Feb/2024:00:00:38 +0000] 10.0.0.1 - 3E57427F33A59F07 "
            'REST.GET.OBJECT - "GET /other-bucket/x HTTP/1.1" 200',
        ),
    ),
    Rule(
        name="s3_listed_bucket_cli",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[0-9](?<![A-Za-z0-9][0-9])[0-9]{3}" + ISO_TIME_TAIL + "(?:" + TAB + r"| +\| +)"
            r"(?P<v>" + BUCKET + r")(?![a-z0-9.-])"
        ),
        description="Bucket names in `aws s3api list-buckets --output text` and `--output table`",
        anchors=(ISO_TIME + "(?:" + TAB + "| )",),
        validate=_cli_listed_bucket_verdict,
        must_match=(
            ("BUCKETS\t2021-03-14T09:12:55+00:00\tacme-prod-data\nOWNER\tops\t", "acme-prod-data"),
            ("BUCKETS\tus-east-1\t2021-03-14T09:12:55.000Z\tlogs\n", "logs"),
            ("||  2021-03-14T09:12:55+00:00         |  acme-prod-data        ||\n", "acme-prod-data"),
            ("||  eu-west-1 |  2022-07-01T16:45:02+00:00  |  tf-state  ||", "tf-state"),
            ('{"out": "BUCKETS\\t2021-03-14T09:12:55+00:00\\tacme-prod-data\\nOWNER"}', "acme-prod-data"),
            ("  BUCKETS\t2021-03-14T09:12:55+00:00\tacme-prod-data", "acme-prod-data"),
        ),
        must_not_match=(
            "IMAGES\t2021-03-14T09:12:55+00:00\tweb-ami\n",
            "2024-03-14T10:30:45Z INFO  worker started",
            "| 2021-03-14T09:12:55+00:00 | deploy-42 |",
            "||  2021-03-14T09:12:55+00:00  |  acme-prod-data  |  extra  ||",
        ),
    ),
    Rule(
        name="s3_listed_bucket_table_item",
        echo=True,
        category="s3",
        kind="S3_BUCKET",
        regex=words(["Name"]) + r" +\| +(?P<v>" + BUCKET + r") +\|\|",
        anchors=("Name ",),  # (not every "Name")
        description="The bucket of a one-bucket `aws s3api list-buckets --output table` (key/value rows)",
        validate=_table_item_bucket_verdict,
        must_match=(
            (
                "||  CreationDate  |  2021-03-14T09:12:55+00:00  ||\n||  Name  |  acme-prod-data   ||\n",
                "acme-prod-data",
            ),
        ),
        must_not_match=(
            "||  Name  |  web-server  ||\n",
            "||  CreateDate  |  2021-03-14T09:12:55Z  ||\n||  Name  |  x-y  ||",
        ),
    ),
    Rule(
        name="s3_ls_bucket",
        category="s3",
        kind="S3_BUCKET",
        regex=(
            r"[0-9](?<![A-Za-z0-9][0-9])[0-9]{3}"
            + LS_TIME_TAIL
            + r"(?P<v>"
            + BUCKET
            + ")(?="
            + LINE_END
            + ")"
        ),
        description=(
            "Bucket names in `aws s3 ls` output: a `<date> <time> <bucket>` line; echoed where a listing "
            "shows (another such line next to it, or the command before it)"
        ),
        echo_when=ls_listing,
        anchors=(LS_TIME,),
        validate=_ls_bucket_verdict,
        must_match=(
            ("2023-01-15 10:30:45 acme-prod-data\n2023-02-01 08:00:00 acme-logs", "acme-prod-data"),
            ("$ aws s3 ls\n2024-03-02 17:20:11 tf-state-7731\n$ ", "tf-state-7731"),
            ("  2024-03-02 17:20:11 media.example.com\r\n", "media.example.com"),
            ("note=  2024-03-02 17:20:11 media.example.com\r\n", "media.example.com"),
            ('"output": "2024-03-02 17:20:11 billing-exports\\n2024-03-03 09:00:00 x1y"', "billing-exports"),
            ('{"o": "x\\n2023-02-01 08:00:00 acme-logs"}', "acme-logs"),
            ("['2023-01-15 10:30:45 acme-prod-data', '2023-01-16 10:30:45 acme-logs']", "acme-prod-data"),
        ),
        must_not_match=(
            "2023-01-15 10:30:45 ready",
            "2023-01-15 10:30:45       1234 reports/q1.csv",
            "2023-01-15 10:30:45 1234567890 reports-2024.csv",
            "2023-01-15 10:30:45 INFO server-1 started",
            "started at 2023-01-15 10:30:45 build-42",
            "2023-01-15 10:30:45 10.0.0.12",
            "2023-01-15 10:30:45 200\n2023-01-15 10:30:46 23.5\n2023-01-15 10:30:47 v2.7.0",
            "2023-01-15 10:30:45 a1b2c3d\n2023-01-15 10:30:47 1e2f3a4b5c6d",
        ),
    ),
    # ---- RDS --------------------------------------------------------------------------------------
    Rule(
        name="rds_automated_snapshot",
        echo=True,
        category="rds",
        kind="RDS",
        regex=(
            r"r(?<![A-Za-z0-9_-]r)ds:(?P<v>[a-z][a-z0-9-]{0,62}?)-[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}"
            r"(?![A-Za-z0-9_])"
        ),
        description=(
            "The DB instance or cluster named in an automated RDS snapshot identifier "
            "(rds:<db>-<yyyy-mm-dd-hh-mm>), anywhere: the date stays readable"
        ),
        anchors=("rds:[a-z]",),
        validate=_rds_key_verdict,
        must_match=(
            ('"DBSnapshotIdentifier": "rds:orders-db-2-2024-03-01-05-10"', "orders-db-2"),
            ("copy rds:aurora-main-2024-03-01-05-10 first", "aurora-main"),
        ),
        must_not_match=("rds:CreateDBSnapshot", "rds:orders-db", "rds:x-2024-03-01"),
    ),
    Rule(
        name="rds_event_source",
        category="rds",
        kind="RDS",
        regex=words(["SourceIdentifier"]) + ASSIGN + r"(?P<v>" + RDS_ID + r")(?=[\"'\s,;}\]&]|$)",
        description='The source of an RDS event (describe-events), when its "SourceType" is a DB resource',
        validate=_rds_event_source_verdict,
        must_match=(('{"SourceIdentifier": "orders-db-2", "SourceType": "db-instance"}', "orders-db-2"),),
        must_not_match=(
            '{"SourceIdentifier": "web-app", "SourceType": "lambda"}',
            '[{"SourceType": "db-instance"}, {"SourceIdentifier": "web-app", "SourceType": "lambda"}]',
        ),
    ),
    Rule(
        name="rds_identifier_key",
        echo=True,
        category="rds",
        kind="RDS",
        regex=(
            words(
                [
                    "DBInstanceIdentifier",
                    "DBClusterIdentifier",
                    "DBSnapshotIdentifier",
                    "DBClusterSnapshotIdentifier",
                    "SourceDBInstanceIdentifier",
                    "SourceDBClusterIdentifier",
                    "ReadReplicaSourceDBInstanceIdentifier",
                    "DbInstanceIdentifier",
                    "DbClusterIdentifier",
                    "db_instance_identifier",
                    "db_cluster_identifier",
                    "cluster_identifier",
                    "ReadReplicaDBInstanceIdentifiers",
                    "ReadReplicaDBClusterIdentifiers",
                    "ReadReplicaSourceDBClusterIdentifier",
                    "TargetDBInstanceIdentifier",
                    "TargetDBClusterIdentifier",
                    "SourceDBSnapshotIdentifier",
                    "TargetDBSnapshotIdentifier",
                    "SourceDBClusterSnapshotIdentifier",
                    "TargetDBClusterSnapshotIdentifier",
                    "FinalDBSnapshotIdentifier",
                    "GlobalClusterIdentifier",
                    "SourceDbiResourceId",
                    "DBInstanceIdentifiers",
                    "DBClusterIdentifiers",
                    "db_snapshot_identifier",
                    "snapshot_identifier",
                    "final_snapshot_identifier",
                    "global_cluster_identifier",
                    "replicate_source_db",
                    # CloudTrail's requestParameters spell them with a lower-case first letter
                    "dBInstanceIdentifier",
                    "dBClusterIdentifier",
                    "dBSnapshotIdentifier",
                    "dBClusterSnapshotIdentifier",
                    "sourceDBInstanceIdentifier",
                    "sourceDBClusterIdentifier",
                    "sourceDBSnapshotIdentifier",
                    "targetDBSnapshotIdentifier",
                    "sourceDBClusterSnapshotIdentifier",
                    "targetDBClusterSnapshotIdentifier",
                    "finalDBSnapshotIdentifier",
                    "globalClusterIdentifier",
                    # the JSON of an RDS-managed secret in Secrets Manager
                    "dbInstanceIdentifier",
                    "dbClusterIdentifier",
                ]
            )
            # (or a tab: a CloudWatch dimension in text output, DIMENSIONS<tab>DBInstanceIdentifier<tab>x)
            # (or a dashboard's metrics array, "DBInstanceIdentifier", "x", or the CLI's shorthand)
            + "(?:"
            + ASSIGN
            + "|"
            + TAB
            + r"|[\"'],[ \t]*[\"']|,Value="
            + r")(?P<v>"
            + RDS_ID
            + r")(?=[\"'\s,;}\]&]|$)"
        ),
        description="RDS instance/cluster identifiers under their JSON/YAML/HCL keys",
        validate=_rds_key_verdict,
        must_match=(
            ('"DBInstanceIdentifier": "orders-db-2"', "orders-db-2"),
            ('cluster_identifier = "aurora-main"', "aurora-main"),
            ('{"engine": "postgres", "dbInstanceIdentifier": "orders-db-1"}', "orders-db-1"),
            ("DIMENSIONS\tDBInstanceIdentifier\torders-db-1\n", "orders-db-1"),
        ),
        must_not_match=('"DBInstanceIdentifier": "Bad--"',),
    ),
    Rule(
        name="rds_name_key",
        category="rds",
        kind="RDS",
        regex=(words(_RDS_NAME_KEYS) + ASSIGN + r"(?P<v>" + RDS_ID + r")(?=[\"'\s,;}\]&]|$)"),
        description=(
            "RDS names under generic keys (DBName, a Terraform `identifier`): masked where they stand, "
            "not echoed"
        ),
        anchors=word_anchors(_RDS_NAME_KEYS, AFTER_KEY),
        validate=_rds_key_verdict,
        must_match=(
            ('"DBName": "orders"', "orders"),
            ('  identifier = "aurora-main"', "aurora-main"),
            ('{"engine": "POSTGRES", "instanceID": "orders-db-1"}', "orders-db-1"),
        ),
        must_not_match=('"identifier": "Bad--"', '"instanceID": "i-0123456789abcdef0"'),
    ),
    Rule(
        name="rds_cli_flag",
        echo=True,
        category="rds",
        kind="RDS",
        regex=(
            words(
                [
                    "db-instance-identifier",
                    "db-cluster-identifier",
                    "db-snapshot-identifier",
                    "db-cluster-snapshot-identifier",
                    "source-db-instance-identifier",
                    "source-db-cluster-identifier",
                    "target-db-instance-identifier",
                    "target-db-cluster-identifier",
                    "source-db-snapshot-identifier",
                    "target-db-snapshot-identifier",
                    "source-db-cluster-snapshot-identifier",
                    "target-db-cluster-snapshot-identifier",
                    "final-db-snapshot-identifier",
                    "global-cluster-identifier",
                    "replication-source-identifier",
                ]
            )
            + r"(?:=|\s+)[\"']?(?P<v>"
            + RDS_ID
            + r")(?=[\"'\s,;}\]&]|$)"
        ),
        description="RDS identifiers after AWS CLI flags (--db-instance-identifier orders-db)",
        validate=_rds_key_verdict,
        must_match=(("aws rds reboot-db-instance --db-instance-identifier orders-db", "orders-db"),),
        must_not_match=("--db-instance-identifier",),
    ),
    Rule(
        name="rds_terraform_id",
        echo=True,
        category="rds",
        kind="RDS",
        regex=(
            words(
                [
                    "aws_db_instance",
                    "aws_rds_cluster",
                    "aws_rds_cluster_instance",
                    "aws_db_snapshot",
                    "aws_db_cluster_snapshot",
                    "aws_rds_global_cluster",
                ]
            )
            + _terraform_id(RDS_ID)
        ),
        description=(
            "An RDS identifier as a Terraform resource's ID: progress lines (aws_db_instance.x: Refreshing "
            "state... [id=<db>]) and `terraform import aws_rds_cluster.x <cluster>`"
        ),
        validate=_terraform_rds_verdict,
        must_match=(
            ("aws_db_instance.main: Refreshing state... [id=orders-db-1]", "orders-db-1"),
            ("aws_rds_cluster.main: Modifying... [id=orders-cluster, 1m0s elapsed]", "orders-cluster"),
            ("terraform import aws_rds_cluster.main orders-cluster", "orders-cluster"),
        ),
        must_not_match=("aws_db_instance.main will be updated in-place", "aws_db_instance.main [id=Bad--]"),
    ),
    Rule(
        name="rds_context_value",
        echo=True,
        category="rds",
        kind="RDS",
        regex=(
            # a CloudWatch Logs group of RDS (/aws/rds/instance/<db>/postgresql), the RDS console's
            # #database:id=<db>, a describe filter (Name=db-instance-id,Values=<db>; JSON too)
            r"(?:a(?<=/a)ws/rds/(?:instance|cluster|proxy)/"
            r"|d(?<=[#;&?]d)(?:atabase|binstance|bcluster)s?:id="
            r"|d(?<![A-Za-z0-9_-]d)b-(?:instance|cluster)-id"
            r"(?:,Values=|[\"']?[ \t]*,[ \t]*[\"']?Values[\"']?[ \t]*[:=][ \t]*\[?[ \t]*[\"']?))(?P<v>"
            + RDS_ID
            + r")(?=[/;&,\"'\s}\]]|$)"
        ),
        description=(
            "RDS identifiers in RDS log group names (/aws/rds/instance/<db>/...), RDS console URLs "
            "(#database:id=<db>) and describe filters (Name=db-instance-id,Values=<db>)"
        ),
        anchors=(
            "aws/rds/(?:instance|cluster|proxy)/",
            "(?:database|dbinstance|dbcluster)s?:id=",
            "db-(?:instance|cluster)-id[\"',]",
        ),
        validate=_rds_key_verdict,
        must_match=(
            ("log group /aws/rds/instance/orders-db-1/postgresql", "orders-db-1"),
            ('"logGroup": "/aws/rds/cluster/ledger/error"', "ledger"),
            ("https://console.aws.amazon.com/rds/home?region=eu-west-1#database:id=orders-db;x", "orders-db"),
            ("aws rds describe-db-instances --filters Name=db-instance-id,Values=orders-db-1", "orders-db-1"),
            ('"Filters": [{"Name": "db-cluster-id", "Values": ["ledger"]}]', "ledger"),
        ),
        must_not_match=("/aws/rds/instance/", "#database:id=Bad--", "db-instance-id"),
    ),
    Rule(
        name="rds_resource_id",
        category="rds",
        kind="RDS_RESOURCE_ID",
        regex=words(["db-", "cluster-"], "[A-Za-z0-9_-]") + r"[A-Z0-9]{26}(?![A-Za-z0-9_])",
        description="RDS DbiResourceId / DbClusterResourceId (db-<26 uppercase alnum>)",
        anchors=(r"(?:db|cluster)-[A-Z0-9]{26}",),
        must_match=(("DbiResourceId: db-ABCDEFGHIJKLMNOPQRSTUVWXY2", "db-ABCDEFGHIJKLMNOPQRSTUVWXY2"),),
        must_not_match=("db-connection", "cluster-ABC"),
    ),
    Rule(
        name="rds_with_identifier",
        echo=True,
        category="rds",
        kind="RDS",
        # RDS's messages: "Cannot create the snapshot because a snapshot with the identifier <x> already
        # exists", "DB instance with the identifier <x> ..."
        regex=words(["with"]) + r" the identifier (?P<v>" + RDS_ID + r")(?![a-z0-9-]|\.[A-Za-z0-9])",
        description="An RDS identifier in RDS's messages (a snapshot with the identifier <x> already exists)",
        anchors=("with the identifier ",),
        validate=_prose_rds_verdict,
        must_match=(
            (
                "Cannot create the snapshot because a snapshot with the identifier orders-prod-db-1-final "
                "already exists.",
                "orders-prod-db-1-final",
            ),
        ),
        must_not_match=("with the identifier -bad",),
    ),
    *(rule for lead in _PROSE_NAME_LEADS for rule in _prose_name_rules(*lead)),
    Rule(
        name="rds_prose_list",
        echo_when=distinctive_name,
        category="rds",
        kind="RDS",
        regex=(
            words(_RDS_LIST_WORDS)
            + r"(?:[ \t]{1,4}DB)?(?:[ \t]{1,4}(?:instances|clusters|databases|snapshots))?"
            r"(?:[ \t]{1,4}(?:named|called))?:?[ \t]{1,4}(?P<v>"
            + prose_list(RDS_ID)
            + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        items=r"(?<![A-Za-z0-9_.-])(?P<v>" + RDS_ID + r")(?![A-Za-z0-9_.-])",
        description='RDS identifiers listed in prose ("RDS instances orders-db-1 and orders-db-2")',
        anchors=word_anchors(_RDS_LIST_WORDS, BLANK),
        validate=_prose_rds_verdict,
        must_match=(
            ("the RDS instances orders-db-1 and orders-db-2 failed over", "orders-db-2"),
            ("databases billing-db, ledger-db, or audit-db", "audit-db"),
            ("aurora clusters `ledger-2` & `ledger-3`", "ledger-3"),
        ),
        must_not_match=("RDS instances and clusters", "databases postgres and mysql"),
    ),
    Rule(
        name="rds_prose",
        echo_when=distinctive_name,
        category="rds",
        kind="RDS",
        regex=(
            # "RDS DB Instance (x)" (Terraform), "DB cluster instance", "DB instance identifier x",
            # "Aurora cluster named x", "DB instance name is x"
            words(_RDS_PROSE_WORDS)
            + r"(?:\s+DB)?(?:\s+(?:[Ii]nstance|[Cc]luster))?(?:\s+(?:[Ii]nstance|[Ss]napshot))?"
            r"(?:\s+(?:[Ii]dentifier|ID|[Nn]ame))?(?:\s+(?:named|called|is))?:?\s+"
            + OPEN_QUOTE
            + r"(?P<v>"
            + RDS_ID
            + r")(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        description='RDS identifiers in prose after "RDS", "database", "DB instance", "DB cluster"',
        anchors=word_anchors(_RDS_PROSE_WORDS, BLANK + ":"),
        validate=_prose_rds_verdict,
        must_match=(
            ("Analyze: ... RDS prod-db, IP 10.0.1.100", "prod-db"),
            ("the database orders-db-1 is slow", "orders-db-1"),
            ("DB instance 'billing' failed over", "billing"),
            ("the DB cluster named ``ledger`` is the one", "ledger"),
            ('the DB instance called "warehouse" is retired', "warehouse"),
            ("DBInstance orders-db-1 not found.", "orders-db-1"),
            ("DBClusterSnapshot pre-upgrade-1 not found.", "pre-upgrade-1"),
            ("Error: creating RDS DB Instance (orders-db-1): x", "orders-db-1"),
            ("the DB instance identifier orders-db-1 is wrong", "orders-db-1"),
            ("Aurora cluster named ledger-2 is slow", "ledger-2"),
        ),
        must_not_match=(
            "the database connection pool",
            "RDS instance types",
            "goodbye feedback mongodb",
            "DB is down",
            "the database (postgres) is slow",
            "DBInstance not found",
            "Aurora Serverless v2 scales",
        ),
    ),
    Rule(
        name="rds_snapshot_prose",
        category="rds",
        kind="RDS",
        regex=(
            words(_SNAPSHOT_WORDS) + r"\s+(?:named|called)\s+" + OPEN_QUOTE + r"(?P<v>" + RDS_ID + r")"
            r"(?![a-z0-9-]|\.[A-Za-z0-9])"
        ),
        description='A DB snapshot named in prose: "snapshot named `x`", "snapshot called pre-upgrade-1"',
        anchors=word_anchors(_SNAPSHOT_WORDS, BLANK),
        validate=_prose_rds_verdict,
        must_match=(
            ("the snapshot named `nightly` is kept", "nightly"),
            ("cluster snapshot called pre-upgrade-1 can go", "pre-upgrade-1"),
            ("snapshot named ``nightly``", "nightly"),
        ),
        must_not_match=("the snapshot named after the date", "snapshot called for"),
    ),
    # ---- Credentials -----------------------------------------------------------------------------
    Rule(
        name="access_key_id",
        echo=True,
        category="credentials",
        kind="ACCESS_KEY",
        regex=(
            words(ACCESS_KEY_PREFIXES, "[A-Za-z0-9]")
            + r"[A-Z0-9]{16}(?![A-Za-z0-9])"
            # a secret key written right after its key ID (AKIA...:secret) is masked as a second value
            + r"(?P<t>(?:[\"']?[\s:,;|=/]{1,3}[\"']?(?P<p>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=]))?)"
        ),
        description=(
            "Access key IDs: AKIA (long-term), ASIA (STS), ABIA, ACCA + 16; and a 40-character secret key "
            "right after one (AKIA...:secret)"
        ),
        anchors=(one_of(ACCESS_KEY_PREFIXES) + "[A-Z0-9]{16}",),
        pair_kind="SECRET_KEY",
        must_match=(
            ("aws_access_key_id = AKIA2OGYBAH6XQ7TV4MZ", "AKIA2OGYBAH6XQ7TV4MZ"),
            ('"AccessKeyId": "ASIAY34FZKBOKMUTVV7A"', "ASIAY34FZKBOKMUTVV7A"),
            ("AKIA2OGYBAH6XQ7TV4MZ:/k3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m", "AKIA2OGYBAH6XQ7TV4MZ"),
            (
                "AKIA2OGYBAH6XQ7TV4MZ:/k3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "/k3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "ASIAY34FZKBOKMUTVV7A Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "AKIA2OGYBAH6XQ7TV4MZ / Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
        ),
        must_not_match=("AKIA is a prefix", "AKIA2OGYBAH6XQ7TV4MZEXTRA"),
    ),
    Rule(
        name="secret_key_prose",
        echo=True,
        category="credentials",
        kind="SECRET_KEY",
        # a secret access key named in prose: "the secret key is <key>", "I rotated the secret to <key>"
        regex=(
            words(["secret", "Secret", "SECRET"])
            + r"(?:[ \t]{1,4}(?:access[ \t]{1,4})?key)?(?:[ \t]{1,4}(?:is|was|to|of|now|=))?:?[ \t]{1,4}"
            r"[\"'`]?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        description='A secret access key named in prose ("the secret key is <key>", "the secret to <key>")',
        anchors=(
            r"(?:secret|Secret|SECRET)(?:[ \t]{1,4}(?:access[ \t]{1,4})?key)?"
            r"(?:[ \t]{1,4}(?:is|was|to|of|now|=))?:?[ \t]{1,4}[\"'`]?[A-Za-z0-9/+]",
        ),
        validate=_prose_secret_verdict,
        must_match=(
            (
                "The secret key is Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m and",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "I rotated the secret to Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m.",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
        ),
        must_not_match=(
            "the secret is 0123456789abcdef0123456789abcdef01234567",
            "the secret is aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
    ),
    Rule(
        name="iam_unique_id",
        category="credentials",
        kind="IAM_ID",
        regex=(words(IAM_ID_PREFIXES, "[A-Za-z0-9]") + r"[A-Z0-9]{16,17}(?![A-Za-z0-9])"),
        description=(
            "IAM unique IDs: AIDA (user), AROA (role), AGPA, AIPA, ANPA, ANVA, APKA, ASCA; ACCA (a "
            "service-specific credential)"
        ),
        anchors=(one_of(IAM_ID_PREFIXES) + "[A-Z0-9]{16}",),
        must_match=(
            ('"RoleId": "AROA3XFRBF535PLBIFPI4"', "AROA3XFRBF535PLBIFPI4"),
            ('"ServiceSpecificCredentialId": "ACCAQFODXMPL4YFHP7DZE"', "ACCAQFODXMPL4YFHP7DZE"),
        ),
        must_not_match=("AROA",),
    ),
    Rule(
        name="secret_access_key",
        echo=True,
        category="credentials",
        kind="SECRET_KEY",
        regex=(
            words(
                [
                    "SecretAccessKey",
                    "secretAccessKey",
                    "aws_secret_access_key",
                    "AWS_SECRET_ACCESS_KEY",
                    "secret_access_key",
                    "SecretKey",
                    "secret_key",
                    "aws_secret_key",
                    "AWS_SECRET_KEY",
                    "secretKey",
                    "secret-access-key",  # (and aws-secret-access-key: a GitHub Actions input)
                    "Secret Access Key",  # `aws configure`'s prompt, the console's CSV header
                    "Secret access key",
                    "fs.s3a.secret.key",
                    "awsSecretAccessKey",  # (Hadoop's fs.s3n.awsSecretAccessKey)
                    # other names for the same thing (S3-compatible clients, CI secrets, slips)
                    "S3_SECRET_ACCESS_KEY",
                    "S3_SECRET_KEY",
                    "s3_secret_access_key",
                    "s3_secret_key",
                    "SECRET_ACCESS_KEY",
                    "AWS_SECRET",
                    "aws_secret",
                    "AWS_SECRET_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY_ID",
                    "--secret",  # serverless config credentials --provider aws --key AKIA... --secret ...
                    "awsSecretKey",
                    "AwsSecretKey",
                    "AWSSecretKey",
                    "AWSSecretAccessKey",
                    "AwsSecretAccessKey",
                    "secret-key",  # Spring Cloud AWS: cloud.aws.credentials.secret-key
                    "TF_VAR_aws_secret_access_key",
                    "TF_VAR_aws_secret_key",
                    "TF_VAR_secret_key",
                    "TF_VAR_AWS_SECRET_ACCESS_KEY",
                    "secret",  # key: AKIA... secret: ...
                    "Secret",
                    "aws_sec_key",  # Fluentd's out_s3
                ]
            )
            # (`aws configure` prompts "AWS Secret Access Key [None]: ")
            + r"(?:[ \t]*\[[^\]\n]{0,40}\])?"
            # (a Hadoop XML property: <name>fs.s3a.secret.key</name> then <value>...</value>; an STS
            # response's <SecretAccessKey>...; a PHP array's or Logstash's =>)
            + r"(?:[\"']?\s*(?:=>|[:=])\s*|\s+|>|</name>"
            + run(r"\s")
            + r"<value>)[\"']?"
            + r"(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        description="40-character secret access keys, only next to a key name that says so",
        must_match=(
            (
                "aws_secret_access_key = Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "aws configure set aws_secret_access_key Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "AWS Secret Access Key [None]: Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m\n",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "    aws-secret-access-key: Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "S3_SECRET_ACCESS_KEY=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                'AWS_SECRET: "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"',
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "<name>fs.s3a.secret.key</name>\n  <value>Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m</value>",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "sls config credentials --provider aws --key AKIA2OGYBAH6XQ7TV4MZ "
                "--secret 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",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "cloud.aws.credentials.secret-key=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "TF_VAR_aws_secret_access_key=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
        ),
        must_not_match=(
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "the SecretKey is required",
            "MY_AWS_SECRET=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",  # (not a name listed)
            "AWS_SECRET=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m" + "X",  # (41 characters: not a key)
            "<name>fs.s3a.secret.key</name><value>short</value>",
        ),
    ),
    Rule(
        name="secret_access_key_suffix",
        echo=True,
        category="credentials",
        kind="SECRET_KEY",
        # (a CI system's or a team's prefix before the key name: CI_AWS_SECRET_ACCESS_KEY,
        # PROD_SECRET_ACCESS_KEY, deploy_aws_secret_access_key, ciSecretAccessKey)
        regex=(
            # (not where the rule above starts inside the key: aws-secret-access-key, S3_SECRET_KEY)
            r"[A-Za-z](?<![A-Za-z0-9_-].)(?<!(?=(?:aws|AWS|s3|S3)[_-](?:secret|SECRET)[_-]).)[A-Za-z0-9_-]{0,40}?"
            r"(?:[_-](?:"
            + _SECRET_SNAKE
            + r")|(?<=[a-z0-9])(?:"
            + _SECRET_CAMEL
            + "))"
            + r"(?:[\"']?\s*[:=]\s*|[ \t]+)[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
        description="40-character secret access keys under a key that ends in SECRET_ACCESS_KEY or SecretKey",
        anchors=(_SECRET_SUFFIX_KEY,),
        must_match=(
            (
                "CI_AWS_SECRET_ACCESS_KEY=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                '"ci_secret_access_key": "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m"',
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
            (
                "prodSecretAccessKey: Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
                "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
            ),
        ),
        must_not_match=(
            "CI_AWS_SECRET_ACCESS_KEY=${{ secrets.CI_AWS_SECRET_ACCESS_KEY }}",
            "DJANGO_SECRET_KEY=changeme",
            "CI_AWS_SECRET_ACCESS_KEY=Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m" + "X",  # (41 characters)
        ),
    ),
    Rule(
        name="session_token_key",
        echo=True,
        category="credentials",
        kind="SESSION_TOKEN",
        regex=(
            words(
                [
                    "SessionToken",
                    "sessionToken",
                    "aws_session_token",
                    "AWS_SESSION_TOKEN",
                    "aws_security_token",
                    "AWS_SECURITY_TOKEN",
                    "security_token",
                    "X-Amz-Security-Token",
                    "x-amz-security-token",
                ]
            )
            + ASSIGN
            + r"(?P<v>[A-Za-z0-9/+=]{100,})"
        ),
        description=(
            "STS session tokens under their key names (100+ base64 characters; a presigned URL's "
            "X-Amz-Security-Token too, read percent-decoded)"
        ),
        must_match=(
            ("aws_session_token = " + "IQoJb3JpZ2luX2VjEJr" + "a" * 120, "IQoJb3JpZ2luX2VjEJr" + "a" * 120),
            ("x-amz-security-token: FQoD/" + "a" * 120 + "=\r\n", "FQoD/" + "a" * 120 + "="),
        ),
        must_not_match=("SessionToken: short",),
    ),
    Rule(
        name="session_token",
        echo=True,
        category="credentials",
        kind="SESSION_TOKEN",
        regex=words(["FwoGZXIvYXdzE", "FQoGZXIvYXdzE", "IQoJb3JpZ2luX2Vj"], "[A-Za-z0-9/+=]")
        + r"[A-Za-z0-9/+=]{50,}",
        description="STS session tokens by their well-known base64 prefixes, with or without a key",
        must_match=(("token FwoGZXIvYXdzEBAaD" + "x" * 80, "FwoGZXIvYXdzEBAaD" + "x" * 80),),
        must_not_match=("FwoGZXIvYXdzE",),
    ),
    # ---- Account IDs: 12 digits only with evidence -----------------------------------------------
    Rule(
        name="s3_access_log_canonical_id",
        echo=True,
        category="account",
        kind="CANONICAL_ID",
        regex=(
            r"[0-9a-f](?<![A-Za-z0-9_][0-9a-f])[0-9a-f]{63}(?= (?:"
            + BUCKET
            + " "
            + ACCESS_LOG_TIME
            + r"|[0-9A-Z]{16} (?:REST|WEBSITE|BATCH|S3)\.))"
        ),
        description="Canonical user IDs in S3 server access logs: the bucket owner and the requester",
        anchors=("[0-9a-f]{64} ",),
        must_match=(
            (_CANONICAL + " acme-logs [06/Feb/2024:00:00:38 +0000] 10.0.0.1", _CANONICAL),
            ("+0000] 10.0.0.1 " + _CANONICAL + " 3E57427F33A59F07 REST.GET.VERSIONING -", _CANONICAL),
        ),
        must_not_match=(_CANONICAL + " is the sha256 of the file", _CANONICAL + " acme-logs [today]"),
    ),
    Rule(
        name="canonical_user_id",
        echo=True,
        category="account",
        kind="CANONICAL_ID",
        regex=(
            "(?:"
            + words(["CanonicalUser", "S3CanonicalUserId", "OwnerId"])
            + ASSIGN
            + "|"
            + words(["OWNER", "GRANTEE"])
            + TAB
            + "(?:"
            + _FIELD
            + TAB
            + r")?)(?P<v>[0-9a-f]{64}(?:[0-9a-f]{32})?)(?![A-Za-z0-9])"
        ),
        description=(
            "S3 canonical user IDs (64 hex; CloudFront's S3CanonicalUserId: 96): CanonicalUser "
            "principals, OWNER/GRANTEE lines of text output"
        ),
        anchors=(
            one_of(["CanonicalUser", "S3CanonicalUserId"]),
            one_of(["OWNER", "GRANTEE"]) + TAB,
            # (an OwnerId is an account's 12 digits, or in Security Hub's AwsS3Bucket a canonical ID)
            r"OwnerId[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?[0-9a-f]{13}",
        ),
        must_match=(
            ('"Principal": {"CanonicalUser": "' + _CANONICAL + '"}', _CANONICAL),
            ("OWNER\tops\t" + _CANONICAL + "\nBUCKETS", _CANONICAL),
            ("GRANTEE\t" + _CANONICAL + "\tCanonicalUser", _CANONICAL),
            ('{"o": "OWNER\\tops\\t' + _CANONICAL + '\\n"}', _CANONICAL),
            ('"S3CanonicalUserId": "' + _CANONICAL + _CANONICAL[:32] + '"', _CANONICAL + _CANONICAL[:32]),
            ('{"AwsS3Bucket": {"OwnerId": "' + _CANONICAL + '"}}', _CANONICAL),
        ),
        must_not_match=('"CanonicalUser": "' + _CANONICAL + '0"', "OWNER " + _CANONICAL),
    ),
    Rule(
        name="canonical_user_id_key",
        echo=True,
        category="account",
        kind="CANONICAL_ID",
        regex=(words(["ID", "Id", "id"]) + "(?:" + ASSIGN + "|>)" + r"(?P<v>[0-9a-f]{64})(?![A-Za-z0-9])"),
        description=(
            'S3 canonical user IDs under an "ID" key (JSON, YAML, XML) of an Owner or Grantee: '
            "ACLs, bucket and object listings; GuardDuty writes it Id"
        ),
        # (Id and id are keys everywhere: only before eight hex digits)
        anchors=(
            *word_anchors(("ID",), AFTER_KEY + ">"),
            r"(?:Id|id)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?[0-9a-f]{8}",
        ),
        validate=_owner_id_verdict,
        must_match=(
            ('"Owner": {"DisplayName": "ops", "ID": "' + _CANONICAL + '"}', _CANONICAL),
            ("Grantee:\n  ID: " + _CANONICAL + "\n  Type: CanonicalUser", _CANONICAL),
            ("<Owner><ID>" + _CANONICAL + "</ID></Owner>", _CANONICAL),
            ('"Owner": {"Id": "' + _CANONICAL + '"}', _CANONICAL),  # GuardDuty's S3BucketDetails
        ),
        must_not_match=(
            '{"ID":"' + _CANONICAL + '","Image":"nginx","Names":"web"}',  # docker ps --no-trunc
            "Session ID: " + _CANONICAL,
            '"Owner": {"ID": "' + _CANONICAL + '0"}',
            '{"Id": "' + _CANONICAL + '", "Image": "nginx"}',
        ),
    ),
    Rule(
        name="canonical_user_id_table",
        echo=True,
        category="account",
        kind="CANONICAL_ID",
        regex=r"[0-9a-f](?<![A-Za-z0-9_][0-9a-f])[0-9a-f]{63}(?= +\|)",
        description="S3 canonical user IDs in `--output table` cells under an ID column (Owner, Grantee)",
        # Not a bare [0-9a-f]{64}, nor one with " {0,64}|" after it: either made Hyperscan's whole
        # scan 3-5x slower (load/bench_engine.py), while this one costs nothing measurable. (The
        # cells of a stretched table carry any number of blanks, so the rule does not bound them.)
        anchors=(r"[0-9a-f]{64} ",),
        validate=_table_id_verdict,
        must_match=(
            (
                "||  DisplayName  |  ID  ||\n|+---+---+|\n||  ops  |  " + _CANONICAL + "  ||",
                _CANONICAL,
            ),
        ),
        must_not_match=(
            "| digest | " + _CANONICAL + " |",
            "||  Name  |  Hash  ||\n||  x  |  " + _CANONICAL + "  ||",
        ),
    ),
    Rule(
        name="kms_key_id",
        echo=True,
        category="arn",
        kind="KMS_ARN",
        regex=_keyed_id(_KMS_KEY_KEYS, _KMS_KEY_ID),
        description="A KMS key's ID (a UUID, or mrk- and 32 hex digits) under its keys and CLI flags",
        anchors=_keyed_anchors(_KMS_KEY_KEYS),
        must_match=(
            ('"KeyId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"', "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
            ("decrypt --key-id 1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d", "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"),
            ("KmsKeyId: mrk-0a1b2c3d4e5f60718293a4b5c6d7e8f9", "mrk-0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
        ),
        must_not_match=('"KeyId": "alias/aws/s3"', '"RequestId": "1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d"'),
    ),
    Rule(
        name="cloudfront_distribution_id",
        echo=True,
        category="arn",
        kind="CLOUDFRONT_ARN",
        regex=_keyed_id(_CF_DIST_KEYS, _CF_DIST_ID),
        description="A CloudFront distribution's ID (E...) under its keys, CLI flags and console paths",
        anchors=_keyed_anchors(_CF_DIST_KEYS),
        must_match=(
            ("aws cloudfront create-invalidation --distribution-id E1A2B3C4D5E6F7", "E1A2B3C4D5E6F7"),
            (
                "https://console.aws.amazon.com/cloudfront/v4/home#/distributions/E1A2B3C4D5E6F7",
                "E1A2B3C4D5E6F7",
            ),
        ),
        must_not_match=('"DistributionId": "E1"', "--distribution-id EXAMPLEVALUEXY"),
    ),
    Rule(
        name="cloudfront_id_flag",
        echo=True,
        category="arn",
        kind="CLOUDFRONT_ARN",
        regex=r"i(?<=--i)d(?:=|[ \t]{1,4})(?P<v>" + _CF_DIST_ID + ")" + _ID_END,
        description="A CloudFront distribution's ID after --id (aws cloudfront get-distribution --id E...)",
        anchors=(r"id(?:=|[ \t]{1,4})E",),
        must_match=(("aws cloudfront get-distribution --id E2QWRUHEXAMPL3", "E2QWRUHEXAMPL3"),),
        must_not_match=("--id EXAMPLEVALUEXY", "the id E2QWRUHEXAMPL3"),
    ),
    Rule(
        name="cloudfront_distribution_prose",
        echo=True,
        category="arn",
        kind="CLOUDFRONT_ARN",
        regex=(
            words(_CF_PROSE_WORDS)
            + _CF_PROSE_GAP
            + r"(?P<v>"
            + _CF_PROSE_ITEM
            + r"(?:"
            + _CF_PROSE_SEPARATOR
            + _CF_PROSE_ITEM
            + r")*)"
            + _ID_END
        ),
        items=_CF_PROSE_ITEM,
        description=(
            "CloudFront distribution IDs after the word distribution(s) in prose, every one of a list "
            "(distribution E2QW..., distribution ID is E2QW..., distributions E2QW..., E3AB... and ...)"
        ),
        anchors=(one_of(_CF_PROSE_WORDS) + "[^A-Za-z0-9]",),
        must_match=(
            ("distribution E2QWRUHAPOMQZL is slow", "E2QWRUHAPOMQZL"),
            ("CloudFront distribution ID E1A2B3C4D5E6F7 returns 403", "E1A2B3C4D5E6F7"),
            ("Distribution: `E2QWRUHAPOMQZL`", "E2QWRUHAPOMQZL"),
            ("DISTRIBUTION E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
            ("the distribution (E2QWRUHAPOMQZL) is", "E2QWRUHAPOMQZL"),
            ("distributions E2QWRUHAPOMQZL, E3ABCDEFGHIJ1K and E1A2B3C4D5E6F7", "E1A2B3C4D5E6F7"),
            ("a distribution with ID E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
            ("the distribution ID is E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
            ("distribution:\nE2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"),
            ("distribution: **E2QWRUHAPOMQZL**", "E2QWRUHAPOMQZL"),
            ("| distribution | E2QWRUHAPOMQZL |", "E2QWRUHAPOMQZL"),
        ),
        must_not_match=(
            "distribution EXAMPLEVALUEXY",
            "the distribution E1 is",
            "distribution E2QWRUHAPOMQZL1X",
            "redistribution E2QWRUHAPOMQZL",
            "distribution of E2QWRUHAPOMQZL",
        ),
    ),
    Rule(
        name="cloudfront_log_file",
        echo=True,
        category="arn",
        kind="CLOUDFRONT_ARN",
        regex=(
            r"E(?<![A-Za-z0-9_-]E)(?=[A-Z]{0,12}[0-9])[A-Z0-9]{11,13}"
            r"(?=\.[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}\.[0-9a-f]{8}\b)"
        ),
        description="A CloudFront distribution's ID in its log files' names (<ID>.<date-hour>.<hash>.gz)",
        anchors=(r"E[A-Z0-9]{11,13}\.[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}\.",),
        must_match=(("s3://logs/cf/E1A2B3C4D5E6F7.2024-01-15-10.a1b2c3d4.gz", "E1A2B3C4D5E6F7"),),
        must_not_match=("EXAMPLEEXAMPLE.2024-01-15-10.a1b2c3d4.gz",),
    ),
    Rule(
        name="route53_zone_id",
        echo=True,
        category="arn",
        kind="ROUTE53_ARN",
        regex=_keyed_id(_ZONE_KEYS, _ZONE_ID),
        description="A Route 53 hosted zone's ID (Z...) under its keys, CLI flags and /hostedzone/ paths",
        anchors=_keyed_anchors(_ZONE_KEYS),
        must_match=(
            ('{"Id": "/hostedzone/Z0123456789ABCDEFGHIJ"}', "Z0123456789ABCDEFGHIJ"),
            ("--hosted-zone-id Z0123456789ABCDEFGHIJ --change-batch file://x", "Z0123456789ABCDEFGHIJ"),
            ('zone_id = "Z08A1B2C3D4E5F6G7H8I9"', "Z08A1B2C3D4E5F6G7H8I9"),
        ),
        must_not_match=('"HostedZoneId": "ZONEIDENTIFIER"', "hostedzone/Z12"),
    ),
    Rule(
        name="apigateway_id",
        echo=True,
        category="arn",
        kind="APIGW_ARN",
        regex=_keyed_id(_APIGW_KEYS, _APIGW_ID),
        description="An API Gateway API's ID under its keys, CLI flags and execution log group names",
        anchors=_keyed_anchors(_APIGW_KEYS),
        must_match=(
            ("aws apigateway get-stages --rest-api-id a1b2c3d4e5", "a1b2c3d4e5"),
            ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod", "a1b2c3d4e5"),
            ('"restApiId": "x7k2m9p4q1"', "x7k2m9p4q1"),
        ),
        must_not_match=('"apiId": "orders"', "--api-id abcdefghij"),
    ),
    Rule(
        name="ecs_task_id",
        echo=True,
        category="arn",
        kind="ECS_ARN",
        regex=_keyed_id(_ECS_TASK_KEYS, r"[0-9a-f]{32}"),
        description="An ECS task's ID (32 hex digits) under its keys, CLI flags and task/ paths",
        anchors=_keyed_anchors(_ECS_TASK_KEYS),
        must_match=(
            (
                "aws ecs execute-command --cluster prod --task 0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d --command sh",
                "0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d",
            ),
        ),
        must_not_match=("--task build", "--task 0a1b2c3d4e5f4a6b8c9d0e1f2a3b4c5d9"),
    ),
    Rule(
        name="cognito_pool_id",
        echo=True,
        category="arn",
        kind="COGNITO_ARN",
        # a user pool (<region>_ and 9 letters and digits, one upper-case or a digit at least) or an
        # identity pool (<region>:<UUID>)
        regex=(
            r"[a-z](?<![A-Za-z0-9_.:-][a-z])[a-z]-(?:gov-|iso[a-z]?-)?[a-z]{1,12}-[0-9]"
            r"(?:_(?=[a-z]{0,8}[A-Z0-9])[A-Za-z0-9]{9}|:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
            + _ID_END
        ),
        description="Cognito user pool IDs (us-east-1_AbCdEfGhI) and identity pool IDs (us-east-1:<UUID>)",
        anchors=(
            r"[a-z]{2}-[a-z]{1,12}-[0-9][_:][0-9A-Za-z]",
            r"[a-z]{2}-(?:gov|iso[a-z]?)-[a-z]{1,12}-[0-9][_:][0-9A-Za-z]",
        ),
        must_match=(
            ('{"UserPool": {"Id": "us-east-1_AbCdEfGhI"}}', "us-east-1_AbCdEfGhI"),
            (
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x7K2m9P4q/.well-known",
                "eu-west-1_x7K2m9P4q",
            ),
            (
                "IdentityPoolId: us-east-1:1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
                "us-east-1:1a2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d",
            ),
        ),
        must_not_match=(
            "us-east-1_resources",
            "us-east-1_terraform",
            "us-east-1:latest",
            "us-east-1_AbCdEfGh",
        ),
    ),
    # ---- resource names and IDs of the ninth review (see _NINTH_REVIEW_RULES) ---------------------
    *_NINTH_REVIEW_RULES,
    Rule(
        name="account_console_host",
        category="account",
        kind="ACCOUNT",
        regex=(
            r"[0-9](?<![0-9A-Za-z_.-].)[0-9]{11}(?=-[a-z0-9]{4,16}\.(?:[a-z0-9-]{1,30}\.)?console\."
            r"(?:aws\.amazon\.com|amazonaws-us-gov\.com|amazonaws\.cn))"
        ),
        description=(
            "The account in a multi-session console host: https://<account>-<id>.<region>.console.aws.amazon.com"
        ),
        anchors=(r"[0-9]{12}-[a-z0-9]{4,16}\.(?:[a-z0-9-]{1,30}\.)?console\.",),
        echo=True,
        must_match=(
            ("https://483920175526-abcd1234.us-east-1.console.aws.amazon.com/ec2/home", "483920175526"),
        ),
        must_not_match=(
            "https://483920175526-abcd1234.example.com/",
            "4839201755261-abcd1234.console.aws.amazon.com",
        ),
    ),
    Rule(
        name="account_id",
        category="account",
        kind="ACCOUNT",
        regex=(
            r"(?:[0-9](?<![0-9A-Za-z_.-].)(?:[0-9]{11}|[0-9]{3}-[0-9]{4}-[0-9]{4})(?![0-9-])"
            # in digit groups, with blanks (no-break spaces too) or dashes: not inside a longer run of
            # groups (a card number)
            r"|[0-9](?<![0-9A-Za-z_.-].)(?<![0-9]" + _DIGIT_GAP + r".)"
            r"(?:[0-9]{3}" + _GROUP_GAP + r"[0-9]{4}" + _GROUP_GAP + r"[0-9]{4}"
            r"|[0-9]{2}" + _DIGIT_GAP + r"[0-9]{3}" + _DIGIT_GAP + r"[0-9]{3}" + _DIGIT_GAP + r"[0-9]{3})"
            r"(?![0-9-]|" + _DIGIT_GAP + r"[0-9]))"
        ),
        description=(
            "12-digit account IDs, only with evidence: under a key that names an account or owner "
            "(OwnerId, *OwnerId, Account, AccountId, awsAccountId, UserId, ...) or after the word 'account'"
        ),
        anchors=(
            "[0-9]{12}",
            "[0-9]{4}-[0-9]{4}-[0-9]{4}",
            # (the prefilter sees a character outside ASCII as "?")
            r"[0-9]{4}[ ?][0-9]{4}[ ?][0-9]{4}",
            r"[0-9]{3}[ ?-][0-9]{3}[ ?-][0-9]{3}[ ?-][0-9]{3}",
        ),
        validate=_account_verdict,
        echo=True,
        must_match=(
            ('"OwnerId": "123456789012"', "123456789012"),
            ('{"AccountId": " 483920175526"}', "483920175526"),
            ('{"Account": "210987654321", "Arn": "x"}', "210987654321"),
            ("AWS_ACCOUNT_ID=000123456789", "000123456789"),
            ('"TransitGatewayOwnerId": "845803944877"', "845803944877"),
            ("sso_account_id = 802220383512", "802220383512"),
            ("in account 123456789012 we see", "123456789012"),
            ("Account ID: 1234-5678-9012", "1234-5678-9012"),
            ('"Principal": {"AWS": ["111122223333", "444455556666"]}', "444455556666"),
            ("aws sts assume-role --account-id 210987654321", "210987654321"),
            ("|  OwnerId   |  123456789012  |", "123456789012"),
            ("RESERVATIONS\t123456789012\tr-0abc", "123456789012"),
            ("RESERVATIONS\t111111111111\t123456789012\tr-0abc", "123456789012"),
            ('{"message": "RESERVATIONS\\t123456789012\\tr-0abc"}', "123456789012"),
            ("aws ec2 describe-images --owners 123456789012", "123456789012"),
            ("aws ec2 describe-snapshots --owner-ids 111111111111 123456789012", "123456789012"),
            (
                "2 123456789012 eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 443 49152 6 10 840 1700 ACCEPT OK",
                "123456789012",
            ),
            ("the accounts 111122223333 and 444455556666 differ", "444455556666"),
            ("account ID is **123456789012**", "123456789012"),
        ),
        must_not_match=(
            '"Timestamp": "1700000000000"',
            '"OwnerId": "1234567890123"',
            "account balance 1700000000000",
            "order 123456789012",
            "account:\nthe order 123456789012",
            '"SizeInBytes": 123456789012',
        ),
    ),
    Rule(
        name="account_id_number",
        category="account",
        kind="ACCOUNT",
        # the digits after a minus sign (not one inside a name: cdk-...-1234...), or a number with an
        # exponent (Go's %v of a float64); 1234....0 is account_id's already. The sign starts the match,
        # so the prefilter does not try this rule at every 12-digit number (account_id's anchor)
        regex=(
            r"-(?<![0-9A-Za-z_.-].)(?P<v>[0-9]{12})(?![0-9-])"
            r"|[0-9](?<![0-9A-Za-z_.].)(?<![0-9A-Za-z_.-]-.)\.[0-9]{1,20}[eE]\+?[0-9]{1,2}(?![0-9A-Za-z_.])"
        ),
        description=(
            "12-digit account IDs written as numbers with a sign or an exponent (-4839..., 4.839...e11) "
            "under an account key, as account_id has them"
        ),
        anchors=("-[0-9]{12}", r"[0-9]\.[0-9]{1,20}[eE]"),
        validate=_account_number_verdict,
        echo=True,
        must_match=(
            ('{"AccountId": -483920175526}', "483920175526"),
            ('"OwnerId": 4.83920175526e11', "4.83920175526e11"),
            ("AccountId: 4.83920175526E+11\n", "4.83920175526E+11"),
            ('{"AccountId": -4.83920175526e11}', "4.83920175526e11"),
        ),
        must_not_match=(
            '"Timestamp": -483920175526',
            '"OwnerId": 4.839201755265e11',
            '"OwnerId": 4.83920175526e12',
            "x-483920175526",
            '"AccountId": --483920175526',
            "account balance 4.83920175526e11",
        ),
    ),
    Rule(
        name="account_in_name",
        category="account",
        kind="ACCOUNT",
        # twelve digits with a hyphen and a name part before them, or a hyphen and a letter after them
        # (not inside a longer run of digits, letters or underscores)
        regex=(
            r"(?:[0-9](?<=[A-Za-z0-9.]-[0-9])[0-9]{11}(?![0-9A-Za-z_])"
            r"|[0-9](?<![0-9A-Za-z_.-].)[0-9]{11}(?=-[A-Za-z]))"
        ),
        description=(
            "An account ID in a resource's name, joined to it by a hyphen, as AWS names the buckets it "
            "makes (aws-cloudtrail-logs-<account>-..., sagemaker-<region>-<account>, "
            "aws-athena-query-results-<account>-<region>) and as people name theirs "
            "(<account>-terraform-state); not twelve digits that read as a time (backup-202411111030)"
        ),
        anchors=("[0-9]{12}",),
        validate=_account_in_name_verdict,
        echo=True,
        must_match=(
            ("the trail writes to aws-cloudtrail-logs-483920175526-3f2a1b9c", "483920175526"),
            ("results in aws-athena-query-results-483920175526-us-east-1/", "483920175526"),
            ("sagemaker-us-east-1-483920175526 is the default bucket", "483920175526"),
            ("upload elasticbeanstalk-eu-west-1-483920175526 app.zip", "483920175526"),
            ("see 483920175526-terraform-state for the state", "483920175526"),
            ('["us-east-1","orders-prod-logs-483920175526","Yellow"]', "483920175526"),
            ("codepipeline-us-east-1-483920175526-artifacts", "483920175526"),
            ("config-bucket-483920175526", "483920175526"),
        ),
        must_not_match=(
            "orders-db-snapshot-202411111030",
            "2024-11-11-483920175526",
            "logs-4839201755261-x",
            "logs-483920175526x",
            "logs_483920175526",
            "483920175526",
            "id 483920175526 here",
            "request 3f8a2b1c-4d5e-4f70-8192-483920175526",
        ),
    ),
    Rule(
        name="cdk_bootstrap_account",
        category="account",
        kind="ACCOUNT",
        regex=(
            r"c(?<![A-Za-z0-9_]c)dk-[A-Za-z0-9_-]{1,10}-(?:"
            + "|".join(map(re.escape, _CDK_BOOTSTRAP))
            + r")-(?P<v>[0-9]{12})-"
            + REGION
            + r"(?![A-Za-z0-9])"
        ),
        description=(
            "The account in the names of CDK bootstrap resources: cdk-<qualifier>-assets-<account>-<region> "
            "(bucket), -container-assets- (ECR), -cfn-exec-role-, -deploy-role-, -lookup-role-, "
            "-file-publishing-role-, -image-publishing-role- (roles)"
        ),
        anchors=("cdk-",),
        echo=True,
        must_match=(
            ("upload to cdk-hnb659fds-assets-483920175526-us-east-1 failed", "483920175526"),
            ("role/cdk-hnb659fds-cfn-exec-role-483920175526-eu-west-1", "483920175526"),
            ("assume cdk-hnb659fds-deploy-role-483920175526-us-west-2 failed", "483920175526"),
            ('"cdk-myqual1234-file-publishing-role-483920175526-ap-south-1"', "483920175526"),
            ("repo cdk-hnb659fds-container-assets-483920175526-us-east-1:abc", "483920175526"),
            ("cdk-hnb659fds-lookup-role-483920175526-us-gov-west-1", "483920175526"),
        ),
        must_not_match=(
            "cdk-hnb659fds-assets-4839201755261-us-east-1",
            "cdk-hnb659fds-assets-483920175526",
            "cdk-hnb659fds-deploy-role",
            "xcdk-hnb659fds-assets-483920175526-us-east-1",
            "cdk-qualifier-too-long-assets-483920175526-us-east-1",
        ),
    ),
    Rule(
        name="organizations_id",
        category="account",
        kind="ORG_ID",
        # (a digit among them, as in every ID but one in 25: "o-something" in prose is no ID)
        regex=r"o(?<![A-Za-z0-9_.-]o)-(?=[a-z]{0,31}[0-9])[a-z0-9]{10,32}(?![A-Za-z0-9_-])",
        description="AWS Organizations IDs: o- and 10-32 lower-case letters and digits (a digit at least)",
        anchors=("o-[a-z0-9]{10}",),
        must_match=(
            ('"aws:PrincipalOrgID": "o-p33tczvkx8"', "o-p33tczvkx8"),
            ("AWSLogs/o-a1b2c3d4e5/483920175526/", "o-a1b2c3d4e5"),
        ),
        must_not_match=("o-somethingelse", "o-a1b2c3d4e", "o-a1b2c3d4e5-x", "go-a1b2c3d4e5", "o-A1B2C3D4E5"),
    ),
    Rule(
        name="organizations_ou_id",
        category="account",
        kind="ORG_UNIT",
        regex=(
            r"o(?<![A-Za-z0-9_.-]o)u-(?=[a-z]{0,32}(?:-[a-z]{0,32})?[0-9])"
            r"[a-z0-9]{4,32}-[a-z0-9]{8,32}(?![A-Za-z0-9_-])"
        ),
        description=(
            "AWS Organizations OU IDs: ou-, the root's 4-32 characters, -, 8-32 lower-case letters and "
            "digits (one a digit at least)"
        ),
        anchors=("ou-[a-z0-9]{4}",),
        must_match=(
            ('"OrganizationalUnitId": "ou-ab12-cd34ef56"', "ou-ab12-cd34ef56"),
            ("move it to ou-x9ky-1a2b3c4d5e now", "ou-x9ky-1a2b3c4d5e"),
        ),
        must_not_match=("ou-test-something", "ou-ab12-cd34ef5", "you-ab12-cd34ef56", "ou-ab12-cd34ef56-x"),
    ),
    Rule(
        name="organizations_root_id",
        category="account",
        kind="ORG_ROOT",
        regex=(words(_ORG_ROOT_KEYS) + "(?:" + ASSIGN + r"|[ \t]+)(?P<v>" + _ORG_ROOT_ID + ")"),
        description=(
            "AWS Organizations root IDs (r- and 4-32 lower-case letters and digits, one a digit) under "
            "RootId/ParentId/TargetId keys and flags, and after the word root"
        ),
        anchors=word_anchors(_ORG_ROOT_KEYS, AFTER_KEY),
        echo=True,
        must_match=(
            ('"ParentId": "r-ab12"', "r-ab12"),
            ("aws organizations list-children --parent-id r-ab12 --child-type ACCOUNT", "r-ab12"),
            ("attach the SCP to the root r-ab12 first", "r-ab12"),
            ("Root ID: r-ab12", "r-ab12"),
        ),
        must_not_match=('"ParentId": "r-base"', '"ParentId": "r-ab1"', "the root r-base", "chroot r-ab12"),
    ),
    Rule(
        name="organizations_root_id_key",
        category="account",
        kind="ORG_ROOT",
        # (a plain Id is every other key of a dump: the anchor runs up to the "r-" of the value, so
        # the rule is tried only there, and the blanks around the colon are bounded to keep it so)
        regex=(
            r"I(?<![A-Za-z0-9_]I)d[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
            r"(?P<v>" + _ORG_ROOT_ID + ")"
        ),
        description=(
            'AWS Organizations root IDs as the Id of a root (list-roots: under "Roots", or with an '
            "Arn member next; list-parents: with Type ROOT)"
        ),
        anchors=(r"Id[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?r-",),
        validate=_org_root_verdict,
        echo=True,
        must_match=(
            ('{"Roots": [{"Id": "r-ab12", "Name": "Root"}]}', "r-ab12"),
            ('{"Parents": [{"Id": "r-ab12", "Type": "ROOT"}]}', "r-ab12"),
        ),
        must_not_match=('{"Id": "r-ab12"}', "Id: r-ab12-x", '{"Parents": [{"Id": "r-ab12", "Type": "OU"}]}'),
    ),
    # ---- EC2-family resource IDs ------------------------------------------------------------------
    Rule(
        name="ec2_fleet_uuid",
        category="ec2",
        kind="SPOT_FLEET",
        # a Spot Fleet request's and an EC2 Fleet's ID: the prefix and a whole UUID (not its first group)
        regex=words(["sfr-", "fleet-"], "[A-Za-z0-9]")
        + r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![A-Za-z0-9])",
        description="Spot Fleet request and EC2 Fleet IDs (sfr-<uuid>, fleet-<uuid>), whole",
        anchors=(r"(?:sfr|fleet)-[0-9a-f]{8}-",),
        kind_of=_ec2_uuid_kind,
        kinds=("SPOT_FLEET", "EC2_FLEET"),
        must_match=(
            (
                "SpotFleetRequestId: sfr-73fbd2ce-aa30-494c-8788-1cee4a1b2c3d",
                "sfr-73fbd2ce-aa30-494c-8788-1cee4a1b2c3d",
            ),
            (
                '"FleetId": "fleet-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"',
                "fleet-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            ),
        ),
        must_not_match=("sfr-73fbd2ce-aa30",),
    ),
    Rule(
        name="ebs_nvme_serial",
        category="ec2",
        kind="EBS_VOL",
        # an EBS volume's ID as its NVMe serial number, without the hyphen (lsblk -o +SERIAL, nvme list,
        # /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0f3e...)
        regex=words(["vol"], "[A-Za-z0-9]") + r"[0-9a-f]{17}(?![A-Za-z0-9])",
        description="An EBS volume's ID written as its NVMe serial number (vol0f3e2d1c0b9a87654)",
        anchors=("vol[0-9a-f]{17}",),
        must_match=(
            ("nvme1n1       100G vol0a9b8c7d6e5f43210", "vol0a9b8c7d6e5f43210"),
            ("nvme-Amazon_Elastic_Block_Store_vol0f3e2d1c0b9a87654 -> ../../nvme1n1", "vol0f3e2d1c0b9a87654"),
        ),
        must_not_match=("volume0f3e2d1c0b9a87654", "vol0f3e2d1c0b9a8765"),
    ),
    Rule(
        name="ec2_resource_id",
        category="ec2",
        kind="EC2",
        regex=(
            "(?:"
            + words([p + "-" for p in EC2_SHORT_PREFIXES], "[A-Za-z0-9]")
            + HEX_ID
            + "|"
            + words([p + "-" for p in EC2_LONG_PREFIXES], "[A-Za-z0-9]")
            + "[0-9a-f]{17})"
            + r"(?![A-Za-z0-9])"
        ),
        description=(
            "EC2-family IDs: <prefix>- + exactly 8 or 17 lowercase hex; the longest prefix wins; also inside "
            "names (web-i-0abc..., i-0abc..._stdout)"
        ),
        # one anchor per prefix: "rtb-" + 8 hex ends where "tgw-rtb-" + 8 hex does (see Rule.anchors)
        anchors=tuple(re.escape(p + "-") + "[0-9a-f]{8}" for p in EC2_PREFIXES),  # (8: the shortest)
        kind_of=_ec2_kind,
        kinds=tuple(dict.fromkeys(EC2_PREFIXES.values())),
        must_match=(
            ("Analyze: EC2 i-1234567890abcdef0, S3", "i-1234567890abcdef0"),
            ("ami-0abcdef1234567890", "ami-0abcdef1234567890"),
            ("vpc-0a1b2c3d4e5f67890 and sg-12345678", "vpc-0a1b2c3d4e5f67890"),
            ("tgw-attach-0123456789abcdef0", "tgw-attach-0123456789abcdef0"),
            ("old subnet-1a2b3c4d here", "subnet-1a2b3c4d"),
            ('"\\ni-0123456789abcdef0"', "i-0123456789abcdef0"),
        ),
        must_not_match=("i-0123456789", "xsg-12345678", "sg-1234567", "i-0123456789abcdef01", "vol-XYZ"),
    ),
    Rule(
        name="ec2_resource_id_any_case",
        category="ec2",
        kind="EC2",
        # (not all in lower case: the prefilter then need not report every lower-case ID again)
        regex=_ec2_any_case_regex(),
        description=(
            "EC2-family IDs written in upper or mixed case (I-0123456789ABCDEF0, VPC-0A1B2C3D): the same "
            "prefixes and exactly 8 or 17 hex digits, at least one letter in upper case"
        ),
        anchors=tuple(_ec2_any_case_anchor(p) for p in EC2_PREFIXES),
        kind_of=_ec2_any_case_kind,
        kinds=tuple(dict.fromkeys(EC2_PREFIXES.values())),
        must_match=(
            ("Instance I-0123456789ABCDEF0 is down", "I-0123456789ABCDEF0"),
            ("VPC-0A1B2C3D peers", "VPC-0A1B2C3D"),
            ("Vol-0123456789AbCdEf0.", "Vol-0123456789AbCdEf0"),
        ),
        must_not_match=("SG-1 and I-95", "I-0123456789", "VPC-ABCDEFGHIJ", "OP-12345678", "XSG-12345678"),
    ),
    Rule(
        name="ec2_spot_request_id",
        category="ec2",
        kind="SPOT_REQUEST",
        # (hex ones are ec2_resource_id's; a digit among the 8, so "sir-lancelot" is not one)
        regex=words(["sir-"], "[A-Za-z0-9]") + r"(?=[a-z]{0,7}[0-9])[0-9a-z]{8}(?![A-Za-z0-9])",
        description="Spot Instance request IDs: sir- and 8 lower-case letters and digits, not only hex",
        anchors=("sir-[0-9a-z]{8}",),
        must_match=(
            ('"SpotInstanceRequestId": "sir-86k84j6p"', "sir-86k84j6p"),
            ("cancel sir-dryi1gcm now", "sir-dryi1gcm"),
        ),
        must_not_match=("sir-lancelot", "sir-86k84j6p1", "xsir-86k84j6p"),
    ),
    # ---- IP addresses -----------------------------------------------------------------------------
    Rule(
        name="private_ip_dash",
        category="private_ip",
        kind="PRIVATE_IP",
        regex=(
            r"ip-(?<![A-Za-z0-9_]ip-)(?P<v>10-"
            + OCTET
            + "-"
            + OCTET
            + "-"
            + OCTET
            + r"|172-(?:1[6-9]|2[0-9]|3[01])-"
            + OCTET
            + "-"
            + OCTET
            + r"|100-(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])-"
            + OCTET
            + "-"
            + OCTET
            + r"|192-168-"
            + OCTET
            + "-"
            + OCTET
            + r")(?![0-9])"
        ),
        description="Dash-form private IPs inside hostnames (ip-10-0-0-1.corp.example)",
        anchors=("ip-1",),
        must_match=(("ssh ip-10-20-30-40.corp.example", "10-20-30-40"),),
        must_not_match=("ip-8-8-8-8.example",),
    ),
    Rule(
        name="private_ipv4",
        category="private_ip",
        kind="PRIVATE_IP",
        regex=(
            r"1(?<![0-9A-Za-z.]1)(?:0\."
            + OCTET
            + r"\."
            + OCTET
            + r"\."
            + OCTET
            + r"|72\.(?:1[6-9]|2[0-9]|3[01])\."
            + OCTET
            + r"\."
            + OCTET
            + r"|92\.168\."
            + OCTET
            + r"\."
            + OCTET
            + r"|00\.(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\."
            + OCTET
            + r"\."
            + OCTET
            + r")(?:/(?:3[0-2]|[12]?[0-9]))?(?![0-9]|\.[0-9])"
        ),
        description="Private IPv4 (RFC 1918 and 100.64/10 CGNAT) with optional CIDR; not after v/version",
        anchors=(r"1(?:0|72|92|00)\.",),
        validate=_private_ip_verdict,
        must_match=(
            ("IP 10.0.1.100 is down", "10.0.1.100"),
            ("cidr 172.31.0.0/16,", "172.31.0.0/16"),
            ("192.168.1.1", "192.168.1.1"),
            ("100.64.3.7", "100.64.3.7"),
        ),
        must_not_match=("version 10.0.1.4", "v10.0.0.1", "10.0.0.256", "1.10.0.0.1", "172.32.0.1"),
    ),
    Rule(
        name="public_ipv4",
        category="public_ip",
        kind="PUBLIC_IP",
        regex=(
            r"[0-9](?<![0-9A-Za-z.].)[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
            r"(?:/(?:3[0-2]|[12]?[0-9]))?(?![0-9]|\.[0-9])"
        ),
        description="Public IPv4; loopback, link-local, multicast, reserved and netmasks are kept",
        anchors=(DOTTED_QUAD,),
        validate=_public_ip_verdict,
        must_match=(("EIP 54.239.28.85 attached", "54.239.28.85"), ("3.5.140.0/22", "3.5.140.0/22")),
        must_not_match=(
            "v1.2.3.4",
            "Version 1.2.3.4",
            "127.0.0.1",
            "0.0.0.0/0",
            "255.255.255.0",
            "169.254.169.254",
            "Chrome/120.0.0.0",
            "Mozilla/5.0 Version/10.1.2.3",
            "1.2.3.4.5",
        ),
    ),
    Rule(
        name="ipv6",
        category="ipv6",
        kind="IPV6",
        regex=(
            r"[0-9a-fA-F:](?<![0-9A-Za-z:.].)(?:"
            # a full 8-group address followed by ":port" (ALB and NLB logs write them unbracketed)
            r"(?<=[0-9a-fA-F])[0-9a-fA-F]{0,3}(?::[0-9a-fA-F]{1,4}){7}(?=:[0-9]{1,5}(?![0-9A-Za-z:]))"
            r"|[0-9a-fA-F]{0,3}:[0-9a-fA-F]{0,4}:[0-9a-fA-F:]{0,35}"
            r"(?:(?<=[:0-9])(?:\.[0-9]{1,3}){3})?"  # IPv4-mapped: ::ffff:10.0.1.23
            r"(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?(?![0-9A-Za-z:]|\.[0-9]))"
        ),
        description="IPv6 addresses (validated); ::1 and :: are kept; times and MACs never match",
        anchors=("[0-9a-fA-F]{0,4}:[0-9a-fA-F]{0,4}:",),
        validate=_ipv6_verdict,
        must_match=(
            ("2600:1f18:24e6:a200::/56", "2600:1f18:24e6:a200::/56"),
            ("2001:db8::1", "2001:db8::1"),
            (
                "client 2a02:c7c:5e31:8d00:bc91:3f0e:62d4:9a17:61022 ",
                "2a02:c7c:5e31:8d00:bc91:3f0e:62d4:9a17",
            ),
            ("from ::ffff:10.0.1.23 connected", "::ffff:10.0.1.23"),
        ),
        must_not_match=("10:30:45", "::1", "00:1a:2b:3c:4d:5e", "std::vector", "dead::beef"),
    ),
)
