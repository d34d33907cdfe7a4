"""The proxy headers Kong passes on as the client sent them (forwarded.py): addresses pass, any other
identifier refuses the request."""

from __future__ import annotations

import pytest

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import IdentifierInRequestLineError
from aws_masker.forwarded import check_forwarded


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret="forwarded"))


BODY_TOKENS = {"AWS_S3_BUCKET_0123456789ab": "acme-prod-logs", "AWS_PRIVATE_IP_0123456789ab": "10.0.1.23"}


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-for": "10.0.1.23, 192.168.0.4"},  # also in the body: an address still passes
        {"x-forwarded-for": ["54.12.3.4", "2001:db8::1"]},
        {"via": "1.1 ip-10-0-0-5.ec2.internal (squid/5.7)"},
        {"via": "1.1 proxy.corp.example, 1.1 kong/3.9.3"},
        {"x-forwarded-host": "gateway.corp.example", "x-forwarded-port": "443", "x-forwarded-proto": "https"},
        {"x-note": "i-0123456789abcdef0"},  # not a passed-on proxy header: channels.py masks it
        {},
    ],
)
def test_addresses_and_names_of_hops_pass(masker: Masker, headers: dict[str, object]) -> None:
    check_forwarded(masker, headers, BODY_TOKENS)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-forwarded-for": "i-0123456789abcdef0"},
        {"x-forwarded-for": "10.0.1.23, arn:aws:iam::483920175526:role/admin"},
        {"x-forwarded-for": ["10.0.1.23", "AKIAQ3EGT5XJ2LMN7RPX"]},
        {"via": "1.1 proxy, 1.0 vpc-0a1b2c3d4e5f67890"},
        {"via": "1.1 acme-prod-logs"},  # a bucket the body named by its key
        {"x-forwarded-host": "acme-prod-logs.s3.amazonaws.com"},
        {"x-forwarded-path": "/v1/i-0123456789abcdef0/messages"},
        {"x-forwarded-prefix": "/i-0123456789abcdef0"},
    ],
)
def test_other_identifiers_refuse_the_request(masker: Masker, headers: dict[str, object]) -> None:
    with pytest.raises(IdentifierInRequestLineError) as caught:
        check_forwarded(masker, headers, BODY_TOKENS)
    assert caught.value.code == "2009"
    message = str(caught.value)
    for value in ("0123456789abcdef0", "483920175526", "acme-prod-logs", "AKIA"):
        assert value not in message
