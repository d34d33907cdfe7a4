"""A sixth review of the request body and channels as a hostile client: base64 images inside a
document's content source, text split over thinking blocks, escaped surrogate pairs in JSON inside a
string, references escaped twice, other languages' backslash escapes, JavaScript's %u escapes,
invisible characters, account IDs written as strings a reader still reads as the number, and account
IDs in JSON schemas and DynamoDB's typed values. Each either masks the identifier or refuses the
request. Failures name categories, never the identifiers: assertions are not rewritten
(PYTEST_DONT_REWRITE), so a failure shows its message, never the bodies compared."""

from __future__ import annotations

import base64
import json
import struct
import zlib

import pytest
from leaks import find_leaks

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import MaskerError, OpaqueDataError

SECRET = "review6-secret-0123"
ACCOUNT = "483920175526"
EC2 = "i-0123456789abcdef0"
EC2_TAIL = "0123456789abcdef0"
ACCESS_KEY = "AKIAQ3EGT5XJ2LMN7RPX"
NAMES = {ACCOUNT: "account", EC2: "ec2", ACCESS_KEY: "access key"}


@pytest.fixture(scope="module")
def masker() -> Masker:
    return Masker(MaskerConfig(token_secret=SECRET))


def request(messages: list[dict], **extra: object) -> bytes:
    body: dict[str, object] = {"model": "claude-x", "max_tokens": 10, "messages": messages}
    body.update(extra)
    return json.dumps(body).encode()


def user(*content: object) -> bytes:
    return request([{"role": "user", "content": list(content)}])


def tool_input(value: object) -> bytes:
    """A request whose assistant turn is a tool_use with ``value`` as its input."""
    block = {"type": "tool_use", "id": "toolu_1", "name": "aws", "input": value}
    return request([{"role": "user", "content": "go"}, {"role": "assistant", "content": [block]}])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def masked_or_refused(masker: Masker, body: bytes, fragments: tuple[str, ...] = ()) -> str:
    """ "masked" when neither an original (in any form tests/leaks.py decodes) nor one of
    ``fragments`` (parts of one, or forms of one that only a reader decodes) is in the output."""
    try:
        out, _ = mask_request(body, masker)
    except MaskerError as exc:
        return f"refused {exc.code}"
    found = sorted({NAMES.get(leak.original, "planted") for leak in find_leaks(tuple(NAMES), {"out": out})})
    assert found == [], f"leaked: {found}"
    text = out.decode("utf-8")
    text += json.dumps(json.loads(text), ensure_ascii=False)  # (and with the JSON escapes undone)
    kept = [k for k, fragment in enumerate(fragments) if fragment in text]
    assert kept == [], f"fragments left (by index): {kept}"
    return "masked"


def png() -> bytes:
    """A genuine 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# ---- base64 the API decodes: images in a document's content source ---------------------------------


def content_document(*blocks: dict) -> dict:
    return {"type": "document", "source": {"type": "content", "content": list(blocks)}}


def image(data: str, media: str = "image/png") -> dict:
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}


@pytest.mark.parametrize("where", ["message", "tool_result", "system-free"])
def test_text_sent_as_an_image_in_a_content_document_is_refused(masker: Masker, where: str) -> None:
    fake = image(b64(f"instance {EC2} in {ACCOUNT}".encode()))
    document = content_document({"type": "text", "text": "see the image"}, fake)
    if where == "tool_result":
        document = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [document]}
    encoded = fake["source"]["data"]
    assert masked_or_refused(masker, user(document), (encoded,)) == "refused 2011"


def test_an_identifier_after_a_genuine_header_in_a_content_document_is_refused(masker: Masker) -> None:
    fake = image(b64(png() + f" {EC2}".encode()))
    assert masked_or_refused(masker, user(content_document(fake))) == "refused 2011"


def test_a_genuine_image_in_a_content_document_passes_byte_for_byte(masker: Masker) -> None:
    data = b64(png())
    body = user(content_document({"type": "text", "text": f"on {EC2}"}, image(data)))
    out, result = mask_request(body, masker)
    assert data in out.decode() and EC2 not in out.decode() and result.total == 1


def test_the_text_blocks_of_a_content_document_still_run_together(masker: Masker) -> None:
    head, tail = {"type": "text", "text": "on i-0123"}, {"type": "text", "text": "456789abcdef0"}
    body = user(content_document(head, tail))
    assert masked_or_refused(masker, body, ("i-0123", "456789abcdef0")) == "masked"


def test_base64_nested_past_the_block_depth_bound_is_still_checked(masker: Masker) -> None:
    fake: dict = image(b64(f"instance {EC2}".encode()))
    for _ in range(70):
        fake = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [fake]}
    encoded = b64(f"instance {EC2}".encode())
    assert masked_or_refused(masker, user(fake), (encoded,)) == "refused 2011"


# ---- text split over blocks the API drops ----------------------------------------------------------


@pytest.mark.parametrize(
    "between",
    [
        [{"type": "thinking", "thinking": "hmm", "signature": "c2lnbmF0dXJl"}],
        [{"type": "redacted_thinking", "data": "c2lnbmF0dXJl"}],
        [
            {"type": "thinking", "thinking": "a", "signature": "c2ln"},
            {"type": "redacted_thinking", "data": "eA=="},
        ],
    ],
)
def test_an_identifier_split_over_a_thinking_block_is_masked(masker: Masker, between: list[dict]) -> None:
    """The API drops thinking blocks from earlier assistant turns: the text either side is read joined."""
    turn = [{"type": "text", "text": "it is i-0123"}, *between, {"type": "text", "text": "456789abcdef0 now"}]
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": turn}]
    body = request([*turns, {"role": "user", "content": "ok"}])
    assert masked_or_refused(masker, body, ("i-0123", "456789abcdef0")) == "masked"


def test_an_identifier_split_over_a_thinking_only_message_is_masked(masker: Masker) -> None:
    thinking = [{"type": "thinking", "thinking": "hmm", "signature": "c2lnbmF0dXJl"}]
    body = request(
        [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "it is i-0123"},
            {"role": "assistant", "content": thinking},
            {"role": "assistant", "content": "456789abcdef0"},
            {"role": "user", "content": "ok"},
        ]
    )
    assert masked_or_refused(masker, body, ("i-0123", "456789abcdef0")) == "masked"


def test_a_tool_use_still_ends_a_run(masker: Masker) -> None:
    """What the model reads apart stays apart (no false join): a whole identifier after a tool_use
    is masked alone, the text before it is kept."""
    turn = [
        {"type": "text", "text": "run it"},
        {"type": "tool_use", "id": "toolu_1", "name": "aws", "input": {}},
        {"type": "text", "text": EC2},
    ]
    out, result = mask_request(request([{"role": "assistant", "content": turn}]), masker)
    assert "run it" in out.decode() and EC2 not in out.decode() and result.total == 1


# ---- JSON inside a string: escaped surrogate pairs ---------------------------------------------------

BOLD_4 = "\U0001d7d2"  # MATHEMATICAL BOLD DIGIT FOUR: a surrogate pair when escaped


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_an_escaped_surrogate_pair_in_json_in_a_string_is_seen_through(masker: Masker, levels: int) -> None:
    text: object = {"InstanceId": "i-0123" + BOLD_4 + "56789abcdef0", "OwnerId": BOLD_4 + ACCOUNT[1:]}
    for _ in range(levels):
        text = json.dumps(text)  # (ensure_ascii: the digit as \\ud835\\udfd2)
    assert masked_or_refused(masker, tool_input({"output": text}), ("56789abcdef0", ACCOUNT[1:])) == "masked"


def test_lone_escaped_surrogates_still_pass(masker: Masker) -> None:
    text = json.dumps(json.dumps({"note": "\ud835 and \udfd2 apart", "id": EC2}))
    assert masked_or_refused(masker, tool_input({"output": text}), (EC2_TAIL,)) == "masked"


# ---- references escaped twice, named references, other escapes ---------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "i&amp;#45;0123456789abcdef0",  # HTML escaped twice
        "i&amp;amp;#x2d;0123456789abcdef0",
        "i&minus;0123456789abcdef0",
        "i&ndash;0123456789abcdef0",
        "i&mdash;0123456789abcdef0",
        "i%u002d0123456789abcdef0",  # JavaScript's escape()
        "%uFF49%uFF0D0123456789abcdef0",  # escape() of fullwidth forms
        "i%25u002D0123456789abcdef0",
        "i\\x2d0123456789abcdef0",  # Python, C, JavaScript, shell
        "\\x69\\x2d\\x30123456789abcdef0",
        "i\\u{2d}0123456789abcdef0",  # JavaScript, Rust, Swift
        "i\\U0000002d0123456789abcdef0",  # Python
    ],
)
def test_an_identifier_behind_a_reference_or_escape_is_masked(masker: Masker, written: str) -> None:
    body = user({"type": "text", "text": f"instance {written} down"})
    assert masked_or_refused(masker, body, (EC2_TAIL,)) == "masked"
    assert masked_or_refused(masker, tool_input({"log": written}), (EC2_TAIL,)) == "masked"


def test_an_arn_behind_references_escaped_twice_is_masked(masker: Masker) -> None:
    written = "arn&amp;colon;aws&amp;colon;iam&amp;colon;&amp;colon;483920175526&amp;colon;role/admin"
    assert masked_or_refused(masker, tool_input({"log": written})) == "masked"


def test_escapes_that_decode_to_other_characters_are_left_alone(masker: Masker) -> None:
    text = "a\\x20b &amp;lt; %u0020 \\u{20} &amp;amp; \\x5c"
    out, result = mask_request(tool_input({"log": text}), masker)
    assert result.total == 0 and json.loads(out)["messages"][1]["content"][0]["input"]["log"] == text


# ---- invisible characters --------------------------------------------------------------------------


def tags(text: str) -> str:
    """``text`` in Unicode tag characters (invisible; "ASCII smuggling")."""
    return "".join(chr(0xE0000 + ord(c)) for c in text)


@pytest.mark.parametrize(
    "written",
    [
        "i-0123\u3164456789abcdef0",  # Hangul filler
        "i-0123\uffa0456789abcdef0",  # halfwidth Hangul filler
        "i-0123\u115f456789abcdef0",
        "i-0123\u2800456789abcdef0",  # braille blank
        "i-0123\U000e0020456789abcdef0",  # tag space
        "i-0123\U000e0101456789abcdef0",  # variation selector supplement
        tags(EC2),
        "i-0123" + tags("456789") + "abcdef0",
    ],
)
def test_an_identifier_with_invisible_characters_is_masked(masker: Masker, written: str) -> None:
    fragments = ("456789abcdef0", "abcdef0", tags("0123456789abcdef0"), tags("456789"))
    body = user({"type": "text", "text": f"on {written} now"})
    assert masked_or_refused(masker, body, fragments) == "masked"


# ---- account IDs as strings a reader reads as the number ---------------------------------------------


@pytest.mark.parametrize(
    "written", ["+483920175526", "0483920175526", "-0483920175526", "483,920,175,526", "483_920_175_526"]
)
def test_an_account_written_loosely_under_an_account_key_is_masked(masker: Masker, written: str) -> None:
    fragments = (written, "483,920", "483_920")
    assert masked_or_refused(masker, tool_input({"OwnerId": written}), fragments) == "masked"


@pytest.mark.parametrize("written", ["+483920175526", "483,920,175,526", "1,234", "+1", "0012"])
def test_loose_numbers_under_other_keys_are_kept(masker: Masker, written: str) -> None:
    out, result = mask_request(tool_input({"Quantity": written}), masker)
    assert result.total == 0 and json.loads(out)["messages"][1]["content"][0]["input"]["Quantity"] == written


# ---- account IDs in JSON schemas and DynamoDB's typed values ----------------------------------------


@pytest.mark.parametrize("value", [483920175526, "483920175526"])
def test_an_account_in_a_tool_schema_is_masked(masker: Masker, value: object) -> None:
    schema = {
        "type": "object",
        "properties": {
            "OwnerId": {"type": "string", "default": value, "enum": [value], "examples": [value]},
            "AccountId": {"type": "string", "const": value},
        },
    }
    body = request([{"role": "user", "content": "q"}], tools=[{"name": "t", "input_schema": schema}])
    assert masked_or_refused(masker, body) == "masked"


def test_an_account_in_dynamodb_typed_values_is_masked(masker: Masker) -> None:
    item = {"Item": {"OwnerId": {"S": ACCOUNT}, "AccountIds": {"SS": [ACCOUNT]}, "AccountId": {"N": ACCOUNT}}}
    assert masked_or_refused(masker, tool_input(item)) == "masked"


def test_typed_values_under_other_keys_are_kept(masker: Masker) -> None:
    item = {"Item": {"Phone": {"S": ACCOUNT}, "Count": {"N": ACCOUNT}}, "Size": {"default": 483920175526}}
    out, result = mask_request(tool_input(item), masker)
    assert result.total == 0 and ACCOUNT in out.decode()


def _search_turns(encrypted: str) -> bytes:
    result = {
        "type": "web_search_result",
        "url": "https://example.com",
        "title": "t",
        "encrypted_content": encrypted,
    }
    cite = {
        "type": "web_search_result_location",
        "url": "https://example.com",
        "title": "t",
        "encrypted_index": encrypted,
        "cited_text": "x",
    }
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [result]},
                    {"type": "text", "text": "see", "citations": [cite]},
                ],
            },
            {"role": "user", "content": "more"},
        ],
    }
    return json.dumps(body).encode()


def test_encrypted_search_content_holding_an_identifier_is_refused(masker: Masker) -> None:
    """A web search result's encrypted_content and a citation's encrypted_index are base64 the API
    decodes: an identifier encoded into them is refused, as in a thinking signature."""
    hidden = base64.b64encode(b"host i-0123456789abcdef0 in 483920175526").decode()
    with pytest.raises(OpaqueDataError):
        mask_request(_search_turns(hidden), masker)


def test_genuine_encrypted_search_content_passes_byte_for_byte(masker: Masker) -> None:
    genuine = base64.b64encode(bytes(range(256)) * 3).decode()
    out, _ = mask_request(_search_turns(genuine), masker)
    assert out.decode().count(genuine) == 2


@pytest.mark.parametrize(
    "value",
    [
        {"Accounts": {"483920175526": {"name": "prod"}, "583920175527": "dev"}},
        {"AccountIds": {"483920175526": True}},
    ],
)
def test_an_account_number_as_a_key_under_an_account_key_is_masked(masker: Masker, value: object) -> None:
    """A map keyed by account: the number, as the key of an object under an account key, is read as
    that key's value."""
    use = {"type": "tool_use", "id": "t1", "name": "sh", "input": value}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [use]}]}
    out, _ = mask_request(json.dumps(body).encode(), masker)
    assert "483920175526" not in out.decode()


@pytest.mark.parametrize(
    "value",
    [
        {"properties": {"bucket": {"type": "string"}, "OwnerId": {"type": "string"}}},
        {"Accounts": {"Production": 1}},
        {"counts": {"483920175526": 1}},  # a number under a key that names no account
    ],
)
def test_other_keys_are_not_read_as_their_holders_values(masker: Masker, value: object) -> None:
    use = {"type": "tool_use", "id": "t1", "name": "sh", "input": value}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [use]}]}
    raw = json.dumps(body).encode()
    out, _ = mask_request(raw, masker)
    assert out == raw


@pytest.mark.parametrize(
    ("parts", "value"),
    [
        (["the tfstate", "-7731 Bucket", "role of it"], "tfstate-7731"),  # evidence after the name
        (["the tfstate", "-", "7731 Bucket", "role of it"], "tfstate-7731"),
        (["the tfstate-77", "31 Bucket", "role of it"], "tfstate-7731"),  # cut between two digits
        (["x", "the tfstate-77", "31 Bucket", "role"], "tfstate-77"),
        (["see ", "the acme-prod", "-logs bucket", "next"], "acme-prod-logs"),
        (["first", "arn:aws:iam::4839201", "75526:role/Admin", "then"], "4839201"),
    ],
)
def test_a_name_cut_across_parts_of_a_longer_run_is_masked(
    masker: Masker, parts: list[str], value: str
) -> None:
    """Joined with the whole run, a name's evidence at the end of a part runs on into the next one
    ("Bucketrole"), or a name at the start of a part follows a word ("firstarn:..."): the parts on
    either side of such a join are masked as runs of their own too."""
    blocks = [{"type": "text", "text": part} for part in parts]
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": blocks}]}
    out, result = mask_request(json.dumps(body).encode(), masker)
    assert value not in out.decode()
    assert sum(result.counts.values()) == len(result.tokens)
