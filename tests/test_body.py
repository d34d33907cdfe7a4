"""Whole-body masking: Anthropic JSON, text, bad input (restoring is in test_restore.py)."""

from __future__ import annotations

import base64
import json

import pytest

from aws_masker.body import mask_request
from aws_masker.engine import Masker
from aws_masker.errors import InvalidEncodingError
from aws_masker.restore import restore_json_text
from aws_masker.tokens import TOKEN_RE

PROMPT = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
ORIGINALS = ("i-1234567890abcdef0", "my-bucket", "prod-db", "10.0.1.100")


def _request(**extra: object) -> dict:
    img = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"raw image bytes").decode()
    return {
        "model": "claude-i-1234567890abcdef0",
        "max_tokens": 256,
        "system": "You help with AWS. Account 123456789012.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": img}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "look at 10.0.1.100", "signature": "sig10.0.1.100"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "ec2",
                        "input": {"i-1234567890abcdef0": "10.0.1.100"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"VpcId": "vpc-0a1b2c3d"}'}
                ],
            },
        ],
        "tools": [
            {"name": "ec2", "description": "describe i-1234567890abcdef0", "input_schema": {"type": "object"}}
        ],
        **extra,
    }


def test_anthropic_request_is_masked_value_by_value(masker: Masker) -> None:
    req = _request()
    body, result = mask_request(json.dumps(req).encode(), masker)
    doc = json.loads(body)  # still valid JSON
    text = json.dumps(doc)
    assert "i-1234567890abcdef0" not in doc["model"]  # an identifier in the model is masked too
    assert (
        doc["messages"][0]["content"][1]["source"]["data"]
        == req["messages"][0]["content"][1]["source"]["data"]
    )
    assert doc["messages"][1]["content"][0]["signature"] == "sig10.0.1.100"
    for original in (*ORIGINALS, "123456789012", "vpc-0a1b2c3d"):
        masked_strings = text.replace(req["messages"][0]["content"][1]["source"]["data"], "").replace(
            "sig10.0.1.100", ""
        )
        assert original not in masked_strings
    tool_input = doc["messages"][1]["content"][1]["input"]
    assert list(tool_input) == [next(iter(tool_input))] and TOKEN_RE.fullmatch(next(iter(tool_input)))
    assert result.counts["ec2"] == 5  # model, prompt, tool_use key, tool description... every occurrence
    assert json.loads(restore_json_text(body.decode(), result.tokens)[0]) == req


def test_non_json_text_is_masked_as_text(masker: Masker) -> None:
    body, result = mask_request(PROMPT.encode(), masker)
    assert all(o not in body.decode() for o in ORIGINALS)
    assert result.total == 4


@pytest.mark.parametrize(
    "raw",
    [
        '{"messages": [{"content": "EC2 i-1234567890abcdef0 at 10.0.1.100"}]',  # truncated JSON
        '{"a": "\\ni-1234567890abcdef0 \\t10.0.1.100",}',  # trailing comma
        '[1, 2, "10.0.1.100" NaN-garbage',
    ],
)
def test_invalid_json_is_masked_as_text_never_passed_through(raw: str, masker: Masker) -> None:
    body, result = mask_request(raw.encode(), masker)
    out = body.decode()
    assert "10.0.1.100" not in out
    assert "i-1234567890abcdef0" not in out
    assert result.total >= 1


def test_nan_json_is_masked_as_text(masker: Masker) -> None:
    body, _ = mask_request(b'{"x": NaN, "ip": "10.0.1.100"}', masker)
    assert b"10.0.1.100" not in body


def test_non_utf8_body_is_refused_with_a_clear_error(masker: Masker) -> None:
    with pytest.raises(InvalidEncodingError) as exc:
        mask_request(b'{"text": "10.0.1.100 \xff\xfe"}', masker)
    assert "not valid UTF-8" in exc.value.message
    assert "10.0.1.100" not in exc.value.message
    assert exc.value.status == 400


def test_deeply_nested_json_finishes_and_is_masked(masker: Masker) -> None:
    depth = 100_000
    raw = "[" * depth + '"10.0.1.100"' + "]" * depth
    body, result = mask_request(raw.encode(), masker)  # too deep for json: masked as text
    assert b"10.0.1.100" not in body
    assert result.total == 1
    nested = '{"a":' * 500 + '"10.0.1.100"' + "}" * 500  # parses: masked as JSON
    body, _ = mask_request(nested.encode(), masker)
    assert b"10.0.1.100" not in body and json.loads(body)


def test_empty_body_passes(masker: Masker) -> None:
    assert mask_request(b"", masker)[0] == b""


def test_structured_json_values_are_masked_with_their_key_as_context(masker: Masker) -> None:
    """Key-dependent rules see the key of a JSON value (tool inputs, piped CLI output)."""
    doc = {
        "OwnerId": "123456789012",
        "Bucket": "acme-data-prod",
        "AccountId": 210987654321,
        "ReadReplicaDBInstanceIdentifiers": ["orders-db-2"],
        "SecretAccessKey": "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
        "Count": 123456789013,  # a number that is not an account ID: no key says so
        "Name": "acme-data-prod-2",  # not a bucket key: left alone
    }
    body, result = mask_request(json.dumps(doc).encode(), masker)
    out = json.loads(body)
    for key in ("OwnerId", "Bucket", "AccountId", "SecretAccessKey"):
        assert TOKEN_RE.fullmatch(out[key]), key
    assert TOKEN_RE.fullmatch(out["ReadReplicaDBInstanceIdentifiers"][0])
    assert out["Count"] == 123456789013 and out["Name"] == "acme-data-prod-2"
    assert result.counts == {"account": 2, "s3": 1, "rds": 1, "credentials": 1}
