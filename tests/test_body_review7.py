"""A seventh review of the request body and channels as a hostile client: escapes whose introducer is
escaped in another kind (%5Cu002d, &#92;u002d, &#37;2d, %26%2345;), octal and CSS escapes, spaces
other than the ASCII one, look-alike letters outside the first fold table (Cherokee, small capitals,
Lisu, mathematical forms of Greek letters), account IDs written with a plus sign after their key in
text, numbers with exponents past Decimal's range under account keys, and RFC 2047
encoded words in header values. Each either masks the identifier or refuses the request. Failures name
categories, never the identifiers: assertions are not rewritten (PYTEST_DONT_REWRITE)."""

from __future__ import annotations

import base64
import json

import pytest
from leaks import find_leaks

from aws_masker.body import mask_request
from aws_masker.channels import mask_channels
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import IdentifierInRequestLineError, MaskerError
from aws_masker.forwarded import check_forwarded

SECRET = "review7-secret-0123"
ACCOUNT = "483920175526"
EC2 = "i-0123456789abcdef0"
EC2_TAIL = "0123456789abcdef0"
NAMES = {ACCOUNT: "account", EC2: "ec2"}


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))


def request(content: object, **extra: object) -> bytes:
    messages = [{"role": "user", "content": content}]
    body: dict[str, object] = {"model": "claude-x", "max_tokens": 10, "messages": messages}
    body.update(extra)
    return json.dumps(body).encode()


def masked_or_refused(masker: Masker, body: bytes, fragments: tuple[str, ...] = ()) -> str:
    """ "masked" when no original (in any form tests/leaks.py decodes) nor one of ``fragments`` is in
    the output."""
    try:
        out, _ = mask_request(body, masker)
    except MaskerError as exc:
        return f"refused {exc.code}"
    found = sorted({NAMES.get(leak.original, "planted") for leak in find_leaks(tuple(NAMES), {"out": out})})
    assert found == [], f"leaked: {found}"
    text = out.decode("utf-8")
    text += json.dumps(json.loads(text), ensure_ascii=False)
    kept = [k for k, fragment in enumerate(fragments) if fragment in text]
    assert kept == [], f"fragments left (by index): {kept}"
    return "masked"


# ---- escapes stacked across kinds ----------------------------------------------------------------

STACKED = [
    "%5Cu002d",  # a JSON escape, percent-encoded
    "%255Cu002d",  # ... twice
    "&#92;u002d",  # a JSON escape whose backslash is an HTML reference
    "&amp;#92;x2d",  # a \x escape, its backslash a reference escaped again
    "&bsol;u002d",
    "%5C055",  # an octal escape, percent-encoded
    "&#37;2d",  # a percent escape whose percent sign is a reference
    "&percnt;252d",
    "%26%2345;",  # a reference, percent-encoded
    "%26#x2d%3B",
    "%2526%252345%253B",
]


@pytest.mark.parametrize("dash", STACKED)
def test_stacked_escapes_are_read_through(masker: Masker, dash: str) -> None:
    body = request(f"EC2 i{dash}{EC2_TAIL} is down")
    assert masked_or_refused(masker, body, (EC2_TAIL,)) == "masked"


def test_stacked_escapes_of_other_characters_pass(masker: Masker) -> None:
    text = "a%5Cnb &#92;n &#37;20 %26%2360; %26amp; x"
    out, result = mask_request(request(text), masker)
    assert result.total == 0
    assert json.loads(out)["messages"][0]["content"] == text


# ---- octal and CSS escapes -----------------------------------------------------------------------


@pytest.mark.parametrize("dash", ["\\055", "\\2d ", "\\2D\t", "\\00002d"])
def test_octal_and_css_escapes(masker: Masker, dash: str) -> None:
    assert masked_or_refused(masker, request(f"EC2 i{dash}{EC2_TAIL}"), (EC2_TAIL,)) == "masked"


def test_octal_account_digits(masker: Masker) -> None:
    digits = "".join(f"\\{ord(c):03o}" for c in ACCOUNT)
    assert masked_or_refused(masker, request(f"OwnerId: {digits}"), (digits,)) == "masked"


def test_backslashes_that_are_no_escape_pass(masker: Masker) -> None:
    text = r"C:\Users\dev\000 and regex \d{12} \1 \s+ \ab"
    out, result = mask_request(request(text), masker)
    assert result.total == 0
    assert json.loads(out)["messages"][0]["content"] == text


# ---- spaces and look-alikes ----------------------------------------------------------------------


@pytest.mark.parametrize("space", ["\u00a0", "\u2009", "\u202f", "\u3000", "\u2007"])
def test_other_spaces_read_as_a_space(masker: Masker, space: str) -> None:
    # after a key, a no-break or thin space separates as a space does
    assert masked_or_refused(masker, request(f"OwnerId:{space}{ACCOUNT}")) == "masked"
    assert masked_or_refused(masker, request(f"account{space}{ACCOUNT}")) == "masked"


def test_space_inside_an_identifier_is_a_space(masker: Masker) -> None:
    """Decided: a no-break or thin space inside an identifier reads as a space, as an ASCII space
    there does (the catalogue does not join words across a space): both halves pass alike."""
    for space in (" ", "\u00a0", "\u2009"):
        _, result = mask_request(request(f"the id is i-0123{space}456789ab"), masker)
        assert result.total == 0


@pytest.mark.parametrize(
    "first",
    [
        "\u13a5",  # Cherokee letter V, drawn as an i
        "\uab75",  # its lower-case form
        "\u026a",  # Latin small capital I
        "\u0131",  # dotless i
        "\u0269",  # Latin iota
        "\U0001d6a4",  # mathematical italic dotless i (NFKC: dotless i)
    ],
)
def test_lookalike_letters(masker: Masker, first: str) -> None:
    assert masked_or_refused(masker, request(f"EC2 {first}-{EC2_TAIL}"), (EC2_TAIL,)) == "masked"


def test_small_capitals_and_lisu_spell_words(masker: Masker) -> None:
    # "account" in small capitals, "OwnerId" in Lisu capitals and small capitals
    account = "\u1d00\u1d04\u1d04\u1d0f\u1d1c\u0274\u1d1b"
    assert masked_or_refused(masker, request(f"{account} {ACCOUNT}")) == "masked"
    assert masked_or_refused(masker, request(f"\ua4f3wnerId: {ACCOUNT}")) == "masked"


def test_lookalikes_in_ordinary_text_pass(masker: Masker) -> None:
    text = "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ and ꓡꓲꓢꓴ and ɪ ᴀᴍ ʜᴇʀᴇ \u00a0 thin\u2009space"
    out, result = mask_request(request(text), masker)
    assert result.total == 0
    assert json.loads(out)["messages"][0]["content"] == text


# ---- account IDs written loosely in text ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"OwnerId: +{ACCOUNT}",
        f"OwnerId=+00{ACCOUNT}",
        f'{{"AccountId": "+{ACCOUNT}"}}',
        f"account +{ACCOUNT}",
        f"owner_id = '+{ACCOUNT}'",
    ],
)
def test_loose_accounts_after_their_key(masker: Masker, text: str) -> None:
    assert masked_or_refused(masker, request(text)) == "masked"


def test_loose_numbers_elsewhere_pass(masker: Masker) -> None:
    text = f"phone: +{ACCOUNT[:-1]}9 order 0{ACCOUNT[:-1]}7 ts=1700000000000 id: 10{ACCOUNT}"
    out, result = mask_request(request(text), masker)
    assert result.total == 0
    assert json.loads(out)["messages"][0]["content"] == text


# ---- numbers past Decimal's range ----------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999999999", "-1E+999999999", "1e-999999999", "0.0e999999999"])
def test_huge_exponents_under_account_keys(masker: Masker, number: str) -> None:
    body = ('{"model": "x", "max_tokens": 1, "OwnerId": ' + number + ', "messages": []}').encode()
    out, result = mask_request(body, masker)
    assert out == body and result.total == 0


def test_exponent_forms_of_an_account(masker: Masker) -> None:
    for number in ("483920175526e0", "0.000483920175526e15", "48392017552600000000000e-11"):
        body = ('{"model": "x", "max_tokens": 1, "OwnerId": ' + number + ', "messages": []}').encode()
        assert masked_or_refused(masker, body) == "masked"


# ---- RFC 2047 encoded words in headers -----------------------------------------------------------


def _b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


@pytest.mark.parametrize(
    "value",
    [
        _b_word(f"EC2 {EC2}"),
        "=?UTF-8?Q?i=2D" + EC2_TAIL + "?=",
        "note =?iso-8859-1?q?account_" + ACCOUNT + "?= end",
        "=?utf-8?B?" + base64.urlsafe_b64encode(EC2.encode()).decode().rstrip("=") + "?=",
    ],
)
def test_encoded_words_in_headers_refuse(masker: Masker, value: str) -> None:
    with pytest.raises(IdentifierInRequestLineError) as info:
        mask_channels(masker, {"x-note": value}, "/v1/messages")
    assert EC2 not in info.value.message and ACCOUNT not in info.value.message
    with pytest.raises(IdentifierInRequestLineError):
        check_forwarded(masker, {"via": "1.1 " + value})


def test_encoded_words_without_identifiers_pass(masker: Masker) -> None:
    out = mask_channels(masker, {"x-note": _b_word("héllo wörld") + " =?utf-8?q?a_b?="}, "/v1/messages")
    assert out.headers == {} and out.raw_query is None
    check_forwarded(masker, {"via": "1.1 " + _b_word("proxy")})
