"""AWS CLI ``--output table`` and ``--output text`` read structurally (cliformats.py): a value whose
context is its column header, its ``Key | value`` row or its place in a text line gets the same verdict
as under that key in JSON. Failures report counts, never the values."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aws_masker import cliformats
from aws_masker.engine import Masker
from aws_masker.errors import TooComplexError
from aws_masker.restore import restore_text

ACCOUNT = "483920175526"
PEER = "730415926602"
RDS = "orders-prod-db-1"
SECRET = "Zq8vR2mK7pL4xN9cT1bW6yH3jF5dS0gA+e/uVk2Q"


def leaked(masked: str, *values: str) -> int:
    """How many of ``values`` survive in ``masked`` (a count: values stay out of failure output)."""
    return sum(value in masked for value in values)


def masked_by_hook(masker: Masker, text: str, *values: str) -> tuple[int, int]:
    """(survivors with the hook, survivors without it): the second shows the test can fail. (Callers
    assign the result before asserting on it, so a failure shows counts, not the text.)"""
    masked, result = masker.mask_text(text)
    assert restore_text(masked, result.tokens)[0] == text
    original = cliformats.may_hold
    cliformats.may_hold = lambda _text: False  # type: ignore[assignment]
    try:  # (a Masker of its own: one caches what it found in short strings)
        unhooked = Masker(masker.config).mask_text(text)[0]
    finally:
        cliformats.may_hold = original  # type: ignore[assignment]
    return leaked(masked, *values), leaked(unhooked, *values)


# ---- tables ----------------------------------------------------------------------------------------

KV_TABLE = f"""-------------------------------------------------------------------
|                         CreateAccessKey                         |
+-----------------------------------------------------------------+
||                           AccessKey                           ||
|+------------------+--------------------------------------------+|
||  AccessKeyId     |  AKIAPJWDVT7ZSK66KUK7                      ||
||  CreateDate      |  2024-06-11T14:40:51+00:00                 ||
||  SecretAccessKey |  {SECRET}  ||
||  Status          |  Active                                    ||
|+------------------+--------------------------------------------+|
"""

HEADER_TABLE = f"""-------------------------------------------------------------------------------------------
|                                    GetCallerIdentity                                    |
+--------------+------------------------------------------------+-------------------------+
|    Account   |                      Arn                       |         UserId          |
+--------------+------------------------------------------------+-------------------------+
|  {ACCOUNT}|  arn:aws:iam::{PEER}:user/deploy-bot         |  AIDAQ3EGT5XJ2LMN7RP4K  |
+--------------+------------------------------------------------+-------------------------+
"""

NESTED_TABLE = f"""------------------------------------------------------------------
|                     DescribeDBInstances                        |
+----------------------------------------------------------------+
||                          DBInstances                         ||
|+---------------------------+----------------------------------+|
||  DBInstanceClass          |  db.r6g.large                    ||
||  DBInstanceIdentifier     |  {RDS}                ||
||  Engine                   |  postgres                        ||
|+---------------------------+----------------------------------+|
|||                   ReadReplicaDBInstanceIdentifiers         |||
||+------------------------------------------------------------+||
|||  {RDS}-replica                                     |||
||+------------------------------------------------------------+||
|||                           Owner                            |||
||+----------------------+-------------------------------------+||
|||  DisplayName         |  platform                           |||
|||  OwnerId             |  {ACCOUNT}                       |||
||+----------------------+-------------------------------------+||
"""

# a list of dicts: a header row, then a row per element; one element lacks a key
LIST_TABLE = f"""------------------------------------------------------------------------------------------
|                                    DescribeSnapshots                                   |
+----------------------------------------------------------------------------------------+
||                                       Snapshots                                      ||
|+-----------------------------------+---------------+------------------------+---------+|
||            Description            |   OwnerId     |      SnapshotId        |  State  ||
|+-----------------------------------+---------------+------------------------+---------+|
||  nightly backup — données clients |  {ACCOUNT} |  snap-0a1b2c3d4e5f60718 |  completed ||
||  夜間バックアップ                 |  {PEER} |  snap-0a1b2c3d4e5f60719 |  completed ||
||                                   |  {ACCOUNT} |  snap-0a1b2c3d4e5f6071a |  pending||
|+-----------------------------------+---------------+------------------------+---------+|
"""


def test_key_value_rows_take_their_key(masker: Masker) -> None:
    survivors = masked_by_hook(masker, KV_TABLE, SECRET)
    assert survivors == (0, 1)


def test_header_row_names_the_columns(masker: Masker) -> None:
    # (the Arn names another account: the Account cell's own account would be echoed from the ARN)
    survivors = masked_by_hook(masker, HEADER_TABLE, ACCOUNT)
    assert survivors == (0, 1)


def test_nested_sections_and_scalar_lists(masker: Masker) -> None:
    # the key/value rows of the outer section, the nested section's own rows, a list of names
    survivors = masked_by_hook(masker, NESTED_TABLE, RDS, RDS + "-replica", ACCOUNT)[0]
    assert survivors == 0
    survivors = masked_by_hook(masker, NESTED_TABLE, RDS, RDS + "-replica")[1]
    assert survivors == 2


def test_list_rows_with_multibyte_cells_and_a_missing_value(masker: Masker) -> None:
    # wide characters (two columns each on a terminal) and an overflowing cell do not shift the columns
    survivors = masked_by_hook(masker, LIST_TABLE, ACCOUNT, PEER)
    assert survivors == (0, 2)


def test_a_row_wrapped_by_the_terminal(masker: Masker) -> None:
    wrapped = KV_TABLE.replace(f"  {SECRET}  ||", f"  {SECRET}\n  ||")
    survivors = masked_by_hook(masker, wrapped, SECRET)
    assert survivors == (0, 1)
    half = len(SECRET) // 2
    split = KV_TABLE.replace(f"  {SECRET}  ||", f"  {SECRET[:half]}\n{SECRET[half:]}  ||")
    masked, _result = masker.mask_text(split)
    survivors = leaked(masked, SECRET[:half], SECRET[half:])
    assert survivors == 0


def test_table_cells_map_to_their_keys() -> None:
    keys = {
        NESTED_TABLE[cell.start : cell.end]: {member for _parent, member, _listed in cell.keys}
        for cell in cliformats.table_cells(NESTED_TABLE)
    }
    assert keys["db.r6g.large"] == {"DBInstanceClass"}
    assert keys["platform"] == {"DisplayName"}
    assert keys[RDS + "-replica"] == {"ReadReplicaDBInstanceIdentifiers"}
    assert "DescribeDBInstances" not in keys and "Owner" not in keys  # titles are not values


# ---- text ------------------------------------------------------------------------------------------

TEXT = (
    f"RESERVATIONS\t{ACCOUNT}\tr-0a1b2c3d4e5f60718\n"
    "INSTANCES\t0\tx86_64\tami-0a1b2c3d4e5f60718\ti-0a1b2c3d4e5f60718\tt3.large\n"
    f"NETWORKINTERFACES\t\tinterface\t0e:11:3c:1d:9a:4d\teni-0a1b2c3d4e5f60718\t{PEER}\t10.40.12.87\tTrue\tin-use\n"
    f"DBINSTANCES\t200\tTrue\teu-west-1a\t7\tarn:aws:rds:eu-west-1:{ACCOUNT}:db:{RDS}\tdb.r6g.large\t{RDS}\t"
    "available\torders\t0\tFalse\tTrue\tpostgres\n"
    f"READREPLICADBINSTANCEIDENTIFIERS\t{RDS}-replica\n"
    f"CREDENTIALS\tASIAQ3EGT5XJ2LMN7RP4\t2024-06-11T15:42:09+00:00\t{SECRET}\tIQoJb3JpZ2luX2Vj{'a' * 120}\n"
)


def test_text_lines_align_with_the_structures(masker: Masker) -> None:
    survivors, unhooked = masked_by_hook(masker, TEXT, PEER, RDS, SECRET, RDS + "-replica")
    assert survivors == 0
    assert unhooked == 4


def test_text_lines_with_missing_trailing_fields(masker: Masker) -> None:
    # a structure prints only the members it has: fewer fields than members, none at the end
    text = f"SNAPSHOTS\tnightly\tTrue\t{ACCOUNT}\t100%\tsnap-0a1b2c3d4e5f60718\n"
    survivors = masked_by_hook(masker, text, ACCOUNT)
    assert survivors == (0, 1)
    # a list element lacking a member that others have: an empty field
    text = f"SNAPSHOTS\t\tTrue\t{ACCOUNT}\t100%\tsnap-0a1b2c3d4e5f60718\t2024-05-01T02:00:10.512Z\t\n"
    survivors = masked_by_hook(masker, text, ACCOUNT)
    assert survivors == (0, 1)


def test_top_level_line_without_a_name(masker: Masker) -> None:
    text = "$ aws sts get-caller-identity --output text\n"
    text += f"{ACCOUNT}\tarn:aws:iam::{PEER}:user/x\tAIDAQ3EGT5XJ2LMN7RP4K\n"
    survivors = masked_by_hook(masker, text, ACCOUNT)
    assert survivors == (0, 1)


def test_text_output_inside_a_json_string(masker: Masker) -> None:
    body = json.dumps({"output": TEXT})  # tabs and newlines escaped
    masked, result = masker.mask_text(body)
    survivors = leaked(masked, PEER, RDS, SECRET)
    assert survivors == 0
    assert restore_text(masked, result.tokens)[0] == body


def test_tables_inside_a_json_string_and_with_crlf(masker: Masker) -> None:
    for text in (
        json.dumps({"output": KV_TABLE + HEADER_TABLE}),
        (KV_TABLE + HEADER_TABLE).replace("\n", "\r\n"),
    ):
        masked, result = masker.mask_text(text)
        survivors = leaked(masked, SECRET, ACCOUNT)
        assert survivors == 0
        assert restore_text(masked, result.tokens)[0] == text


@pytest.mark.parametrize(
    "text",
    [
        f"{ACCOUNT}\tarn:aws:iam::{PEER}:user/x\tAIDAQ3EGT5XJ2LMN7RP4K",  # get-caller-identity
        f"ACCESSKEY\tAKIAPJWDVT7ZSK66KUK7\t2024-06-11T14:40:51+00:00\t{SECRET}\tActive\tsvc\n",
        KV_TABLE,
        HEADER_TABLE.removeprefix("-" * 91 + "\n"),
    ],
    ids=["caller-identity", "access-key", "kv-table", "header-table"],
)
def test_a_json_value_with_its_keys_around(masker: Masker, text: str) -> None:
    """A JSON body's string is scanned with its key before it and the next key after it (jsonbody.py):
    its first and last lines still parse."""
    masked, _result = masker.mask_texts([text], contexts=['{"content": "'], suffixes=['", "type": "text"}'])
    survivors = leaked(masked[0], ACCOUNT, SECRET)
    assert survivors == 0
    in_string = json.dumps({"content": text, "type": "text"})  # the same, escaped, as text
    survivors = leaked(masker.mask_text(in_string)[0], ACCOUNT, SECRET)
    assert survivors == 0


def test_a_name_found_in_a_table_is_echoed(masker: Masker) -> None:
    texts = [NESTED_TABLE, f"why is {RDS} slow since Monday?"]
    masked, _result = masker.mask_texts(texts)
    survivors = leaked(masked[1], RDS)
    assert survivors == 0


def test_disabled_category_stays(masker: Masker) -> None:
    from aws_masker.config import MaskerConfig

    off = Masker(MaskerConfig(token_secret="t", mask_account_ids=False))
    survivors = leaked(off.mask_text(HEADER_TABLE)[0], ACCOUNT)
    assert survivors == 1


# ---- no false positives ----------------------------------------------------------------------------

BENIGN = [
    "| a | b |\n|---|---|\n| 1 | 2 |\n",  # markdown
    "plain prose with a | pipe and\ttabs\n",
    "+------+-------+\n| name | owner |\n+------+-------+\n| ci   | 400012345678 |\n+------+-------+\n",
    "-----------------\n|   Inventory   |\n+---------------+\n||  Count | 400012345678 ||\n",
    "ORDER\t700123456789\t2024-01-15\tshipped\nOWNER\tmarta\t400012345678\n",
    "TAGS\tcost-centre\t400012345678\n",
]


@pytest.mark.parametrize("text", BENIGN, ids=range(len(BENIGN)))
def test_no_false_positives(masker: Masker, text: str) -> None:
    assert [f.rule.name for f in masker.find(text) if f.mask] == []


def test_may_hold_is_a_cheap_no() -> None:
    assert not cliformats.may_hold("just some prose, | a pipe, a\ttab, nothing else")
    assert not cliformats.may_hold('{"OwnerId": "' + ACCOUNT + '"}')
    assert cliformats.may_hold(KV_TABLE)
    assert cliformats.may_hold(TEXT)
    assert cliformats.may_hold(json.dumps({"o": TEXT}))


def test_alignment_is_pinned_by_booleans() -> None:
    struct = cliformats._Struct(0, ("A", "B", "C", "D"), "sbss", (2,))
    assert cliformats.align(["x", "True", "y"], struct) == {2: (2,)}
    assert cliformats.align(["True", "y"], struct) == {1: (2,)}
    assert cliformats.align(["x", "y", "z"], struct) == {1: (2,)}  # B holds no string: it is absent
    assert cliformats.align(["x", "y", "z", "w", "v"], struct) == {}  # more values than members


def test_crafted_text_output_is_refused_not_slow(masker: Masker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines of one listing share their alignments; a text whose every line needs a new one runs out
    of the per-text budget and is refused."""
    monkeypatch.setattr(cliformats, "ALIGN_BUDGET", 20_000)
    samples = ["True", "7", "x", "", "2024-01-01T00:00:00Z", "arn:aws:s3:::b"]
    lines = []
    for n in range(400):
        # (eleven values: a line of a third of a structure's members or fewer is not aligned to it)
        kinds = [samples[(n >> (2 * k)) % len(samples)] for k in range(10)]
        lines.append("\t".join(["DBINSTANCES", *kinds, "orders"]))
    masker.mask_text("\n".join(lines[:2]))  # a few lines: within the budget
    with pytest.raises(TooComplexError):
        masker.mask_text("\n".join(lines))


def test_too_many_distinct_values_are_refused(masker: Masker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cliformats, "JOB_BUDGET", 60)  # (5 lines: a few keys at a scan per probe)
    lines = [
        f"DBINSTANCES\t20\tTrue\teu-west-1a\t7\tdb.r6g.large\torders-{n}-db\tavailable\tpostgres\tFalse"
        for n in range(100)
    ]
    masker.mask_text("\n".join(lines[:5]))
    with pytest.raises(TooComplexError):
        masker.mask_text("\n".join(lines))


def test_the_shapes_were_made_from_this_catalogue() -> None:
    """A rule added or changed since data/cli_shapes.json was made may flag members the file lacks
    (a structure it left out as having none): text output would then lose what JSON output gets."""
    data = json.loads((Path(cliformats.__file__).with_name("data") / "cli_shapes.json").read_text())
    assert data["catalogue"] == cliformats.catalogue_fingerprint(), (
        "the catalogue changed since data/cli_shapes.json was made: pip install -e '.[shapes]' and run "
        "python scripts/gen_cli_shapes.py"
    )


def test_flags_agree_with_the_catalogue() -> None:
    """Every member flagged in data/cli_shapes.json still gets context from the catalogue (regenerate
    the file with scripts/gen_cli_shapes.py when this fails)."""
    shapes = cliformats.shapes()
    stale = 0
    pairs = {
        (member, struct.names[j])
        for entries in shapes.named.values()
        for member, structs in entries
        for struct in structs
        for j in struct.flagged
    }
    for parent, member in pairs:
        stale += not cliformats.member_gives_context(parent, member)
    assert len(pairs) > 300
    assert stale == 0


# ---- robustness ------------------------------------------------------------------------------------

_PIECES = [
    *KV_TABLE.splitlines(keepends=True),
    *NESTED_TABLE.splitlines(keepends=True),
    *LIST_TABLE.splitlines(keepends=True),
    *TEXT.splitlines(keepends=True),
    "|",
    "||",
    "|+|",
    "+-+\n",
    "\t",
    "\\n",
    "\\t",
    '"',
    "DBINSTANCES\t",
    "RESERVATIONS\t\t\t\n",
    "\n",
    " ",
    "é漢",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.data())
def test_any_mix_of_table_and_text_pieces(masker: Masker, pieces: list[str], data: st.DataObject) -> None:
    """Fragments of tables and text lines in any order, cut anywhere: no error, the restore gives
    the text back, and what is found does not overlap."""
    text = "".join(pieces)
    cut = data.draw(st.integers(0, len(text)))
    text = text[:cut]
    masked, result = masker.mask_text(text)
    found = masker.find(text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    if not any("\n" in text[f.start : f.end] for f in found):  # (a wrapped value is restored joined)
        assert restore_text(masked, result.tokens)[0] == text
