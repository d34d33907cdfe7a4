"""A hostile or careless client against the request-body mask (issue #10, second round): escapes
nested past any fixed depth, base64 sources that are not what they claim, top-level fields, text split
over messages, adversarial sizes, names written with escapes or percent-encoding, unicode look-alikes.
Each either masks the identifier or refuses the request; tests/gateway/test_gateway_adversarial.py sends
the main ones through the gateway. Failures name categories, never the identifiers."""

from __future__ import annotations

import json

import pytest
from leaks import find_leaks

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import InvalidEncodingError, MaskerError
from aws_masker.scanner import ESCAPE_LEVELS

SECRET = "adversarial-secret-0123"
ACCOUNT = "483920175526"
RDS = "orders-prod-db-1"
SECRET_KEY = "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq"
EC2 = "i-0123456789abcdef0"
NAMES = {ACCOUNT: "account", RDS: "rds", SECRET_KEY: "secret key", EC2: "ec2"}
RECORD = json.dumps(
    {"OwnerId": ACCOUNT, "DBInstanceIdentifier": RDS, "SecretAccessKey": SECRET_KEY, "Id": EC2}
)


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))


def request(*content: object, **extra: object) -> bytes:
    body = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": list(content)}]}
    body.update(extra)
    return json.dumps(body).encode()


def leaked(out: bytes, originals: tuple[str, ...] = tuple(NAMES)) -> list[str]:
    """Categories of the originals found in any decoded form of ``out`` (never the values)."""
    return sorted({NAMES.get(leak.original, "planted") for leak in find_leaks(originals, {"out": out})})


def masked_or_refused(masker: Masker, body: bytes, originals: tuple[str, ...] = tuple(NAMES)) -> str:
    try:
        out, _ = mask_request(body, masker)
    except MaskerError as exc:
        return f"refused {exc.code}"
    found = leaked(out, originals)
    assert found == [], f"leaked: {found}"
    return "masked"


# -- a. JSON escaped inside strings many levels deep ------------------------------------------------


def nested(levels: int) -> str:
    inner = RECORD
    for _ in range(levels):
        inner = json.dumps({"message": inner})
    return inner


@pytest.mark.parametrize("levels", [4, 5, 8, 12])
def test_escapes_many_levels_deep_are_seen_through(masker: Masker, levels: int) -> None:
    assert ESCAPE_LEVELS >= 12
    assert masked_or_refused(masker, request({"type": "text", "text": nested(levels)})) == "masked"
    assert masked_or_refused(masker, b"pasted: " + nested(levels).encode()) == "masked"


def test_escapes_past_the_bound_are_refused(masker: Masker) -> None:
    for body in (
        request({"type": "text", "text": nested(ESCAPE_LEVELS + 2)}),
        nested(ESCAPE_LEVELS + 2).encode(),
    ):
        with pytest.raises(InvalidEncodingError) as err:
            mask_request(body, masker)
        assert (err.value.status, err.value.code) == (400, "2004")


def backslash_chain(levels: int) -> str:
    r"""``\"OwnerId\": ...`` with each quote escaped ``levels`` deep at linear size: ``\u005c`` decodes to
    a backslash that starts the next level's escape (``\u005cu005c"`` -> ``\u005c"`` -> ``\"`` -> ``"``)."""
    quote = "\\" + "u005c" * (levels - 1) + '"' if levels > 1 else '\\"'
    return f"{{{quote}OwnerId{quote}: {quote}{ACCOUNT}{quote}}}"


@pytest.mark.parametrize("levels", [2, 9, ESCAPE_LEVELS])
def test_linear_size_escape_chains_are_seen_through(masker: Masker, levels: int) -> None:
    body = request({"type": "text", "text": backslash_chain(levels)})
    assert masked_or_refused(masker, body, (ACCOUNT,)) == "masked"


@pytest.mark.parametrize("levels", [ESCAPE_LEVELS + 1, 500])
def test_linear_size_escape_chains_past_the_bound_are_refused(masker: Masker, levels: int) -> None:
    body = request({"type": "text", "text": backslash_chain(levels)})
    assert masked_or_refused(masker, body, (ACCOUNT,)) == "refused 2004"


def test_ordinary_backslashes_are_not_refused(masker: Masker) -> None:
    text = r"C:\\Users\\me\\new\\table.txt and a regex \d+\s*\\w and \\\\server\\share" * 50
    out, _ = mask_request(request({"type": "text", "text": text}), masker)
    assert json.loads(out)["messages"][0]["content"][0]["text"] == text
