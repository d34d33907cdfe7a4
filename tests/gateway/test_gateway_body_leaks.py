"""The request-body leaks of issue #10 through the local gateway and the real aws-masker plugin server:
what the recording upstream sees, in every decoded form, and what the client gets back."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator

import pytest
from gateway_harness import AWS_MASKER_ENV, GatewayHarness, kong_yml, route

pytestmark = pytest.mark.e2e

MASKER = '{name: aws-masker, config: {token_secret: "gateway-leak-secret-0123"}}'
STRICT = (
    '{name: aws-masker, config: {token_secret: "gateway-leak-secret-0123", refuse_binary_documents: true}}'
)
RESTORE = "{name: aws-masker-restore}"
JSON_ANSWER = {"X-Test-Content-Type": "application/json", "Content-Type": "application/json"}

ACCOUNT = "483920175526"
RDS = "orders-prod-db-1"
SECRET_KEY = "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq"
EC2 = "i-0123456789abcdef0"
RECORD = json.dumps({"OwnerId": ACCOUNT, "DBInstanceIdentifier": RDS, "SecretAccessKey": SECRET_KEY})


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayHarness]:
    harness = GatewayHarness(
        kong_yml(
            route("m", "/v1/messages", MASKER, RESTORE, extra="response_buffering: false"),
            route("strict", "/strict", STRICT, RESTORE),
        ),
        env=AWS_MASKER_ENV,
    )
    try:
        yield harness
    finally:
        harness.stop()


_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def decoded_forms(raw: bytes) -> list[str]:
    """``raw`` as UTF-8, UTF-16 and UTF-32, each with JSON escapes undone level after level, and the
    base64 runs of each decoded."""
    forms = []
    for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        text = raw.decode(codec, "ignore")
        for _ in range(5):
            forms.append(text)
            forms.extend(
                base64.b64decode(run[: len(run) // 4 * 4]).decode("utf-8", "ignore")
                for run in _BASE64.findall(text.replace("=", ""))
            )
            text = text.encode("utf-8", "surrogatepass").decode("unicode_escape", "ignore")
    return forms


def upstream_leaks(gw: GatewayHarness, before: int, originals: tuple[str, ...]) -> list[str]:
    seen = gw.upstream.requests[before:]
    return [o for r in seen for form in decoded_forms(r.body) for o in originals if o in form]


def send(gw: GatewayHarness, body: bytes, path: str = "/v1/messages") -> tuple[int, bytes, int]:
    before = len(gw.upstream.requests)
    res = gw.request("POST", path, body, JSON_ANSWER)
    return res.status, res.body, before


def messages(*content: object) -> bytes:
    return json.dumps(
        {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": list(content)}]}
    ).encode()


ESCAPED_TWICE = json.dumps({"message": json.dumps({"message": RECORD})})
HIDDEN = '"note": "\\u0069-0123456789abcdef0", "Owner\\u0049d": "483920175526"'
CASES = {
    "escaped-json-text": messages({"type": "text", "text": ESCAPED_TWICE}),
    "escaped-json-tool-result": messages(
        {"type": "tool_result", "tool_use_id": "t", "content": ESCAPED_TWICE}
    ),
    "escaped-json-bare": ESCAPED_TWICE.encode(),
    "1e400": ("{" + HIDDEN + ', "n": 1e400}').encode(),
    "nan": ("{" + HIDDEN + ', "n": NaN, "i": -Infinity}').encode(),
    "deep": ('{"d": ' + "[" * 1500 + "{" + HIDDEN + "}" + "]" * 1500 + "}").encode(),
    "boms": ("\ufeff\ufeff{" + HIDDEN + "}").encode(),
    "duplicate-keys": (
        '{"model": "m", "messages": [{"role": "user", "content": "' + EC2 + " in account " + ACCOUNT + '"}],'
        ' "messages": [{"role": "user", "content": "hello"}]}'
    ).encode(),
    "tool-input-shapes": json.dumps(
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "t",
                            "name": "n",
                            "input": {
                                "source": {"type": "base64", "media_type": "image/png", "data": EC2},
                                "b": {"type": "thinking", "thinking": "x", "signature": RECORD},
                            },
                        }
                    ],
                }
            ],
        }
    ).encode(),
    "text-document": messages(
        {
            "type": "document",
            "source": {
                "type": "base64",
                "media_type": "text/plain",
                "data": base64.b64encode(RECORD.encode()).decode(),
            },
        }
    ),
    "split-blocks": messages(
        {"type": "text", "text": "Instance i-0123456789"}, {"type": "text", "text": "abcdef0 down"}
    ),
    "float-account": b'{"OwnerId": 4.83920175526e11, "AccountId": 483920175526.0}',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_original_reaches_the_upstream(
    gw: GatewayHarness, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, answer, before = send(gw, CASES[name])
    assert status == 200
    originals = (ACCOUNT, RDS, SECRET_KEY, EC2, "i-0123456789", "abcdef0")
    assert upstream_leaks(gw, before, originals) == []
    assert not [o for o in originals if o in caplog.text]
    # the answer (the upstream echoes what it got) comes back with the originals restored
    if name not in ("text-document", "split-blocks", "float-account"):
        assert any(o in form for form in decoded_forms(answer) for o in originals)


def test_the_bare_json_list_objects_name_is_masked(gw: GatewayHarness) -> None:
    body = b'{"Contents": [{"Key": "a.txt", "Size": 1}], "Name": "acmeprod", "Prefix": "", "MaxKeys": 1000}'
    status, _, before = send(gw, body)
    assert status == 200 and upstream_leaks(gw, before, ("acmeprod",)) == []


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-32-be"])
def test_utf16_and_utf32_are_refused(gw: GatewayHarness, codec: str) -> None:
    status, answer, before = send(gw, messages(f"instance {EC2}").decode().encode(codec))
    assert status == 400 and json.loads(answer)["error"] == "AWS_MASKER_2004"
    assert len(gw.upstream.requests) == before


def test_binary_documents_pass_or_are_refused(gw: GatewayHarness) -> None:
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="},
    }
    body = messages(pdf, {"type": "text", "text": f"see {EC2}"})
    status, _, before = send(gw, body)
    assert status == 200 and upstream_leaks(gw, before, (EC2,)) == []
    assert b"JVBERg==" in gw.upstream.requests[-1].body
    status, answer, before = send(gw, body, "/strict")
    assert status == 415 and json.loads(answer)["error"] == "AWS_MASKER_2006"
    assert len(gw.upstream.requests) == before
