"""Whether a text holds a few marks that some optional reading needs, all found in one pass.

Several readings of a text apply only where a mark is there: the `--query` of an AWS CLI command
(cliformats.py), Cost Explorer's ``LINKED_ACCOUNT`` dimension (patterns.py), a Terraform output's
``"sensitive"``, a setting in code (``getenv("X", "...")``), a plan's ``"old" -> "new"``, a type
annotation (``bucket: str = "..."``), JSON in a CSV field (``""bucketName"":""...""``)
(textview.py). Asked one by one, each is a substring search
over the whole text, and a search for an absent string that shares characters with the text's
commonest ones (a blank, a quote) costs about a millisecond per megabyte. So the marks are found
together, by one Hyperscan scan of the text (each reported once), and remembered per thread for the
last text asked about (its identity, length and hash: a string's hash is computed once and kept).
Without the hyperscan package, each mark is a regex search, on demand.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Container
from typing import Any

try:
    import hyperscan
except ImportError:  # pragma: no cover - no wheel for this platform
    hyperscan = None

LINKED_DIMENSION = "LINKED_ACCOUNT"
"""Cost Explorer's dimension of accounts (patterns.py, jsonbody.py)."""
# Keys the catalogue's rules know in one spelling, by their words (textview.py reads the others as them)
KEY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("OwnerId", ("owner", "id")),
    ("AccountId", ("account", "id")),
    ("AwsAccountId", ("aws", "account", "id")),
    ("recipientAccountId", ("recipient", "account", "id")),
    ("AccountNumber", ("account", "number")),
    ("BucketName", ("bucket", "name")),
    ("S3Bucket", ("s3", "bucket")),
    ("DBInstanceIdentifier", ("db", "instance", "identifier")),
    ("DBInstanceIdentifier", ("db", "instance", "id")),
    ("DBClusterIdentifier", ("db", "cluster", "identifier")),
    ("DBClusterIdentifier", ("db", "cluster", "id")),
    ("DBSnapshotIdentifier", ("db", "snapshot", "identifier")),
    ("SecretAccessKey", ("secret", "access", "key")),
    ("SessionToken", ("session", "token")),
)
KEY_SPELLINGS = "|".join(
    f"{''.join(words)}|{''.join(words).upper()}|{'_'.join(words).upper()}|(?i:{'[-. ]'.join(words)})"
    for _key, words in KEY_WORDS
)
"""The other spellings of those keys (a regex alternation; textview.py reads them as the keys)."""
MARKS: dict[str, str] = {
    "query": r"--query",
    "linked": LINKED_DIMENSION,
    "sensitive": r"\"sensitive\"",
    # a call's or a subscript's string argument: os.getenv("X", ...), os.environ["X"] = ...
    "call": r"[A-Za-z0-9_][(\[][ \t]*[\"']",
    # a change's old and new value: "a" -> "b" (Terraform), "a" => "b" (Pulumi)
    "arrow": r"[ \t][-=]>[ \t]",
    # the header of `pulumi stack output`'s columns
    "outputs": r"OUTPUT[ \t]+VALUE",
    # a type annotation before a value: name: str = "...", name: string = "..."
    "annotation": r"[A-Za-z0-9_]:[ \t]*(?:str|string|SecretStr|Optional\[str\])[ \t]*=",
    # a JSON key in a CSV field, its quotes doubled (Athena's and Logs Insights' CSV exports)
    "doubled": r"\"\"[A-Za-z_][A-Za-z0-9_.-]{0,60}\"\":",
    "keys": KEY_SPELLINGS,
    # a value in code behind a wrapper or a fallback: Go's aws.String("..."), an SDK builder's
    # .tableName("..."), process.env.X || "..."
    "wrapped": (
        r"aws\.String\([ \t]*\"|(?:Name|Identifier|Id|Arn|Url)\([ \t]*[\"']"
        r"|process\.env\.[A-Za-z0-9_]{1,60}[ \t]*(?:\|\||\?\?)"
    ),
}
_NAMES = tuple(MARKS)
_REGEX = {name: re.compile(pattern) for name, pattern in MARKS.items()}


class _Marks:
    def __init__(self) -> None:
        self._database: Any = None
        self._local = threading.local()

    def _scan(self, text: str) -> frozenset[str]:
        if self._database is None:  # (two threads may both compile one: either is right)
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(
                expressions=[pattern.encode() for pattern in MARKS.values()],
                ids=list(range(len(MARKS))),
                elements=len(MARKS),
                flags=[hyperscan.HS_FLAG_SINGLEMATCH] * len(MARKS),
            )
            self._database = database
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or self._local.database is not self._database:
            scratch = self._local.scratch = hyperscan.Scratch(self._database)
            self._local.database = self._database
        found: set[str] = set()
        # (one byte per character: a mark is ASCII, and anything outside ASCII is none of its characters)
        self._database.scan(text.encode("ascii", "replace"), _note, 0, found, scratch)
        return frozenset(found)

    def found(self, text: str) -> frozenset[str]:
        key = (id(text), len(text), hash(text))
        note = getattr(self._local, "note", None)
        if note is None or note[0] != key:
            note = self._local.note = (key, self._scan(text))
        return note[1]  # type: ignore[no-any-return]


def _note(pattern: int, start: int, end: int, flags: int, found: set[str]) -> None:
    found.add(_NAMES[pattern])


_marks = _Marks()


def holds(text: str, name: str) -> bool:
    """Whether ``text`` holds the mark ``name`` (one of ``MARKS``)."""
    return name in marks_of(text)


class _Searched:
    """The marks of a text, each looked for when asked (without the hyperscan package)."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __contains__(self, name: object) -> bool:
        return _REGEX[name].search(self._text) is not None  # type: ignore[index]


def marks_of(text: str) -> Container[str]:
    """The marks ``text`` holds, to ask about several at once (``name in marks_of(text)``)."""
    if hyperscan is None:  # pragma: no cover - exercised where the package has no wheel
        return _Searched(text)
    return _marks.found(text)
