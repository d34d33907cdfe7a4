"""mask_channels (plugin/aws_masker/channels.py) on its own: what the gateway tests reach through Kong's
lower-cased header names and header values scanned as strings of their own."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest

from aws_masker.channels import mask_channels
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import IdentifierInRequestLineError
from aws_masker.patterns import RULES


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret="channels-unit-secret"))


def test_an_upper_case_identifier_in_a_header_name_is_refused_though_kong_lower_cases_it(
    masker: Masker,
) -> None:
    # the client wrote "AKIA…: value"; Kong hands the plugin "akia…" and sends the original upstream
    with pytest.raises(IdentifierInRequestLineError):
        mask_channels(
            masker, {"akia2ogybah6xq7tv4mz": "x", "content-type": "application/json"}, "/v1/messages"
        )


def test_ordinary_header_names_pass(masker: Masker) -> None:
    headers = {
        "x-request-id": "abc",
        "anthropic-beta": "prompt-caching-2024-07-31",
        "x-stainless-os": "Linux",
    }
    assert mask_channels(masker, headers, "/v1/messages").result.total == 0


@pytest.mark.parametrize(
    "value",
    ["2024-03-02 17:20:11 media.example.com", "  2024-03-02 17:20:11 tf-state-7731"],
)
def test_a_header_value_is_scanned_as_a_string_of_its_own(value: str, masker: Masker) -> None:
    # an `aws s3 ls` line pasted into a header: its date begins the value, as it would a line
    out = mask_channels(masker, {"x-note": value}, "/v1/messages")
    (sent,) = out.headers["x-note"]
    assert value.split()[-1] not in sent and out.result.total == 1


_SAMPLES = [(rule.name, text, value) for rule in RULES for text, value in rule.must_match]


@pytest.mark.parametrize(
    ("rule", "text", "value"), _SAMPLES, ids=[f"{s[0]}-{i}" for i, s in enumerate(_SAMPLES)]
)
def test_every_catalogue_sample_is_masked_as_a_query_value(
    rule: str, text: str, value: str, masker: Masker
) -> None:
    """A query argument's value is scanned after its name and "=": what a rule finds at a line's or a
    string's start (an `aws s3 ls` line, text output, `functions:`) is found there too."""
    try:
        out = mask_channels(masker, {}, "/v1/messages?note=" + quote(text, safe=""))
    except IdentifierInRequestLineError:  # pragma: no cover - a value is masked, not refused
        pytest.fail("a query value was refused")
    assert out.raw_query is not None
    assert value not in unquote(out.raw_query)
