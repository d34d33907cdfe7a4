"""A hostile or careless client against the request-body mask (issue #10, second round): escapes
nested past any fixed depth, base64 sources that are not what they claim, top-level fields, text split
over messages, adversarial sizes, names written with escapes or percent-encoding, unicode look-alikes.
Each either masks the identifier or refuses the request; tests/gateway/test_gateway_adversarial.py sends
the main ones through the gateway. Failures name categories, never the identifiers: assertions are
not rewritten (PYTEST_DONT_REWRITE), so a failure shows its message, never the bodies compared."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest
from leaks import find_leaks

from aws_masker.body import mask_request
from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.errors import InvalidEncodingError, MaskerError
from aws_masker.restore import restore_json_text
from aws_masker.scanner import ESCAPE_LEVELS
from aws_masker.textview import folded

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


# -- b. base64 sources that are not what they claim --------------------------------------------------

TEXT = f"OwnerId: {ACCOUNT}\nDBInstanceIdentifier: {RDS}\nSecretAccessKey: {SECRET_KEY}\ninstance {EC2}\n"
MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0",
    "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n",
}
BINARY = bytes(range(256)) * 4  # no printable run long enough for an identifier


def source_block(kind: str, media: str | None, data: str, source_type: str = "base64") -> dict:
    source = {"type": source_type, "data": data}
    if media is not None:
        source["media_type"] = media
    return {"type": kind, "source": source}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("kind", ["image", "document"])
@pytest.mark.parametrize(
    "media",
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/csv",
        "application/json",
        None,
    ],
)
def test_text_sent_as_an_image_or_document_is_refused(masker: Masker, kind: str, media: str | None) -> None:
    body = request(source_block(kind, media, b64(TEXT.encode())), {"type": "text", "text": "what is this?"})
    assert masked_or_refused(masker, body) == "refused 2011"


@pytest.mark.parametrize("media", sorted(MAGIC))
def test_text_after_a_genuine_header_is_refused(masker: Masker, media: str) -> None:
    kind = "document" if media == "application/pdf" else "image"
    body = request(source_block(kind, media, b64(MAGIC[media] + TEXT.encode())))
    assert masked_or_refused(masker, body) == "refused 2011"


@pytest.mark.parametrize("media", sorted(MAGIC))
def test_genuine_images_and_pdfs_pass_byte_for_byte(masker: Masker, media: str) -> None:
    kind = "document" if media == "application/pdf" else "image"
    body = request(
        source_block(kind, media, b64(MAGIC[media] + BINARY)), {"type": "text", "text": f"see {EC2}"}
    )
    out, _ = mask_request(body, masker)
    assert b64(MAGIC[media] + BINARY) in out.decode() and leaked(out) == []


def test_an_image_that_is_not_base64_is_refused(masker: Masker) -> None:
    for data in (base64.urlsafe_b64encode(MAGIC["image/png"] + TEXT.encode()).decode(), f"{EC2} not base64"):
        assert masked_or_refused(masker, request(source_block("image", "image/png", data))) == "refused 2011"


@pytest.mark.parametrize("media", ["text/plain", "TEXT/PLAIN", "text/plain; charset=utf-8"])
def test_text_documents_are_decoded_and_masked_whatever_the_spelling(masker: Masker, media: str) -> None:
    body = request(source_block("document", media, b64(TEXT.encode())))
    out, _ = mask_request(body, masker)
    assert leaked(out) == []
    assert (
        "DBInstanceIdentifier"
        in base64.b64decode(json.loads(out)["messages"][0]["content"][0]["source"]["data"]).decode()
    )


def test_a_duplicated_or_odd_source_type_does_not_hide_data(masker: Masker) -> None:
    raw = request(source_block("image", "image/png", b64(TEXT.encode()), source_type="base64x"))
    assert masked_or_refused(masker, raw) == "refused 2011"
    dup = raw.replace(b'"type": "base64x"', b'"type": "base64", "type": "url"')
    assert masked_or_refused(masker, dup) == "refused 2011"


def test_a_block_with_two_types_does_not_hide_its_data(masker: Masker) -> None:
    raw = request(source_block("image", "image/png", b64(TEXT.encode())))
    for types in ('"type": "text", "type": "image"', '"type": "image", "type": "text"'):
        body = raw.replace(b'"type": "image"', types.encode())
        assert masked_or_refused(masker, body) == "refused 2011"


def thinking(block: str, data: str) -> bytes:
    """A request whose assistant turn is one thinking block with ``data`` as its signature
    (``block`` "signature"), or one redacted_thinking block with it as its data ("redacted")."""
    shape = (
        {"type": "thinking", "thinking": "t", "signature": data}
        if block == "signature"
        else {"type": "redacted_thinking", "data": data}
    )
    return json.dumps({"model": "m", "messages": [{"role": "assistant", "content": [shape]}]}).encode()


@pytest.mark.parametrize("block", ["signature", "redacted"])
def test_signatures_that_are_base64_text_are_refused(masker: Masker, block: str) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        data = encode(TEXT.encode()).decode().rstrip("=")
        assert masked_or_refused(masker, thinking(block, data)) == "refused 2011"
    body = thinking("signature", b64(BINARY))
    assert mask_request(body, masker)[0] == body


# -- c. every string of the body, top-level fields included ------------------------------------------

PNG_DATA = b64(MAGIC["image/png"] + BINARY)
FULL_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "You help.", "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "user-1"},
    "stop_sequences": ["STOP"],
    "tool_choice": {"type": "tool", "name": "describe"},
    "tools": [
        {
            "name": "describe",
            "description": "Describe things",
            "input_schema": {"type": "object", "properties": {"id": {"type": "string", "enum": ["a"]}}},
        }
    ],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "service_tier": "auto",
    "container": "container-1",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example/x", "name": "m", "authorization_token": "t"}],
    "messages": [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "hello",
                    "citations": [{"type": "char_location", "cited_text": "c"}],
                },
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA}},
                {"type": "image", "source": {"type": "url", "url": "https://img.example/a.png"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                {
                    "type": "document",
                    "title": "t",
                    "context": "c",
                    "source": {"type": "content", "content": "x"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": b64(BINARY)},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "describe",
                    "input": {"id": "a", "deep": [["x"]]},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "ok"}]}
            ],
        },
        {"role": "assistant", "content": "plain string content"},
    ],
}
PLANT = f"node {EC2} role arn:aws:iam::{ACCOUNT}:role/x"


def string_places(node: object, path: tuple = ()) -> list[tuple]:
    """The path of every string value and every key in ``node``."""
    places: list[tuple] = []
    if isinstance(node, dict):
        for key, value in node.items():
            places.append((*path, ("key", key)))
            places += string_places(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            places += string_places(value, (*path, i))
    elif isinstance(node, str):
        places.append(path)
    return places


def planted(place: tuple) -> object:
    doc = json.loads(json.dumps(FULL_REQUEST))
    *parents, last = place
    holder = doc
    for step in parents:
        holder = holder[step]
    if isinstance(last, tuple):  # a key: renamed
        holder[PLANT] = holder.pop(last[1])
    else:
        holder[last] = PLANT
    return doc


def test_the_full_request_passes_unchanged(masker: Masker) -> None:
    raw = json.dumps(FULL_REQUEST).encode()
    assert mask_request(raw, masker)[0] == raw


@pytest.mark.parametrize("place", string_places(FULL_REQUEST), ids=lambda p: "/".join(map(str, p)))
def test_an_identifier_in_any_string_or_key_is_masked_or_refused(masker: Masker, place: tuple) -> None:
    verdict = masked_or_refused(masker, json.dumps(planted(place)).encode(), (EC2, ACCOUNT))
    assert verdict == "masked" or verdict.startswith("refused 20")


# -- d. text the model reads as one, split over blocks, messages and system ---------------------------

HEAD, TAIL = EC2[:9], EC2[9:]


def conversation(*messages: dict, **extra: object) -> bytes:
    body = {"model": "m", "max_tokens": 1, "messages": list(messages), **extra}
    return json.dumps(body).encode()


def user(*content: object) -> dict:
    return {"role": "user", "content": list(content)}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def tool_result(content: object) -> dict:
    return {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}


SPLITS = {
    "consecutive user strings": conversation(
        {"role": "user", "content": f"instance {HEAD}"}, {"role": "user", "content": f"{TAIL} is down"}
    ),
    "consecutive user blocks": conversation(
        {"role": "user", "content": [text(f"instance {HEAD}")]}, {"role": "user", "content": [text(TAIL)]}
    ),
    "consecutive assistant turns": conversation(
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": f"instance {HEAD}"},
        {"role": "assistant", "content": [text(TAIL)]},
    ),
    "two tool results": conversation(
        {"role": "user", "content": [tool_result(f"instance {HEAD}"), tool_result([text(TAIL)])]}
    ),
    "text then tool result": conversation(
        {"role": "user", "content": [text(f"instance {HEAD}"), tool_result(TAIL)]}
    ),
    "tool result then text": conversation(
        {"role": "user", "content": [tool_result([text(f"instance {HEAD}")]), text(TAIL)]}
    ),
    "system blocks": conversation(
        {"role": "user", "content": "hi"}, system=[text(f"instance {HEAD}"), text(f"{TAIL} down")]
    ),
    "document content blocks": conversation(
        user({"type": "document", "source": {"type": "content", "content": [text(f"x {HEAD}"), text(TAIL)]}})
    ),
    "search result content blocks": conversation(
        user(
            {"type": "search_result", "source": "s", "title": "t", "content": [text(f"x {HEAD}"), text(TAIL)]}
        )
    ),
    "a turn with two roles": conversation(
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": f"instance {HEAD}"},
        {"role": "both", "content": f"{TAIL} down"},
    ).replace(b'"role": "both"', b'"role": "user", "role": "assistant"'),
    "key and value over two user turns": conversation(
        {"role": "user", "content": "OwnerId: "}, {"role": "user", "content": f"{ACCOUNT}\n"}
    ),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_text_split_where_the_model_reads_it_as_one_is_masked(masker: Masker, name: str) -> None:
    out, result = mask_request(SPLITS[name], masker)
    assert leaked(out, (EC2, ACCOUNT, HEAD)) == [], name
    restored = restore_json_text(out.decode(), result.tokens)[0]
    assert strings(json.loads(restored)) == strings(json.loads(SPLITS[name])), name


# a text member written twice: the API reads one copy (which one is its parser's), and that copy runs
# on from the text before it and into the text after it
DUPLICATES = {
    "message content, the later copy read": (
        '[{"role": "user", "content": "instance HEAD"}, {"role": "user", "content": "x", "content": "TAIL"}]'
    ),
    "message content, the earlier copy read": (
        '[{"role": "user", "content": "instance HEAD", "content": "x"}, {"role": "user", "content": "TAIL"}]'
    ),
    "message content, a string and a list": (
        '[{"role": "user", "content": "instance HEAD"},'
        ' {"role": "user", "content": "x", "content": [{"type": "text", "text": "TAIL"}]}]'
    ),
    "text block text": (
        '[{"role": "user", "content": [{"type": "text", "text": "instance HEAD"},'
        ' {"type": "text", "text": "TAIL", "text": "x"}]}]'
    ),
    "tool result content": (
        '[{"role": "user", "content": [{"type": "text", "text": "instance HEAD"},'
        ' {"type": "tool_result", "tool_use_id": "t", "content": "x", "content": "TAIL"}]}]'
    ),
    "block type": (
        '[{"role": "user", "content": [{"type": "text", "text": "instance HEAD"},'
        ' {"type": "image", "type": "text", "text": "TAIL"}]}]'
    ),
}


@pytest.mark.parametrize("name", sorted(DUPLICATES))
def test_a_text_member_written_twice_in_a_run_is_refused(masker: Masker, name: str) -> None:
    messages = DUPLICATES[name].replace("HEAD", HEAD).replace("TAIL", TAIL)
    body = ('{"model": "m", "max_tokens": 1, "messages": ' + messages + "}").encode()
    assert masked_or_refused(masker, body, (EC2, HEAD)) == "refused 2004", name


def test_a_text_member_written_twice_alike_is_read_once(masker: Masker) -> None:
    body = conversation(
        {"role": "user", "content": f"instance {HEAD}"}, {"role": "user", "content": "twice"}
    ).replace(
        b'"content": "twice"', b'"content": "' + TAIL.encode() + b'", "content": "' + TAIL.encode() + b'"'
    )
    assert masked_or_refused(masker, body, (EC2, HEAD)) == "masked"
    body = request(text(f"instance {HEAD}"), text("twice")).replace(
        b'"text": "twice"', b'"text": "' + TAIL.encode() + b'", "text": "' + TAIL.encode() + b'"'
    )
    assert masked_or_refused(masker, body, (EC2, HEAD)) == "masked"


def strings(node: object) -> str:
    """Every string of ``node`` joined: the restore gives a split identifier back whole in its first part."""
    if isinstance(node, dict):
        return "".join(
            strings(value) for key, value in node.items() if key not in ("role", "type", "tool_use_id")
        )
    if isinstance(node, list):
        return "".join(strings(value) for value in node)
    return node if isinstance(node, str) else ""


@pytest.mark.parametrize(
    "parts",
    [
        (f"instance {EC2}", "1 more"),  # joined: i-0123456789abcdef01
        (f"instance {EC2}", "abc"),
        ("abc", f"{EC2} is down"),  # joined: abci-0123...
        ("OwnerId: 1", f"{ACCOUNT} x"),
    ],
)
def test_an_identifier_whole_in_one_part_is_masked_whatever_the_next_part_starts_with(
    masker: Masker, parts: tuple[str, str]
) -> None:
    for body in (
        request(text(parts[0]), text(parts[1])),
        conversation({"role": "user", "content": parts[0]}, {"role": "user", "content": parts[1]}),
    ):
        out, result = mask_request(body, masker)
        originals = (EC2,) if EC2 in "".join(parts) else ()
        assert leaked(out, originals) == []
        assert strings(json.loads(restore_json_text(out.decode(), result.tokens)[0])) == strings(
            json.loads(body)
        )


def test_a_name_found_only_joined_is_echoed_everywhere(masker: Masker) -> None:
    tool_use = {"type": "tool_use", "id": "t", "name": "n", "input": {"db": RDS}}
    body = conversation(
        {"role": "user", "content": [text("DBInstanceIdentifier: "), text(RDS)]},
        {"role": "assistant", "content": [text("checking"), tool_use]},
        {"role": "user", "content": f"why is {RDS} slow?"},
    )
    assert masked_or_refused(masker, body, (RDS,)) == "masked"


def test_turns_of_different_roles_are_not_joined(masker: Masker) -> None:
    body = conversation(
        {"role": "user", "content": "ask about i-0123"}, {"role": "assistant", "content": "4567 ok"}
    )
    assert mask_request(body, masker)[0] == body


# -- e. the cost stays linear in the body, however long its keys -------------------------------------


class Budget(Exception):
    pass


class CountingMasker(Masker):
    """Counts the characters each scan is handed (texts with their contexts and suffixes) and stops
    once they pass a budget: the work masking a body costs, measured without a clock."""

    def __init__(self, budget: int) -> None:
        super().__init__(MaskerConfig(token_secret=SECRET))
        self.budget = budget
        self.scanned = 0

    def mask_texts(self, texts, contexts=None, reserve_from=None, suffixes=None, issued=None):  # type: ignore[no-untyped-def]
        self.scanned += sum(map(len, texts)) + sum(map(len, contexts or ())) + sum(map(len, suffixes or ()))
        if self.scanned > self.budget:
            raise Budget(f"scanned {self.scanned} characters")
        return super().mask_texts(texts, contexts, reserve_from, suffixes, issued)


LONG_KEY = "k" * 200_000
ADVERSARIAL = {
    "a long key over many values": json.dumps({LONG_KEY: [f"v{i}" for i in range(5000)]}),
    "a long key over many members": json.dumps({LONG_KEY: {f"m{i}": f"v{i}" for i in range(5000)}}),
    "long keys between many values": json.dumps({f"{LONG_KEY[:2000]}{i}": f"v{i}" for i in range(500)}),
    "deep nesting under long keys": '{"messages": '
    + "[" * 2000
    + json.dumps({LONG_KEY: [f"x{i}" for i in range(500)]})
    + "]" * 2000
    + "}",
    "many split text blocks": request(*[text(f"part {i} i-01234") for i in range(20000)]).decode(),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_masking_work_is_linear_in_the_body(name: str) -> None:
    body = ADVERSARIAL[name].encode()
    counting = CountingMasker(budget=8 * len(body))
    out, _ = mask_request(body, counting)  # raises Budget past 8 characters scanned per body byte
    assert counting.scanned > 0 and out == body


def test_a_name_found_by_its_key_is_not_lengthened_by_the_next_part(masker: Masker) -> None:
    body = request(text(f"DBInstanceIdentifier: {RDS}"), text('and "\\"' + RDS + ' x\\""'))
    assert masked_or_refused(masker, body, (RDS,)) == "masked"


@pytest.mark.parametrize("number", ["-483920175526", "-483920175526.0", "-4.83920175526e11"])
def test_a_negative_account_number_under_an_account_key_is_masked(masker: Masker, number: str) -> None:
    body = ('{"model": "m", "messages": [], "AccountId": ' + number + ', "n": -1}').encode()
    out, _ = mask_request(body, masker)
    assert leaked(out, (ACCOUNT,)) == [] and json.loads(out)["n"] == -1


# -- f. an echoed name written with escapes or percent-encoding ---------------------------------------

ECHOES = {
    "\\u escape in the same text": f"DBInstanceIdentifier: {RDS}\n\nlater: orders\\u002dprod-db-1",
    "\\u escapes throughout": f"DBInstanceIdentifier: {RDS}\n\nlater: orders\\u002dprod\\u002ddb\\u002d1.",
    "two levels": f'DBInstanceIdentifier: {RDS}\n\nlog: {{\\"db\\": \\"orders\\\\u002dprod-db-1\\"}}',
    "percent-encoded": f"DBInstanceIdentifier: {RDS}\n\nhttps://console.example/rds?db=orders%2Dprod%2ddb-1",
    "percent-encoded, other text": None,
}


@pytest.mark.parametrize("name", sorted(ECHOES))
def test_an_echoed_name_is_found_through_escapes_and_percent_encoding(masker: Masker, name: str) -> None:
    if ECHOES[name] is None:
        body = request(
            text(f"DBInstanceIdentifier: {RDS}"), tool_result("GET /?db=orders%2Dprod%2Ddb%2D1 200")
        )
    else:
        body = request(text(ECHOES[name]))
    assert masked_or_refused(masker, body, (RDS,)) == "masked"


def test_an_echoed_name_in_tool_input_written_with_escapes_is_masked(masker: Masker) -> None:
    tool_use = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "n",
        "input": {"DBInstanceIdentifier": RDS, "note": "see orders\\u002dprod-db-1 and orders%2Dprod-db-1"},
    }
    body = conversation({"role": "assistant", "content": [tool_use]})
    assert masked_or_refused(masker, body, (RDS,)) == "masked"


@pytest.mark.parametrize("block", ["signature", "redacted"])
def test_base64_text_after_padding_in_a_signature_is_refused(masker: Masker, block: str) -> None:
    data = "QQ==" + base64.b64encode(TEXT.encode()).decode()  # Python's decoder stops at "=="
    assert masked_or_refused(masker, thinking(block, data)) == "refused 2011"
    # a length no base64 has (one character over): read, not an internal error
    assert masked_or_refused(masker, thinking("signature", "A" + b64(BINARY))) == "masked"


# -- g. unicode tricks, percent-encoding, long lines, CRLF ---------------------------------------------


def fullwidth(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)


ARN = f"arn:aws:iam::{ACCOUNT}:role/Admin"
TRICKS = {
    "fullwidth instance id": (f"instance {fullwidth(EC2)} is down", fullwidth(EC2)),
    "fullwidth digits under a key": (f"OwnerId: {fullwidth(ACCOUNT)}", fullwidth(ACCOUNT)),
    "arabic-indic digits": ("OwnerId: " + "".join(chr(0x660 + int(c)) for c in ACCOUNT), ACCOUNT),
    "zero-width space inside": (f"instance {EC2[:8]}\u200b{EC2[8:]}", EC2),
    "zero-width joiner in an arn": (ARN.replace(ACCOUNT, ACCOUNT[:4] + "\u200d" + ACCOUNT[4:]), ACCOUNT),
    "soft hyphen": (f"instance {EC2[:6]}\u00ad{EC2[6:]}", EC2),
    "bidi control": (f"instance {EC2[:6]}\u202e{EC2[6:]}", EC2),
    "combining mark": (f"instance {EC2[:12]}\u0301{EC2[12:]}", EC2),
    "non-breaking hyphen": ("instance " + EC2.replace("-", "\u2011"), EC2),
    "en dash": ("instance " + EC2.replace("-", "\u2013"), EC2),
    "cyrillic i": ("instance \u0456" + EC2[1:], EC2),
    "fullwidth colon after the key": (f"OwnerId\uff1a {ACCOUNT}", ACCOUNT),
    "ratio sign for a colon": (f"OwnerId\u2236 {ACCOUNT}", ACCOUNT),
    "percent-encoded arn": (
        "https://console.example/iam?arn=" + ARN.replace(":", "%3A").replace("/", "%2F"),
        ACCOUNT,
    ),
    "percent-encoded arn, lower case": ("x " + ARN.replace(":", "%3a").replace("/", "%2f"), ACCOUNT),
    "percent-encoded hyphen": ("instance " + EC2.replace("-", "%2D"), EC2),
    "percent-encoded twice (a console URL in a redirect parameter)": (
        "https://signin.example/?redirect_uri="
        + quote(f"https://console.example/iam?arn={quote(ARN, '')}", ""),
        ACCOUNT,
    ),
    "percent-encoded three times": ("x " + ARN.replace(":", "%25253A"), ACCOUNT),
    "html reference for the hyphen": ("instance " + EC2.replace("-", "&#45;"), EC2),
    "html hex references": ("instance " + "".join(f"&#x{ord(c):x};" for c in EC2), EC2),
    "html named colon": (f"arn&colon;aws&colon;iam&colon;&colon;{ACCOUNT}&colon;role/x", ACCOUNT),
    "crlf yaml": (f"Reservations:\r\n  - OwnerId: '{ACCOUNT}'\r\n", ACCOUNT),
    "cr only": (f"Reservations:\r  - OwnerId: '{ACCOUNT}'\r", ACCOUNT),
    "a very long line": ("x" * 300_000 + f" instance {EC2} " + "y" * 300_000, EC2),
}


def still_readable(out: bytes, original: str) -> bool:
    """Does the original show in the sent text, or once its look-alikes and encodings are folded?"""
    sent = json.loads(out)["messages"][0]["content"][0]["text"]
    return original in sent or original in folded(sent)[0]


@pytest.mark.parametrize("name", sorted(TRICKS))
def test_unicode_and_encoding_tricks_are_seen_through(masker: Masker, name: str) -> None:
    written, original = TRICKS[name]
    out, result = mask_request(request(text(written)), masker)
    assert not still_readable(out, original), name
    assert result.total >= 1, name


def test_ordinary_non_ascii_text_is_left_alone(masker: Masker) -> None:
    prose = "Ｈｅｌｌｏ – ｗｏｒｌｄ： привет, мир — ２０２４年１２月 ① ﬁ ٣ café naïve\u200b\u00ad"
    prose += " &amp; &#169; 50%25 &#45;"
    body = request(text(prose * 200))
    assert mask_request(body, masker)[0] == body
