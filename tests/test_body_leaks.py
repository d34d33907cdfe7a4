"""Ways around the request-body mask (issue #10), closed: escaped JSON, JSON the strict parser
refuses, duplicate keys, exempt shapes out of place, UTF-16/32, split text, numbers, and the JSON path
reaching the text path's verdicts. tests/gateway/test_gateway_body_leaks.py sends the same through
the gateway."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import BinaryDocumentError, InvalidEncodingError, OpaqueDataError
from aws_masker.restore import restore_json_text, restore_text

SECRET = "leak-test-secret-0123"
ACCOUNT = "483920175526"
RDS = "orders-prod-db-1"
SECRET_KEY = "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq"
EC2 = "i-0123456789abcdef0"
ORIGINALS = (ACCOUNT, RDS, SECRET_KEY, EC2)
# a CloudWatch Logs / SQS style record: JSON inside a string
RECORD = json.dumps({"OwnerId": ACCOUNT, "DBInstanceIdentifier": RDS, "SecretAccessKey": SECRET_KEY})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))


def unescape(text: str) -> str:
    return _ESCAPE.sub(
        lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" and len(m[1]) == 5 else _SIMPLE.get(m[1], m[1]),
        text,
    )


def leaked(out: bytes, originals: tuple[str, ...] = ORIGINALS) -> list[str]:
    """The originals found in ``out`` as it is or with its escapes undone, level after level."""
    text = out.decode("utf-8", "surrogatepass")
    forms = [text]
    for _ in range(4):
        forms.append(unescape(forms[-1]))
    return [o for o in originals if any(o in form for form in forms)]


def request(*content: object, **extra: object) -> bytes:
    body = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": list(content)}]}
    body.update(extra)
    return json.dumps(body).encode()


# -- 1. escaped JSON inside a string ----------------------------------------------------------------


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_escaped_json_in_a_string_is_masked_as_text_and_as_json(masker: Masker, levels: int) -> None:
    inner = RECORD
    for _ in range(levels):
        inner = json.dumps({"message": inner})
    as_text = inner.encode()
    out, _ = mask_request(as_text, masker)  # a bare body: JSON
    assert leaked(out) == []
    out, _ = mask_request(b"pasted: " + as_text, masker)  # text
    assert leaked(out) == []
    out, _ = mask_request(request({"type": "text", "text": inner}), masker)
    assert leaked(out) == []
    tool_result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": inner}
    out, _ = mask_request(request(tool_result), masker)
    assert leaked(out) == []


def test_slash_and_unicode_escapes_do_not_hide_keys_or_values(masker: Masker) -> None:
    text = (
        '{"message":"{\\"Owner\\u0049d\\": \\"483920175526\\", \\"url\\": \\"s3:\\/\\/acme-prod-data\\/k\\", '
        '\\"id\\": \\"\\u0069-0123456789abcdef0\\"}"}'
    )
    for body in (text.encode(), b"log: " + text.encode()):
        out, result = mask_request(body, masker)
        assert leaked(out, (ACCOUNT, "acme-prod-data", EC2)) == []
        assert set(result.tokens.values()) >= {ACCOUNT, "acme-prod-data", EC2}


def test_an_escaped_record_restores_to_what_was_sent(masker: Masker) -> None:
    body = request({"type": "text", "text": json.dumps({"message": RECORD})})
    out, result = mask_request(body, masker)
    restored = restore_json_text(out.decode(), result.tokens)[0]
    assert json.loads(restored) == json.loads(body)


# -- 2. valid JSON the strict parser refused ---------------------------------------------------------

# every body carries an escaped EC2 ID and an account under an escaped key: the text path missed both
HIDDEN = '"note": "\\u0069-0123456789abcdef0", "Owner\\u0049d": "483920175526"'


@pytest.mark.parametrize(
    "body",
    [
        "{" + HIDDEN + ', "n": 1e400}',
        "{" + HIDDEN + ', "n": ' + "7" * 5000 + "}",
        '{"deep": ' + "[" * 1500 + "{" + HIDDEN + "}" + "]" * 1500 + "}",
        "{" + HIDDEN + ', "a": NaN, "b": Infinity, "c": -Infinity}',
        "\ufeff\ufeff{" + HIDDEN + "}",
        '{"s": "\\ud83d", ' + HIDDEN + ', "t": "\\udc00x"}',
    ],
    ids=["1e400", "5000-digits", "depth-1500", "nan-infinity", "two-boms", "lone-surrogates"],
)
def test_lenient_json_gets_the_json_treatment(masker: Masker, body: str) -> None:
    raw = body.encode("utf-8")
    out, result = mask_request(raw, masker)
    assert leaked(out, (ACCOUNT, EC2)) == []
    assert result.counts["account"] == 1 and result.counts["ec2"] == 1
    # nothing changed but the two literals
    rest = re.sub(rb'"AWS_[A-Za-z0-9_]+"', b"", out)
    assert rest == raw.replace(b'"\\u0069-0123456789abcdef0"', b"").replace(b'"483920175526"', b"")


def test_numbers_and_formatting_are_kept_as_written(masker: Masker) -> None:
    raw = b'{\n  "a": [1, 2.50, 1e3, -0.0, 1E+2],\n  "ip":   "10.0.1.100"\n}\n'
    out, _ = mask_request(raw, masker)
    assert out.startswith(b'{\n  "a": [1, 2.50, 1e3, -0.0, 1E+2],\n  "ip":   "AWS_') and out.endswith(
        b'"\n}\n'
    )


# -- 3. duplicate keys ----------------------------------------------------------------------------------


def test_every_copy_of_a_duplicate_key_is_masked(masker: Masker) -> None:
    first = json.dumps([{"role": "user", "content": f"{EC2} in account {ACCOUNT}"}])
    raw = (
        '{"model": "m", "messages": ' + first + ', "messages": [{"role": "user", "content": "hello"}]}'
    ).encode()
    out, result = mask_request(raw, masker)
    assert leaked(out) == []
    assert result.total == 2 and b'"content": "hello"' in out


# -- 4. exempt shapes only where the API puts them ------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PNG = b"\x89PNG\r\n\x1a\n\x00"  # a PNG's signature (and a byte: 12 base64 characters, no padding)


def test_exempt_shapes_inside_tool_input_are_masked(masker: Masker) -> None:
    tool_input = {
        "source": {"type": "base64", "media_type": "image/png", "data": SECRET_KEY},
        "block": {"type": "thinking", "thinking": "x", "signature": SECRET_KEY},
        "content": [{"type": "redacted_thinking", "data": SECRET_KEY}],
        "model": "account " + ACCOUNT,
    }
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "n", "input": tool_input}],
            }
        ],
    }
    # the key gives a secret key its context (the rule needs it): name it in the tool input too
    raw = json.dumps(body).replace('"x"', '"SecretAccessKey ' + SECRET_KEY + '"').encode()
    out, _ = mask_request(raw, masker)
    assert leaked(out, (ACCOUNT, SECRET_KEY)) == []


def test_exemptions_hold_only_for_values_that_are_what_they_claim(masker: Masker) -> None:
    image = _b64(PNG + b"raw bytes")
    signature = _b64(b"s" * 90)
    raw = request(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
        system=[{"type": "text", "text": "hi"}],
    )
    out, _ = mask_request(raw, masker)
    assert image in out.decode()
    raw = request(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": f"{EC2} not b64"}}
    )
    with pytest.raises(OpaqueDataError):  # not base64: refused (tests/test_body_adversarial.py)
        mask_request(raw, masker)
    thinking = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": signature},
            {"type": "thinking", "thinking": "t", "signature": f"sig {EC2}"},
            {"type": "redacted_thinking", "data": f"{EC2} 10.0.1.100"},
        ],
    }
    raw = json.dumps({"model": "m", "messages": [thinking]}).encode()
    out, _ = mask_request(raw, masker)
    assert signature in out.decode() and leaked(out, (EC2, "10.0.1.100")) == []


def test_text_documents_are_masked_and_binary_ones_pass_or_are_refused(masker: Masker) -> None:
    text_doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "text/plain", "data": _b64(RECORD.encode())},
    }
    plain_doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": RECORD}}
    raw = request(text_doc, plain_doc)
    out, result = mask_request(raw, masker)
    sent = json.loads(out)["messages"][0]["content"]
    decoded = base64.b64decode(sent[0]["source"]["data"]).decode()
    assert leaked(decoded.encode()) == [] and leaked(out) == []
    assert restore_json_text(decoded, result.tokens)[0] == RECORD
    pdf = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": _b64(b"%PDF-1.7")},
    }
    raw = request(pdf)
    assert mask_request(raw, masker)[0] == raw  # passes, as documented
    strict = Masker(MaskerConfig(token_secret=SECRET, refuse_binary_documents=True))
    with pytest.raises(BinaryDocumentError) as refused:
        mask_request(raw, strict)
    assert refused.value.code == "2006" and 400 <= refused.value.status < 500
    assert mask_request(request({"type": "text", "text": "hi"}), strict)[1].total == 0


# -- 5. UTF-16 / UTF-32 without a BOM --------------------------------------------------------------


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_bodies_are_refused(masker: Masker, codec: str) -> None:
    raw = json.dumps({"messages": [{"role": "user", "content": f"{EC2}"}]}).encode(codec)
    with pytest.raises(InvalidEncodingError) as refused:
        mask_request(raw, masker)
    assert refused.value.code == "2004" and refused.value.status == 400
    assert EC2 not in refused.value.message


# -- 6. an identifier split across adjacent text ----------------------------------------------------


@pytest.mark.parametrize("as_blocks", [True, False])
def test_an_identifier_split_across_adjacent_text_is_masked(masker: Masker, as_blocks: bool) -> None:
    parts = ["Instance i-0123456789", "abcdef0 is down"]
    content = [{"type": "text", "text": p} for p in parts] if as_blocks else parts
    out, result = mask_request(request(*content), masker)
    assert leaked(out, (EC2, "i-0123456789", "abcdef0")) == []
    sent = json.loads(out)["messages"][0]["content"]
    texts = [b["text"] for b in sent] if as_blocks else sent
    assert restore_json_text("".join(texts), result.tokens)[0] == "".join(parts)


# -- 7. account IDs written as numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["483920175526", "483920175526.0", "4.83920175526e11", '"4.83920175526E+11"']
)
def test_account_numbers_are_masked_however_written(masker: Masker, written: str) -> None:
    raw = ('{"OwnerId": ' + written + ', "Count": 483920175526.5}').encode()
    out, result = mask_request(raw, masker)
    assert result.counts["account"] == 1
    doc = json.loads(out)
    assert doc["OwnerId"].startswith("AWS_ACCOUNT_") and b"483920175526.5" in out


# -- 8. the JSON path reaches the text path's verdicts ----------------------------------------------

CORPUS = Path(__file__).parent / "corpus"
_DOC_START = re.compile(r"^[\[{]", re.M)
_WORD = re.compile(r"[A-Za-z0-9_./:+=-]{3,}")


def _json_documents() -> list[tuple[str, str]]:
    decoder = json.JSONDecoder()
    found = []
    for path in sorted(CORPUS.rglob("*.txt")):
        text = path.read_text()
        pos = 0
        while (m := _DOC_START.search(text, pos)) is not None:
            try:
                _, end = decoder.raw_decode(text, m.start())
            except ValueError:
                pos = m.end()
                continue
            found.append((f"{path.name}@{m.start()}", text[m.start() : end]))
            pos = end
    return found


DOCUMENTS = _json_documents()


def test_the_corpus_has_json_documents() -> None:
    assert len(DOCUMENTS) >= 30


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_a_json_document_is_masked_alike_as_text_and_as_a_body(masker: Masker, name: str, doc: str) -> None:
    as_text, _ = masker.mask_text(doc)
    as_body, _ = mask_request(doc.encode(), masker)
    words = set(_WORD.findall(doc))
    survive_text = {w for w in words if w in as_text}
    survive_body = {w for w in words if w in as_body.decode()}
    assert survive_text == survive_body, f"{name}: verdicts differ"


def test_repeated_values_are_each_masked_and_counted(masker: Masker) -> None:
    raw = json.dumps(
        {"ips": ["10.0.1.100"] * 3, "more": [{"ip": "10.0.1.100"}, {"ip": "10.0.1.100"}]}
    ).encode()
    out, result = mask_request(raw, masker)
    assert b"10.0.1.100" not in out and result.counts["private_ip"] == 5


def test_split_identifiers_are_joined_in_system_and_tool_result_content(masker: Masker) -> None:
    halves = [{"type": "text", "text": "Instance i-0123456789"}, {"type": "text", "text": "abcdef0 is down"}]
    tool_result = {"type": "tool_result", "tool_use_id": "t", "content": halves}
    out, _ = mask_request(request(tool_result, system=halves), masker)
    assert leaked(out, (EC2, "i-0123456789", "abcdef0")) == []


def test_a_split_identifier_written_with_escapes_is_masked_in_the_first_block(masker: Masker) -> None:
    # the first half ends in "\u0036" as text (JSON in the block): its text is not its value, so the
    # blocks cannot be cut where they were; the whole masked text goes into the first
    parts = ["id i-012345\\u00367", "89abcdef0 down"]
    out, result = mask_request(request(*({"type": "text", "text": p} for p in parts)), masker)
    sent = [b["text"] for b in json.loads(out)["messages"][0]["content"]]
    assert leaked(out, (EC2, "89abcdef0")) == [] and result.counts["ec2"] == 1
    assert sent[1] == "" and sent[0].endswith(" down")


def test_identifiers_written_as_opaque_data_are_masked_and_real_data_is_not_touched(masker: Masker) -> None:
    image, signature = _b64(PNG + bytes(range(256)) * 40), _b64(bytes(range(200)))
    access_key = "AKIA" + "Q7XM2PLK4RN8VB3D"
    written = _b64(PNG) + f"abc/{access_key}/def"  # a genuine header, the key written into the base64
    thinking = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "t", "signature": signature},
            {"type": "thinking", "thinking": "t", "signature": f"abc/{access_key}/def"},
            {"type": "redacted_thinking", "data": f"xyz+{access_key}+0"},
        ],
    }
    user = {
        "role": "user",
        "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": written}},
        ],
    }
    raw = json.dumps({"model": "m", "messages": [thinking, user]}).encode()
    out, result = mask_request(raw, masker)
    assert leaked(out, (access_key,)) == [] and result.total == 3
    assert image in out.decode() and signature in out.decode()


def test_an_identifier_that_ends_where_its_block_ends_is_masked_though_the_next_block_goes_on(
    masker: Masker,
) -> None:
    # joined, "…amazonaws.com" + "role …" reads "…amazonaws.comrole" and "i-…0" + "1 y" an 18-digit
    # id: neither is an identifier, but each block on its own ends with one (the model may read either)
    blocks = [
        "acme.logs.s3.eu-west-1.amazonaws.com",
        "role arn:aws:iam::123456789012:role/Admin.",
        "x i-0123456789abcdef0",
        "1 y",
    ]
    out, result = mask_request(request(*({"type": "text", "text": b} for b in blocks)), masker)
    assert leaked(out, ("acme.logs", EC2, "123456789012")) == []
    assert (result.counts["s3"], result.counts["ec2"], result.counts["arn"]) == (1, 1, 1)
    sent = [b["text"] for b in json.loads(out)["messages"][0]["content"]]
    assert restore_text("".join(sent), result.tokens)[0] == "".join(blocks)
