"""An eighth review of the request body and its encodings: terminal colour codes around and inside
identifiers, escapes of punctuation glued before an identifier (%22, \\x22, \\042), percent-encoded UTF-8,
Windows and UNC paths that are no escapes, argument lists whose flag and value are separate items,
keys spelled in other cases or with their words apart, text/plain documents in another charset, and
a base64 field with a character outside ASCII. Each either masks the identifier or refuses the
request. Failures name categories, never the identifiers: assertions are not rewritten
(PYTEST_DONT_REWRITE)."""

from __future__ import annotations

import base64
import json

import pytest
from leaks import find_leaks

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import InvalidEncodingError, MaskerError, OpaqueDataError
from aws_masker.restore import restore_text

ACCOUNT = "483920175526"
EC2 = "i-0abcdef1234567890"
KEY_ID = "AKIAZ7Q3MPLX4RT2VW8N"
SECRET_KEY = "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq"  # (tests/stack/secrets.py: a known fake)
BUCKET = "acme-prod-invoices-eu1"
DB = "orders-prod-db-1"
IP = "172.31.5.20"
NAMES = {
    ACCOUNT: "account",
    EC2: "ec2",
    KEY_ID: "key",
    SECRET_KEY: "secret",
    BUCKET: "s3",
    DB: "rds",
    IP: "ip",
}


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret="review8-secret"))


def request(content: object) -> bytes:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    return json.dumps(body).encode()


def leaked(masker: Masker, body: bytes) -> list[str]:
    out, _ = mask_request(body, masker)
    return sorted({NAMES[leak.original] for leak in find_leaks(tuple(NAMES), {"out": out})})


def text_leaked(masker: Masker, text: str, exact: bool = True) -> list[str]:
    """Which originals pass in ``text`` masked (and, when ``exact``, the restore gives ``text`` back:
    not where codes stand inside an identifier, whose token stands for the identifier alone)."""
    masked, result = masker.mask_text(text)
    if exact:
        assert restore_text(masked, result.tokens)[0] == text
    return sorted(name for value, name in NAMES.items() if value in masked)


@pytest.mark.parametrize(
    "text",
    [
        f"instance \x1b[32m{EC2}\x1b[0m running",
        f"{EC2[:6]}\x1b[01;31m\x1b[K{EC2[6:12]}\x1b[m\x1b[K{EC2[12:]}",  # grep --color inside it
        f'{{\n  \x1b[1;34m"OwnerId"\x1b[0m: \x1b[0;32m"{ACCOUNT}"\x1b[0m\n}}',  # jq -C
        f'  \x1b[32m+\x1b[0m identifier = \x1b[0m\x1b[0m"{DB}"',  # terraform plan
        f"^[[32m{EC2}^[[0m",  # a pager without -R
        f"\x1b]8;;https://console.example\x07link\x1b]8;;\x07 {IP}",  # a hyperlink
    ],
)
def test_terminal_codes(masker: Masker, text: str) -> None:
    assert text_leaked(masker, text, exact=any(value in text for value in NAMES)) == []
    assert leaked(masker, request([{"type": "tool_result", "tool_use_id": "t", "content": text}])) == []


@pytest.mark.parametrize(
    "text",
    [
        f"?f=%22arn:aws:iam::{ACCOUNT}:role/Admin%22",
        f"k=%22{KEY_ID}%22&x=%27{EC2}%27",
        f"?q=%7B%22OwnerId%22%3A%22{ACCOUNT}%22%7D",
        f'"GET /?id=\\x22{EC2}\\x22 HTTP/1.1" 200',  # nginx writes a quote so
        f"\\042{EC2}\\042",
        f"{EC2[:8]}%E2%80%8B{EC2[8:]}",  # a zero-width space, percent-encoded
        f"%EF%BD%89{EC2[1:]}",  # a fullwidth i
        f"%3C{IP}%3E %5B{KEY_ID}%5D",
    ],
)
def test_escapes_of_punctuation_before_an_identifier(masker: Masker, text: str) -> None:
    # (an escape inside an identifier is part of it: its token stands for the identifier decoded)
    assert text_leaked(masker, text, exact=any(value in text for value in NAMES)) == []
    assert leaked(masker, request(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        f"\\\\{IP}\\share\\reports",
        f"C:\\keys\\{KEY_ID}.csv",
        f"C:\\logs\\arn:aws:iam::{ACCOUNT}:role/x",
        f"D:\\images\\ami-0abcdef1234567890\\ and {EC2}",
    ],
)
def test_windows_paths_are_no_escapes(masker: Masker, text: str) -> None:
    assert text_leaked(masker, text) == []
    assert leaked(masker, request(text)) == []
    masked, _ = masker.mask_text(text)
    assert "\\AWS_" in masked or "\\\\AWS_" in masked


@pytest.mark.parametrize(
    ("command", "value"),
    [
        (["aws", "configure", "set", "aws_secret_access_key", SECRET_KEY], SECRET_KEY),
        (["aws", "ec2", "describe-images", "--owners", ACCOUNT], ACCOUNT),
        (["aws", "s3api", "get-bucket-policy", "--bucket", BUCKET], BUCKET),
        (["aws", "rds", "reboot-db-instance", "--db-instance-identifier", DB], DB),
    ],
)
def test_argument_lists(masker: Masker, command: list[str], value: str) -> None:
    for input_ in ({"command": command}, {"containerOverrides": [{"command": command}]}):
        body = {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "b", "input": input_}],
                }
            ],
        }
        out = mask_request(json.dumps(body).encode(), masker)[0].decode()
        assert value not in out


def test_argument_lists_of_plain_words_stay(masker: Masker) -> None:
    command = ["python", "main.py", "--verbose", "hello-world", "--name", "demo"]
    body = request([{"type": "tool_result", "tool_use_id": "t", "content": json.dumps(command)}])
    out, result = mask_request(body, masker)
    assert result.total == 0 and out == body


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("recipientaccountid", ACCOUNT),
        ("ownerid", ACCOUNT),
        ("OWNERID", ACCOUNT),
        ("Owner-Id", ACCOUNT),
        ("awsaccountid", ACCOUNT),
        ("Account ID", ACCOUNT),
        ("cloud.account.id", ACCOUNT),
        ("ACCOUNT_NUMBER", ACCOUNT),
        ("bucketname", BUCKET),
        ("S3BUCKET", BUCKET),
        ("dbinstanceidentifier", DB),
        ("DB_INSTANCE_ID", DB),
        ("SECRETACCESSKEY", SECRET_KEY),
        ("secretaccesskey", SECRET_KEY),
    ],
)
def test_keys_in_other_spellings(masker: Masker, key: str, value: str) -> None:
    assert text_leaked(masker, json.dumps({key: value})) == []
    assert text_leaked(masker, f"{key}: {value}\n") == []
    assert text_leaked(masker, f"{key}={value}\n") == []
    assert (
        leaked(masker, request([{"type": "tool_use", "id": "t", "name": "q", "input": {key: value}}])) == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "Use the Owner-Id header: see the docs.",
        "the account id and the bucket name are in the table",
        '{"session token": "short"}',
    ],
)
def test_other_spellings_without_values_stay(masker: Masker, text: str) -> None:
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)


def _document(media_type: str, data: bytes) -> bytes:
    source = {"type": "base64", "media_type": media_type, "data": base64.b64encode(data).decode()}
    return request([{"type": "document", "source": source}])


@pytest.mark.parametrize(
    ("media_type", "data"),
    [
        ("text/plain; charset=utf-16le", f"instance {EC2}".encode("utf-16le")),
        ("text/plain", f"instance {EC2}".encode("utf-16le")),  # NULs between the letters
        ("text/plain; charset=latin-1", f"instance {EC2}".encode("latin-1")),
    ],
)
def test_documents_not_in_utf8_are_refused(masker: Masker, media_type: str, data: bytes) -> None:
    with pytest.raises(InvalidEncodingError):
        mask_request(_document(media_type, data), masker)


def test_a_utf8_document_with_its_charset_is_masked(masker: Masker) -> None:
    out, result = mask_request(_document("text/plain; charset=UTF-8", f"instance {EC2}".encode()), masker)
    assert (
        result.total == 1
        and EC2
        not in base64.b64decode(json.loads(out)["messages"][0]["content"][0]["source"]["data"]).decode()
    )


@pytest.mark.parametrize("media_type", ["image/png", "application/pdf", "text/plain"])
@pytest.mark.parametrize("char", ["\u00e9", "\u00a0", "\u2028"])
def test_base64_with_a_character_outside_ascii_is_refused_as_bad_data(
    masker: Masker, media_type: str, char: str
) -> None:
    kind = "image" if media_type.startswith("image") else "document"
    source = {"type": "base64", "media_type": media_type, "data": "iVBORw0KGgo" + char}
    with pytest.raises(MaskerError) as caught:
        mask_request(request([{"type": kind, "source": source}]), masker)
    assert isinstance(caught.value, (OpaqueDataError, InvalidEncodingError))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "content",
    [
        "caf\\u00e9 \\/x i-0abcdef1234567890 \\t end",  # escapes json.dumps would not write
        "i\\u002d0abcdef1234567890 \\ud83d\\ude00 and \\u0031\\u0030.0.3.7",  # some inside identifiers
        '{\\"OwnerId\\": \\"483920175526\\", \\"note\\": \\"\\u00fcber\\"}',
    ],
)
def test_a_masked_string_keeps_the_clients_escapes(masker: Masker, content: str) -> None:
    body = ('{"model":"m","messages":[{"role":"user","content":"' + content + '"}]}').encode()
    out, result = mask_request(body, masker)
    assert result.total >= 1
    text = out.decode()
    for escape in ("\\u00e9", "\\/", "\\t", "\\ud83d\\ude00", "\\u00fcber", '\\"note\\"'):
        assert (escape in content) == (escape in text)
    assert leaked(masker, body) == []


@pytest.mark.parametrize("coding", ["plain", "gzip"])
def test_names_found_in_clear_are_masked_inside_base64(masker: Masker, coding: str) -> None:
    import gzip

    line = f"login ok secret={SECRET_KEY} bucket {BUCKET} db {DB}".encode()
    data = gzip.compress(line) if coding == "gzip" else line
    text = (
        f"aws_secret_access_key = {SECRET_KEY}\nBucket: {BUCKET}\nDBInstanceIdentifier: {DB}\n"
        f"payload: {base64.b64encode(data).decode()}\n"
    )
    # (the restore gives back text, not what the model never reads: base64 stays masked)
    assert text_leaked(masker, text, exact=False) == []
    assert leaked(masker, request(text)) == []


def test_an_underscore_ends_a_bucket_or_db_name(masker: Masker) -> None:
    text = (
        f'{{"Bucket": "{BUCKET}", "DBInstanceIdentifier": "{DB}"}}\n'
        f"cp backup_{BUCKET}_2024.tar.gz {DB}_dump.sql /tmp\n"
    )
    assert text_leaked(masker, text) == []


@pytest.mark.parametrize(
    "text",
    [
        f"The secret key is {SECRET_KEY} and the key id {KEY_ID}",
        f"{KEY_ID} / {SECRET_KEY}",
        f"I rotated the secret to {SECRET_KEY} yesterday",
        f"Secret access key: `{SECRET_KEY}`",
    ],
)
def test_secret_keys_in_prose(masker: Masker, text: str) -> None:
    assert text_leaked(masker, text) == []
    assert leaked(masker, request(text)) == []


def test_hashes_after_secret_stay(masker: Masker) -> None:
    text = "the secret is 0123456789abcdef0123456789abcdef01234567; a secret of the trade"
    masked, result = masker.mask_text(text)
    assert (masked, result.total) == (text, 0)
