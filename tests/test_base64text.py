"""Base64 inside text (base64text.py and the engine's use of it): found in every way it is written,
masked inside and written back the same way; binary runs with an identifier masked whole; ordinary text
left alone."""

from __future__ import annotations

import base64
import gzip
import json
import random
import zlib

import brotli
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from leaks import find_leaks

from aws_masker import base64text
from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import BodyTooLargeError, MaskerError
from aws_masker.patterns import RULES
from aws_masker.restore import restore_text

SECRET = "base64-test-secret-0123456789abcdef"  # (the samples' Masker; tests use conftest's)
EC2 = "i-0123456789abcdef0"
ACCOUNT = "483920175526"
BUCKET = "acme-prod-secrets-7731"
IP = "10.0.3.7"
ORIGINALS = (EC2, ACCOUNT, BUCKET, IP)
TEXT = f"instance {EC2} owner OwnerId: {ACCOUNT} bucket s3://{BUCKET}/app.env ip {IP}\n"


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _wrapped(coded: str, width: int, breaker: str) -> str:
    return breaker.join(coded[i : i + width] for i in range(0, len(coded), width))


def _url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


FORMS = {
    "standard": lambda t: _b64(t.encode()),
    "unpadded": lambda t: _b64(t.encode()).rstrip("="),
    "urlsafe": lambda t: _url(t.encode()),
    "gzip": lambda t: _b64(gzip.compress(t.encode())),
    "zlib": lambda t: _b64(zlib.compress(t.encode())),
    "raw deflate": lambda t: _b64(_deflate(t.encode())),
    "brotli": lambda t: _b64(brotli.compress(t.encode())),
    "wrapped at 76": lambda t: base64.encodebytes(t.encode()).decode(),
    "wrapped at 64, CRLF": lambda t: _wrapped(_b64(t.encode()), 64, "\r\n"),
    "glued to letters": lambda t: "xyz" + _b64(t.encode()),
    "data URL": lambda t: "data:text/plain;base64," + _b64(t.encode()),
    "JWT payload": lambda t: "eyJhbGciOiJIUzI1NiJ9." + _url(json.dumps({"note": t}).encode()) + ".c2ln",
    "twice": lambda t: _b64(_b64(t.encode()).encode()),
    "gzip of base64": lambda t: _b64(gzip.compress(_b64(t.encode()).encode())),
}


# ---- finding and coding runs ---------------------------------------------------------------------


@pytest.mark.parametrize("form", [f for f in FORMS if f not in ("twice", "gzip of base64", "JWT payload")])
def test_each_form_is_found_and_decoded(form: str) -> None:
    coded = FORMS[form](TEXT)
    text = f"see: {coded} (that is all)"
    (run,) = base64text.runs(text)
    assert run.text == TEXT
    # written back with the same content, it is the same run (compressed ones: the same text)
    again = base64text.encode(run, text, TEXT)
    if run.coding == "identity":
        assert again == text[run.start : run.end]
    (back,) = base64text.runs(text[: run.start] + again + text[run.end :])
    assert back.text == TEXT and back.coding == run.coding


def test_a_jwt_payload_is_found() -> None:
    token = FORMS["JWT payload"](TEXT)
    texts = [run.text for run in base64text.runs(f"Authorization: Bearer {token}")]
    assert json.dumps({"note": TEXT}) in texts


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b, sha256 " + "9f86d081884c7d659a2feaa0c55ad015" * 2,
        "the path /usr/local/lib/python3.11/site-packages/aws_masker and web-server-security-group",
        "uuid 550e8400-e29b-41d4-a716-446655440000, ids subnet-aeeb975729fae923d eipalloc-0123456789abcdef0",
        "AnExtremelyLongCamelCaseIdentifierName and AWS_ACCOUNT_84b2a3d8f1aa tokens",
        "short base64 QUtJQQ== and words",
    ],
)
def test_ordinary_text_has_no_text_runs(text: str) -> None:
    assert [run.text for run in base64text.runs(text) if run.text is not None] == []


def test_binary_without_printable_stretches_is_not_kept() -> None:
    """Bytes with no eight printable ASCII characters in a row (at any alignment) hold no identifier."""
    data = bytes([0x80, 0x00, 0x01]) * 40  # every alignment of it decodes to control and high bytes
    assert base64text.runs("blob " + _b64(data)) == []


def test_random_binary_passes_as_written(masker: Masker) -> None:
    data = random.Random(7).randbytes(3000)
    text = f"a file: {_b64(data)}\nand its URL-safe form {_url(data)}"
    assert masker.mask_text(text)[0] == text


# ---- the engine ----------------------------------------------------------------------------------


def _request(content: object) -> bytes:
    messages = [{"role": "user", "content": content}]
    return json.dumps({"model": "m", "max_tokens": 9, "messages": messages}).encode()


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("where", ["text", "request", "tool input"])
def test_identifiers_inside_base64_are_masked(masker: Masker, form: str, where: str) -> None:
    coded = FORMS[form](TEXT)
    if where == "text":
        out, result = masker.mask_text(f"Here it is:\n{coded}\nthanks")
        sent: str | bytes = out
    elif where == "request":
        sent, result = mask_request(_request(f"decode this {coded} please"), masker)
    else:
        tool = {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"stdin": coded}}
        sent, result = mask_request(_request([{"type": "text", "text": "x"}, tool]), masker)
    assert list(find_leaks(ORIGINALS, {"sent": sent})) == []
    assert set(ORIGINALS) <= set(result.tokens.values())
    assert result.counts["ec2"] >= 1 and result.counts["account"] >= 1


def test_the_same_identifier_gets_the_same_token_inside_and_outside(masker: Masker) -> None:
    out, result = masker.mask_text(f"{EC2} is in {_b64(TEXT.encode())}")
    (token,) = [t for t, v in result.tokens.items() if v == EC2]
    (run,) = base64text.runs(out)
    assert out.startswith(token) and token in (run.text or "")
    # the answer naming the token gets the original back
    assert restore_text(f"the instance {token} is down", result.tokens)[0] == f"the instance {EC2} is down"


def test_text_without_identifiers_is_left_as_written(masker: Masker) -> None:
    text = "config: " + _b64(b"hello world, nothing to see here at all") + " and " + _url(b"more plain words")
    assert masker.mask_text(text)[0] == text


def test_a_short_word_glued_before_base64_is_kept_and_the_rest_masked(masker: Masker) -> None:
    for glued in ("x", "decode", "/secrets/", "pleasedecode"):
        for coded in (_b64(TEXT.encode()), _b64(gzip.compress(TEXT.encode()))):
            out, _ = masker.mask_text(f"run {glued}{coded} now")
            assert out.startswith(f"run {glued}") and list(find_leaks(ORIGINALS, {"out": out})) == []


@pytest.mark.parametrize(
    ("text", "original"),
    [
        ("kind: Secret\ndata:\n  AWS_ACCOUNT_ID: " + _b64(ACCOUNT.encode()) + "\n", ACCOUNT),
        ("kind: Secret\ndata:\n  DB_HOST: " + _b64(IP.encode()) + "\n", IP),
        ('{"kind": "Secret", "data": {"DB_HOST": "' + _b64(IP.encode()) + '"}}', IP),
        ("please decode this: " + _b64(EC2.encode()), EC2),
        ("AWS_SECRET_ACCESS_KEY=" + _b64(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") + "\n", "wJalrXUt"),
    ],
    ids=["secret account", "secret IP", "secret JSON", "decode", "env"],
)
def test_short_values_after_their_keys_are_read(masker: Masker, text: str, original: str) -> None:
    out, _ = masker.mask_text(text)
    assert list(find_leaks([original], {"out": out})) == []


def test_a_short_value_alone_is_read(masker: Masker) -> None:
    sent, _ = mask_request(_request([{"type": "text", "text": _b64(IP.encode())}]), masker)
    assert list(find_leaks([IP], {"sent": sent})) == []


def test_short_words_are_not_decoded_in_ordinary_text(masker: Masker) -> None:
    """Without a key before it, or a text about secrets or decoding, a short run is a word."""
    assert base64text.runs("the ConfigurationId and SecurityGroups of NDgzOTIwMTc1NTI2 here") == []


# a Logs Insights @ptr: protobuf bytes (field tags and lengths) around a log group's account and name
_PTR = _b64(
    b"\n`\n'\n#" + f"{ACCOUNT}:/ecs/orders-api".encode() + b'\x10\x07"\x01!"\x01!\x12%\x1a\x18\x02\x06\x10'
)


@pytest.mark.parametrize(
    "coded",
    [
        # a long path glued on: text only after more than a glued word's reach
        "/var/lib/app/secrets/config/" + _b64(TEXT.encode()),
        _b64(b"\x00\x01\xff\xfe binary " + TEXT.encode() + b" \xfe\x00"),  # binary around an identifier
        _PTR,
    ],
    ids=["glued path", "binary", "logs insights ptr"],
)
def test_binary_with_an_identifier_is_masked_whole(masker: Masker, coded: str) -> None:
    """Bytes that are not text cannot be masked in place: the run is masked whole, one token of the
    kind of the first identifier inside standing for all of it, and the answer gets the run back."""
    text = f"@ptr,blob\n{coded},x\n"
    masked, result = masker.mask_text(text)
    assert coded not in masked and not find_leaks(ORIGINALS, {"masked": masked})
    (token,) = [t for t, original in result.tokens.items() if original == coded]
    assert masked == f"@ptr,blob\n{token},x\n"
    assert token.startswith(("AWS_EC2_", "AWS_ACCOUNT_"))
    assert sum(result.counts.values()) == 1
    assert restore_text(masked, result.tokens) == (text, 1)


def test_a_wrapped_binary_run_with_an_identifier_is_masked_whole(masker: Masker) -> None:
    """Its line breaks are part of what the token stands for: the answer gets the run back as sent."""
    coded = _wrapped(_b64((b"\x00\x01\xff\xfe\x10\x07" * 8 + TEXT.encode()) * 3), 76, "\n")
    text = f"blob:\n{coded}\nend"
    masked, result = masker.mask_text(text)
    (token,) = result.tokens
    assert masked == f"blob:\n{token}\nend" and result.tokens[token] == coded
    assert restore_text(masked, result.tokens) == (text, 1)


def test_a_binary_run_beside_a_text_run_each_masked_their_way(masker: Masker) -> None:
    """A run masked whole and a run masked inside, in one text and in two texts of one request."""
    binary, readable = _PTR, _b64(TEXT.encode())
    masked, result = masker.mask_texts([f"{binary} and {readable}", f"again {binary}"])
    assert not find_leaks(ORIGINALS, {"a": masked[0], "b": masked[1]})
    assert binary not in masked[0] and readable not in masked[0]
    token = masked[1].removeprefix("again ")
    assert result.tokens[token] == binary and masked[0].startswith(token + " and ")
    decoded = base64.b64decode(masked[0].split(" and ")[1]).decode()
    assert ACCOUNT not in decoded and restore_text(decoded, result.tokens)[0] == TEXT


def test_a_decompression_bomb_is_refused(masker: Masker) -> None:
    bomb = _b64(gzip.compress(b"A" * (base64text.MAX_DECOMPRESSED + 1024)))
    with pytest.raises(BodyTooLargeError):
        masker.mask_text(f"data {bomb}")


# ---- any identifier, any coding ------------------------------------------------------------------


def _samples() -> list[tuple[str, str]]:
    masker = Masker(MaskerConfig(token_secret=SECRET))
    out = []
    for rule in RULES:
        for text, value in rule.must_match:
            distinctive = len(value) >= 8 and not value.replace("-", "").isalpha()
            if distinctive and value not in masker.mask_text(text)[0]:
                out.append((text, value))
    return out


SAMPLES = _samples()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    picked=st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=3, unique=True),
    form=st.sampled_from(list(FORMS)),
    prefix=st.sampled_from(["", " ", "\n", "x", "key: ", '"']),
)
def test_catalogue_samples_in_base64_never_leak(masker: Masker, picked: list, form: str, prefix: str) -> None:
    """Masked or refused, never sent. (Raw deflate and brotli have no header: they are read only
    where the base64 stands on its own, not glued to a word. A run shorter than 24 characters is
    read where it is a value: after a key, in a text that speaks of decoding. Both in the README.)"""
    assume(not (form in ("raw deflate", "brotli") and prefix in ("", "x")))
    text = "\n".join(t for t, _ in picked)
    coded = FORMS[form](text)
    if len(coded.strip()) < base64text.MIN_RUN:
        prefix = ": "
    try:
        out, _ = masker.mask_text(f"please decode{prefix}{coded} and explain")
    except MaskerError as exc:
        assert exc.code in ("2011", "2005")
        return
    assert list(find_leaks([v for _, v in picked], {"out": out})) == []


# ---- regressions (hostile review of b80fd2e) -----------------------------------------------------


def test_a_run_is_masked_where_it_stands_not_where_its_characters_first_occur(masker: Masker) -> None:
    """The same characters earlier in the text, not read as a run (a short value without a key
    before it), are not where the masked run goes."""
    coded = _b64(ACCOUNT.encode())
    for before in ("note ", "/", "ref "):
        text = f"# secret\n{before}{coded} and OwnerId: {coded}\n"
        out, _ = masker.mask_text(text)
        assert out.startswith(f"# secret\n{before}{coded} and OwnerId: ")
        assert list(find_leaks([ACCOUNT], {"out": out.split("OwnerId: ", 1)[1]})) == []


@pytest.mark.parametrize(
    "value",
    [
        {"OwnerId": _b64(ACCOUNT.encode())},
        {"kind": "Secret", "data": {"AWS_ACCOUNT_ID": _b64(ACCOUNT.encode())}},
        {"OwnerId": _b64(f"   {ACCOUNT}             ".encode())},
    ],
    ids=["short", "secret", "long"],
)
def test_a_json_value_s_key_is_the_context_of_its_base64(masker: Masker, value: dict) -> None:
    """A JSON member's key stands before its value in the request, not in the value's text: the
    base64 value is read with it, as the plain value is."""
    tool = {"type": "tool_use", "id": "toolu_1", "name": "aws", "input": value}
    sent, _ = mask_request(_request([{"type": "text", "text": "x"}, tool]), masker)
    assert list(find_leaks([ACCOUNT], {"sent": sent})) == []


def test_a_short_value_in_escaped_json_text_is_read(masker: Masker) -> None:
    coded = _b64(ACCOUNT.encode())
    text = f'kubectl: {{\\"kind\\": \\"Secret\\", \\"data\\": {{\\"AWS_ACCOUNT_ID\\": \\"{coded}\\"}}}}'
    out, _ = masker.mask_text(text)
    assert list(find_leaks([ACCOUNT], {"out": out})) == []


def test_utf16le_base64_is_masked_and_written_back_as_utf16le(masker: Masker) -> None:
    """``powershell -EncodedCommand`` takes base64 of UTF-16LE text."""
    command = f"Get-EC2Instance -InstanceId {EC2}; Test-Connection {IP}"
    out, _ = masker.mask_text("powershell.exe -EncodedCommand " + _b64(command.encode("utf-16-le")))
    assert list(find_leaks([EC2, IP], {"out": out})) == []
    back = base64.b64decode(out.rsplit(" ", 1)[1]).decode("utf-16-le")
    assert back.startswith("Get-EC2Instance -InstanceId AWS_EC2_")


def test_a_run_under_another_is_not_taken_for_its_continuation(masker: Masker) -> None:
    """A line of base64 (brotli, which stands alone) above a shorter line of gzip base64: two runs,
    the first not a word glued before the second (found by fuzzing)."""
    line = "ixWAczM6Ly9hY21lLXByb2Qtc2VjcmV0cy03NzMxL2sgKGludmVudG9yeSkgb2sD"  # brotli: s3://<bucket>/k ...
    assert brotli.decompress(base64.b64decode(line)).startswith(f"s3://{BUCKET}/".encode())
    under = "H4sIAHamFmsC/8ssUDA00DPQM9YzV9DIzCtLzSvJL6rUBAC0WGRLFwAAAA=="  # gzip: ip <address> ...
    out, _ = masker.mask_text(f"data: {line}\n{under})")
    assert list(find_leaks([BUCKET, IP], {"out": out})) == []


def test_a_long_wrapped_run_of_binary_is_read_a_bounded_number_of_times(
    masker: Masker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `base64 file.zip` paste (thousands of wrapped lines that are not text) is decoded as a whole,
    without the last line, and as its first line: not once per line (which was quadratic)."""
    calls: list[int] = []
    readings = base64text._readings

    def counted(body: str, altchars: bytes | None):  # type: ignore[no-untyped-def]
        calls.append(len(body))
        return readings(body, altchars)

    monkeypatch.setattr(base64text, "_readings", counted)
    text = "file:\n" + base64.encodebytes(random.Random(1).randbytes(60_000)).decode()
    assert masker.mask_text(text)[0] == text
    assert len(calls) <= 3


@pytest.mark.parametrize("seed", range(8))
def test_random_binary_is_not_read_as_prose(masker: Masker, seed: int) -> None:
    """Random bytes (a PNG or zip pasted as base64) are checked only in their printable stretches:
    the noise between them, read as letters, made prose rules match ("DB t1") and refused them."""
    text = "png: " + _b64(random.Random(seed).randbytes(200_000))
    assert masker.mask_text(text)[0] == text


_RUN_TEXT = st.lists(
    st.sampled_from([*"aZ09+/-_=.: \n\té\x00", "SECRET", "Base64", "decode", "x" * 24]), max_size=120
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_RUN_TEXT)
def test_hyperscan_run_search_is_the_plain_one(text: str) -> None:
    """Where runs start and whether a hint is there: Hyperscan's one scan finds what the byte
    translation and substring searches (the search without the hyperscan package) find."""
    raw = text.encode("ascii", "replace")
    assert base64text._search(raw) == base64text._plain_search(raw)


def test_run_search_reports_each_run_once_at_its_start() -> None:
    run = base64.b64encode(TEXT.encode()).decode()
    text = f"{run} and {run[:30]}\n{run[:23]} x-{run}"
    starts, hinted = base64text._search(text.encode())
    assert starts == [0, len(run) + 5, text.index(" x-") + 1]
    assert not hinted
    assert base64text._search(b"the secret is " + run.encode()) == ([14], True)


@pytest.mark.parametrize(
    "lead", [b"/", b"2", b"K", b'"2'], ids=["slash", "digit", "letter", "tag-and-length"]
)
def test_an_identifier_glued_to_a_binary_fields_printable_bytes(masker: Masker, lead: bytes) -> None:
    """A Logs Insights @ptr is protobuf: a string's tag and length bytes stand right before it, and
    they may be printable (length 50 is "2"). The run is masked whole all the same."""
    ptr = _b64(
        b"\n`\n'\n"
        + lead
        + f"{ACCOUNT}:/ecs/payments-api".encode()
        + b"\x10\x04\x12\x1a\x1a\x18\x02\x06e#\x06\xe9"
    )
    masked = masker.mask_text(f"@log,@ptr\n{ACCOUNT}:/ecs/payments-api,{ptr}\n")[0]
    assert ptr not in masked and not find_leaks(ORIGINALS, {"masked": masked})


def test_twelve_digits_glued_inside_binary_data(masker: Masker) -> None:
    """Whatever bytes stand around them, twelve digits in a row in a binary run mask it whole."""
    coded = _b64(
        b"\x08\x96\x01\x1a\x0c\x01\x02" + b"K7" + ACCOUNT.encode() + b"9\x00\xff\xfe\x01\x02\x03\x04\x05"
    )
    masked, result = masker.mask_text(f"blob {coded} end")
    assert coded not in masked and result.tokens[masked.split()[1]] == coded


@pytest.mark.parametrize("before", ["please decode ", "in the bucket ", "x"])
def test_what_base64_after_prose_decodes_to_starts_a_line(masker: Masker, before: str) -> None:
    """Prose before a run is not a key: what the run decodes to starts a line of its own, where an
    `aws s3 ls` listing's bucket is read."""
    listing = "2024-03-02 17:20:11 media.example.com\n  2024-03-02 17:20:12 logs.example.com\n"
    masked = masker.mask_text(f"{before}{_b64(listing.encode())} and explain")[0]
    assert not find_leaks(["media.example.com", "logs.example.com"], {"masked": masked})
