"""JSON-aware masking of an Anthropic Messages request, as an edit of the client's text.

The body is tokenized (jsontext.py) and every string literal is masked, keys too (tool inputs are
free-form); only the literals that change are re-encoded, so numbers, spacing, escapes and every copy
of a duplicated key stay as the client wrote them, and every copy is masked. Numbers that are account
IDs under an account key (``"OwnerId": 483920175526``, ``483920175526.0``, ``4.83920175526e11``, and
the same written as a string) are masked like the integer: the literal becomes a token string.

Each value is scanned together with its keys (``"Owner": {"ID": "``; a list element with the
list's key, ``"Ids": ["``) before it and the key of the member after it (``", "Prefix": ``) behind
it, so rules that need a key or a sibling see them as they do in pasted text. Escapes inside a value
(JSON in a string) are seen through by the scanner.

Opaque values, only where the Messages API puts them (a message's ``content`` blocks, ``system``
blocks, and the ``content`` blocks of a ``tool_result`` among those), and only when the value is
what it claims, are scanned as they are, without their key, so genuine data comes out byte for byte
(an identifier written into one is still masked, and the API then refuses the block); the same shapes
anywhere else (inside ``tool_use.input``, say) are ordinary values:

- ``data`` of an ``image`` or ``document`` block's base64 ``source``. A ``text/plain`` base64
  document is decoded, masked and re-encoded. Images (PNG, JPEG, GIF, WebP) and PDF documents pass
  when their decoded bytes begin as their media type's do and hold no identifier the catalogue
  masks; anything else (another media type, data that is not base64, text sent as an image, an
  identifier after a genuine header) is refused (``OpaqueDataError``). With
  ``refuse_binary_documents`` every image and binary document is refused;
- ``signature`` of a ``thinking`` block and ``data`` of a ``redacted_thinking`` block, when base64-ish
  (the API verifies them; tokens are deterministic, so restored thinking re-masks to the same text),
  unless their decoded bytes hold an identifier (refused). A web search result's
  ``encrypted_content`` and a citation's ``encrypted_index`` are scanned as ordinary values, and
  their decoded bytes are checked the same way.

Top-level ``model`` is an ordinary value: no model name holds an identifier, and an identifier written
there is masked (the API then refuses the unknown model; the error names the token, restored).

Text the model reads as one is masked as one text and shared back out to its parts: an identifier
split over two parts is masked whole in the first. That is adjacent text in one message's content
(text blocks, plain strings, a tool_result's content in its place), in consecutive messages of one
role (the API merges them into one turn), and in system blocks; any other block ends it. Each part
is then masked alone too, so an identifier whole in one part is masked even where the next part
runs on from it (``i-0123456789abcdef0`` + ``1 more``). A member of such text written twice with
different values (a message's ``content``, a text block's ``text`` or ``type``) is refused: which copy
the API reads decides what runs on from what."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import operator
import re
from bisect import bisect_right
from collections import Counter
from decimal import Decimal
from json.encoder import encode_basestring, encode_basestring_ascii

from . import base64text, echo
from .engine import Masker, MaskResult
from .errors import BinaryDocumentError, InvalidEncodingError, OpaqueDataError
from .jsontext import KEY, NUMBER, STRING, Container, Document
from .restore import token_kind
from .scanner import unescape_once
from .textmarks import LINKED_DIMENSION
from .textview import PAIR_NAME
from .tokens import KIND_CATEGORIES, TOKEN_RE

_BASE64ISH = re.compile(r"[A-Za-z0-9+/=_-]+")
_URLSAFE = str.maketrans("-_", "+/")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_EXPONENT = re.compile("[eE]")
_NUMBER_START = frozenset("-0123456789")
# a number written as a string in a way JSON's grammar does not allow, as a reader still reads it: a
# plus sign, leading zeros, thousands separated by commas or underscores (all the same separator)
_LOOSE_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+|[0-9]{1,3}(?P<sep>[,_])[0-9]{3}(?:(?P=sep)[0-9]{3})*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
)
_LOOSE_START = frozenset("+-0123456789")
_SEPARATORS = str.maketrans("", "", ",_")
_EXEMPT_KEYS = frozenset({"data", "signature"})
_ENCRYPTED_KEYS = frozenset({"encrypted_content", "encrypted_index"})
"""Opaque base64 the client hands back from the API's web search results and their citations."""
_TEXT_MEDIA = "text/plain"
# what the API reads in a base64 source, by block type and media type: the data's first bytes
_MAGIC: dict[tuple[str, str], tuple[bytes, ...]] = {
    ("image", "image/png"): (b"\x89PNG\r\n\x1a\n",),
    ("image", "image/jpeg"): (b"\xff\xd8\xff",),
    ("image", "image/gif"): (b"GIF87a", b"GIF89a"),
    ("image", "image/webp"): (b"RIFF",),  # and "WEBP" at 8 (_check_binary)
    ("document", "application/pdf"): (b"%PDF",),
}
_PAIR_NAMES = {
    "ParameterValue": ("ParameterKey",),
    "parameterValue": ("parameterKey",),  # (CloudTrail's records of CreateStack and UpdateStack)
    "OutputValue": ("OutputKey",),
    "Value": ("Key", "Name"),
    "value": ("key", "name", "field"),  # (field: Logs Insights results)
}
"""The value member of a name/value pair object -> the members that may name what it holds."""
_TYPED_IDS = frozenset(("ResourceId", "resourceId", "resourceName", "ResourceName"))
"""Keys whose value is named by its object's resource type (patterns.py's typed_resource_id)."""
_LIFTED = frozenset({"default", "const", "example", "examples", "enum", "S", "N", "SS", "NS"})
"""Keys whose value is the value of the key their object stands under, as a reader takes it: a JSON
schema's keywords (``"OwnerId": {"type": "string", "default": "..."}``, in a tool's ``input_schema``)
and DynamoDB's typed values (``"OwnerId": {"S": "..."}``). Their values are scanned with that key as
their context instead of their own."""
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_ARGV_NAME = re.compile(r"-{1,2}[A-Za-z][A-Za-z0-9_-]{0,60}|[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]{1,60}")
"""An item of an argument list that names the next one: a flag, or an option's snake_case name."""
_BUCKET_ITEM_KEYS = frozenset(("Name", "CreationDate", "BucketRegion", "BucketArn"))
"""The string members of an item of ``list-buckets``."""
_KEY_CONTEXT = 256
"""Characters of a key that stand in the context of its values (no rule's key is longer)."""
_MAX_BLOCK_DEPTH = 64
"""tool_result blocks nest tool_result blocks at most this deep before the exemptions stop applying."""
_TEXT_TYPES = frozenset({"text", "tool_result", "document", "search_result"})
"""Block types whose text the model reads in a run (``text_runs``)."""
_UNREAD_TYPES = frozenset({"thinking", "redacted_thinking"})
"""Block types that do not end a run: the API drops them from an earlier assistant turn, so the text
either side of one is read joined."""


def mask_document(
    source: str, doc: Document, masker: Masker, refuse_binary: bool = False
) -> tuple[str, MaskResult]:
    """``source`` (the JSON text ``doc`` was parsed from) with every maskable literal masked."""
    where = _Positions(doc)
    next_keys = doc.next_keys
    texts: list[str] = []
    contexts: list[str] = []
    suffixes: list[str] = []
    owners: list[int] = []  # literal index of each text
    documents: set[int] = set()  # literal indices of text/plain documents' base64 data
    quoted: dict[str | None, str] = {}  # key -> its JSON text, as it goes into contexts
    outers: dict[int, str] = {}  # container -> the context its values get from the enclosing key
    containers = doc.containers
    linked: bool | None = None  # whether a string of the document names Cost Explorer's account dimension
    for i, (kind, value, key, container) in enumerate(
        zip(doc.kinds, doc.values, doc.keys, doc.owners, strict=True)
    ):
        if kind == KEY:
            texts.append(value)
            # a number as the key of an object that stands under a key is read as that key's value:
            # a map keyed by account ("Accounts": {"483920175526": {...}}). (Only numbers: a word
            # under "bucket" is a schema's "type", not a bucket.)
            holder = containers[container].key if container >= 0 and value.isdigit() else None
            contexts.append("" if holder is None else _quoted(holder) + ': "')
            suffixes.append("")
            owners.append(i)
            continue
        if (kind == NUMBER or value[:1] in _NUMBER_START) and _NUMBER.fullmatch(value):
            account = _account_number(value)
            if account is None:
                if kind == NUMBER:
                    continue
            else:
                value = account  # masked, the number becomes a token string
        elif value[:1] in _LOOSE_START and (account := _loose_account(value)) is not None:
            value = account  # as above
        elif key in _ENCRYPTED_KEYS and _base64ish(value):
            # a web search result's encrypted content or a citation's index: the API decodes it (and
            # refuses a forged one), so its bytes are checked as a signature's are; then it is
            # scanned as an ordinary value
            _check_opaque(_loose_b64decode(value), masker)
        elif key in _EXEMPT_KEYS:
            verdict = where.exemption(i)
            if verdict == "binary" and refuse_binary:
                raise BinaryDocumentError(
                    "the request carries a binary document or image, which aws-masker cannot "
                    "mask (refuse_binary_documents is on); it was not forwarded"
                )
            if verdict == "binary":
                _check_binary(value, *where.source_types(i), masker)
            elif verdict == "opaque":
                _check_opaque(_loose_b64decode(value), masker)
            if verdict is not None:
                # opaque data is scanned as it is, without a key: an identifier written into it is
                # masked (the API then refuses the block), genuine data comes out byte for byte
                if verdict == "text-document":
                    value = _decoded_text(value, where.media_type(i))
                    documents.add(i)
                texts.append(value)
                contexts.append("")
                suffixes.append("")
                owners.append(i)
                continue
        texts.append(value)
        quote = "" if kind == NUMBER else '"'
        if key not in quoted:
            quoted[key] = "" if key is None else _quoted(key) + ": "
        outer = outers.get(container)
        if outer is None:
            outer = outers[container] = _outer(containers, container)
        if key in _LIFTED and containers[container].key is not None:  # "OwnerId": {"default": "
            contexts.append(_quoted(containers[container].key) + ": " + quote)  # (str: key is not None)
        elif key is None and not outer:
            contexts.append("")
        else:
            named = _pair_context(masker, containers, container, key, value, doc.values)
            contexts.append(outer + (quoted[key] if named is None else named) + quote)
        if key is None and i and doc.owners[i - 1] == container and doc.kinds[i - 1] == STRING:
            # an argument list (a tool_use's command, a container's args, subprocess.run([...])): an
            # item after a flag or an option's name is read after it, as on a command line
            # ("--owners", "4839..."; "aws_secret_access_key", "...")
            previous = doc.values[i - 1]
            if _ARGV_NAME.fullmatch(previous):
                contexts[-1] += previous + " "
        if _TWELVE_DIGITS.search(value):
            if linked is None:
                linked = any(LINKED_DIMENSION in v for v in doc.values)
            if linked:  # Cost Explorer by account, anywhere in the request (patterns.py, as in pasted text)
                contexts[-1] = LINKED_DIMENSION + "\n" + contexts[-1]
        next_key = next_keys.get(i)
        if next_key is None:
            suffixes.append(quote)
        else:
            if next_key not in quoted:
                quoted[next_key] = _quoted(next_key) + ": "
            suffixes.append(quote + ", " + quoted[next_key])
        owners.append(i)
    originals = list(texts)
    masked, result = _mask_unique(masker, texts, contexts, suffixes)
    runs = where.text_runs()
    if runs:  # (as text indices)
        slot = {owner: k for k, owner in enumerate(owners)}
        runs = [ks for ks in ([slot[i] for i in run if i in slot] for run in runs) if len(ks) > 1]
    if runs:
        result = _mask_runs(masker, runs, originals, masked, contexts, suffixes, result)
        result = _mask_word_joins(masker, runs, masked, contexts, suffixes, result)
    pieces: list[str] = []
    last = 0
    for k in itertools.compress(range(len(masked)), map(operator.ne, masked, originals)):  # the changed
        owner, after = owners[k], masked[k]
        pieces.append(source[last : doc.starts[owner]])
        written = source[doc.starts[owner] : doc.ends[owner]]
        if owner in documents:
            pieces.append(_encode(base64.b64encode(after.encode("utf-8")).decode("ascii")))
        else:
            pieces.append(_spliced(written, originals[k], after) or _encode(after))
        last = doc.ends[owner]
    if not pieces:
        return source, result
    pieces.append(source[last:])
    return "".join(pieces), result


def _mask_unique(
    masker: Masker, texts: list[str], contexts: list[str], suffixes: list[str]
) -> tuple[list[str], MaskResult]:
    """``masker.mask_texts`` with each (context, text, suffix) scanned once: keys and many values
    recur throughout a document (a describe-instances dump repeats each key thousands of times), and
    the same input masks to the same output. Occurrences past the first are counted from the tokens
    they got."""
    index: dict[tuple[str, str, str], int] = {}
    order: list[int] = []
    unique: tuple[list[str], list[str], list[str]] = ([], [], [])
    add_text, add_context, add_suffix = (column.append for column in unique)
    for item in zip(texts, contexts, suffixes, strict=True):
        at = index.get(item)
        if at is None:
            at = index[item] = len(index)
            add_text(item[0])
            add_context(item[1])
            add_suffix(item[2])
        order.append(at)
    masked, result = masker.mask_texts(unique[0], unique[1], suffixes=unique[2])
    if len(order) == len(masked):
        return masked, result  # nothing recurred
    for at, times in Counter(order).items():
        if times > 1 and masked[at] != unique[0][at]:
            for token in TOKEN_RE.findall(masked[at]):
                if token in result.tokens:
                    result.counts[KIND_CATEGORIES[token_kind(token)]] += times - 1
    return [masked[at] for at in order], result


def _spliced(written: str, decoded: str, masked: str) -> str | None:
    """The string literal ``written`` (whose value is ``decoded``) with each token of ``masked`` in
    place of the text it replaced, every other character as the client wrote it (its escapes too:
    ``\\u00e9`` stays ``\\u00e9``); None where that is not needed (``_encode`` writes the literal as it
    was written) or not plainly so (the tokens do not line up with ``decoded``). The escapes are read,
    and offsets mapped back to the literal, as the scan reads them (scanner.unescape_once)."""
    if len(written) < 2 or written[0] != '"' or written[-1] != '"' or "\\" not in written:
        return None
    if _encode(decoded) == written:  # (the usual case: only the escapes _encode writes too)
        return None
    once = unescape_once(written[1:-1])
    if once is None or once[0] != decoded:
        return None
    level = once[1]
    out: list[str] = []
    position = 0  # in decoded
    written_at = 1  # in written, up to where it is copied
    tokens = list(TOKEN_RE.finditer(masked))
    done = 0  # in masked
    for n, token in enumerate(tokens):
        before = masked[done : token.start()]
        if not decoded.startswith(before, position):
            return None
        position += len(before)
        done = token.end()
        if decoded.startswith(token[0], position):  # (token-shaped text the client sent: kept)
            position += len(token[0])
            continue
        following = masked[token.end() : tokens[n + 1].start() if n + 1 < len(tokens) else len(masked)]
        if not following and n + 1 < len(tokens):
            return None  # (two tokens side by side: where one original ends is not plain)
        end = len(decoded) - len(following) if n + 1 == len(tokens) else decoded.find(following, position + 1)
        if end <= position:
            return None
        out += (written[written_at : 1 + level.source(position)], token[0])
        written_at = 1 + level.source(end)
        position = end
    if decoded[position:] != masked[done:]:
        return None
    out.append(written[written_at:])
    result = '"' + "".join(out)
    return result if json.loads(result) == masked else None


def _encode(value: str) -> str:
    """A JSON string literal. Lone surrogates cannot be UTF-8 encoded: such a string keeps them as
    ``\\u`` escapes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return encode_basestring_ascii(value)  # what json.dumps writes, without its call overhead
    return encode_basestring(value)


def _account_number(text: str) -> str | None:
    """A number's twelve digits if it is an integer of twelve digits however written
    (``483920175526.0``, ``4.83920175526e11``, ``-483920175526``: the reader sees the digits), else
    None."""
    if len(text) < 12 and not _EXPONENT.search(text):
        return None
    try:
        number = abs(Decimal(text))
    except ArithmeticError:  # an exponent past Decimal's range (1e999999999): no twelve digits
        return None
    if not number.is_finite() or not 10**11 <= number < 10**12 or number != number.to_integral_value():
        return None
    return str(int(number))


def _loose_account(text: str) -> str | None:
    """``_account_number`` of a string that is a number only as a reader reads it (``+483920175526``,
    ``0483920175526``, ``483,920,175,526``), else None."""
    if _LOOSE_NUMBER.fullmatch(text) is None:
        return None
    return _account_number(text.translate(_SEPARATORS))


def _decoded_text(data: str, media_type: str | None) -> str:
    """A text/plain document's text. Only UTF-8 is read: a document that declares another charset
    (UTF-16 is ASCII with NULs between the letters, which the scan would not see), or whose text holds
    a NUL, is refused."""
    charset = _charset(media_type)
    if charset not in ("", "utf-8", "utf8", "us-ascii", "ascii"):
        raise InvalidEncodingError(
            "a text/plain document declares a charset other than UTF-8; it cannot be masked and was not "
            "forwarded"
        )
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:  # (ValueError: a character outside ASCII in it)
        raise InvalidEncodingError(
            "a text/plain document's data is not UTF-8 text in base64; it was not forwarded"
        ) from exc
    if "\x00" in text:
        raise InvalidEncodingError(
            "a text/plain document's text holds NUL characters (UTF-16 or UTF-32?); it was not forwarded"
        )
    return text


def _charset(media_type: str | None) -> str:
    for param in (media_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'").lower()
    return ""


def _check_binary(data: str, kind: str, media: str, masker: Masker) -> None:
    """Refuse a base64 image or document unless its bytes begin as its media type's do and carry no
    identifier: text (or anything else) sent as an image would reach the upstream unread."""
    magic = _MAGIC.get((kind, media))
    if magic is None:
        raise OpaqueDataError(
            f"a base64 {kind} has a media type aws-masker does not know, so its data cannot be "
            "checked; it was not forwarded"
        )
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:  # (ValueError: a character outside ASCII in it)
        raise OpaqueDataError(f"a base64 {kind}'s data is not base64; it was not forwarded") from exc
    if not decoded.startswith(magic) or (media == "image/webp" and decoded[8:12] != b"WEBP"):
        raise OpaqueDataError(f"a base64 {kind}'s data is not what its media type says; it was not forwarded")
    _check_opaque(decoded, masker)


def _check_opaque(decoded: bytes, masker: Masker) -> None:
    """Refuse opaque data whose bytes, read as text, hold an identifier the catalogue masks (text
    after a genuine header, a signature that is base64 text): it cannot be masked in place."""
    if any(found.mask for found in masker.find(base64text.as_seen(decoded))):
        raise OpaqueDataError(
            "an image, document, signature or encrypted search result in the request carries an "
            "identifier inside its encoded data, which cannot be masked; it was not forwarded"
        )


def _loose_b64decode(value: str) -> bytes:
    """Base64 in either alphabet, padding optional (a base64-shaped value, see ``_base64ish``). Each
    run between padding is decoded, and the bytes joined, as a decoder that reads on past padding
    does (Python's stops at the first); a lone character at a run's end (6 bits) is dropped."""
    out = []
    for run in value.translate(_URLSAFE).split("="):
        run = run[: len(run) - (len(run) % 4 == 1)]
        out.append(base64.b64decode(run + "=" * (-len(run) % 4)))
    return b"".join(out)


def _media(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _pair_context(
    masker: Masker, containers: list[Container], index: int, key: str | None, value: str, values: list[str]
) -> str | None:
    """For the value member of a name/value pair object (``{"ParameterKey": "DBInstanceIdentifier",
    "ParameterValue": "x"}``, ``{"name": "DATA_BUCKET", "value": "x"}``, a tag's ``Key``/``Value``):
    the name its sibling gives it, as a key (``"DBInstanceIdentifier": ``), to stand in its context
    in place of its own key, so it gets the verdict it would get under that key (as scanner.py's
    paired view of pasted text). ``OutputValue`` is evidence of its own (a bucket-shaped output): it
    keeps its key unless the name finds more. An output of ``terraform output -json``
    (``"bucket_name": {"sensitive": false, "type": "string", "value": "x"}``) is named by its own key,
    a condition's value in ``aws sts decode-authorization-message`` output (``{"key": K, "values":
    {"items": [{"value": V}]}}``) by its condition key, a ``ResourceId`` by its object's
    ``ResourceType`` and a ``Name`` by a ``CreationDate`` (a bucket of ``list-buckets``), each put
    before it, wherever it stands."""
    container = containers[index]
    if key in _TYPED_IDS:  # AWS Config: "ResourceType": "AWS::Lambda::Function", "ResourceId": (any order)
        for type_key in ("ResourceType", "resourceType"):
            found = container.strings.get(type_key)
            if found:
                return _sibling_before(type_key, values[found[-1]], key)
    if key == "Name":  # list-buckets: {"CreationDate": ..., "Name": ...}, in either order
        found = container.strings.get("CreationDate")
        if found and _BUCKET_ITEM_KEYS.issuperset(container.strings):  # (not an AMI's Name)
            return _sibling_before("CreationDate", values[found[-1]], key)
    if key == "value" and container.key is not None and "type" in container.strings:
        return _quoted(container.key) + ": "
    if key == "value" and container.parent >= 0:  # decode-authorization-message: {"key": K, "values":
        items = containers[container.parent]  # {"items": [{"value": V}]}}: named by K
        values_object = containers[items.parent] if items.key == "items" and items.parent >= 0 else None
        if values_object is not None and values_object.key == "values" and values_object.parent >= 0:
            condition_key = containers[values_object.parent].strings.get("key")
            if condition_key and PAIR_NAME.fullmatch(values[condition_key[-1]]):
                return _quoted(values[condition_key[-1]]) + ": "
    names = _PAIR_NAMES.get(key) if key is not None else None
    if names is None:
        return None
    for name_key in names:
        found = container.strings.get(name_key)
        if found:
            name = values[found[-1]]
            if not PAIR_NAME.fullmatch(name):
                return None
            named = _quoted(name) + ": "
            if key == "OutputValue" and not any(
                f.mask and f.end > len(named) for f in masker.find(named + '"' + value + '"')
            ):
                return None
            return named
    return None


def _sibling_before(sibling: str, value: str, key: str) -> str:
    """The context of ``key``'s value with a sibling member put before it, wherever that stands:
    ``"<sibling>": "<value>", "<key>": ``."""
    return _quoted(sibling) + ": " + _quoted(value) + ", " + _quoted(key) + ": "


def _quoted(key: str) -> str:
    """A key as it goes into the contexts of values: its last ``_KEY_CONTEXT`` characters, so that a
    long key over many values (or a long container key over many members) adds a bounded amount of
    context to each, and masking stays linear in the body. (The key itself is scanned whole, as a
    literal of its own.)"""
    return encode_basestring(key[-_KEY_CONTEXT:])


def _outer(containers: list[Container], index: int) -> str:
    """What stood before the values of ``containers[index]`` in the serialized document: its own key
    (``"Owner": {``), so rules that need the enclosing key see it. A list under a key of ``_LIFTED``
    (``"OwnerId": {"enum": [``) gets its object's key, as its items' value (``"OwnerId": ``)."""
    container = containers[index]
    if container.key is None:
        return ""
    if not container.is_object and container.key in _LIFTED and container.parent >= 0:
        holder = containers[container.parent]
        if holder.key is not None:
            return _quoted(holder.key) + ": "
    return _quoted(container.key) + ": " + ("{" if container.is_object else "[")


def _ambiguous(key: str) -> InvalidEncodingError:
    """A text-bearing member written twice with different values where the text runs on from and into
    its neighbours: which copy the API reads decides what the model reads joined, so the joins cannot
    all be masked."""
    return InvalidEncodingError(
        f'a message or content block has its "{key}" member twice, with different values; it was '
        "not forwarded"
    )


def _base64ish(value: str) -> bool:
    return _BASE64ISH.fullmatch(value) is not None


class _Positions:
    """Where literals stand in a Messages request."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def _type(self, index: int) -> str | None:
        """The ``type`` of an object: its one value (None if absent, not a string, or two differ)."""
        return self._member(index, "type")

    def _member(self, index: int, key: str) -> str | None:
        found = self.doc.containers[index].strings.get(key)
        if not found:
            return None
        values = {self.doc.values[i] for i in found}
        return values.pop() if len(values) == 1 else None

    def is_block(self, index: int) -> bool:
        """Is container ``index`` a content block where the API reads one: in a message's content
        list, the system list, the content list of a tool_result block that is itself one, or the
        content list of a document block's ``content`` source (text and images) where the document is
        one. Nested past ``_MAX_BLOCK_DEPTH``: taken as one (its base64 data is checked, not passed)."""
        containers = self.doc.containers
        for _ in range(_MAX_BLOCK_DEPTH):
            block = containers[index]
            if not block.is_object or block.key is not None or block.parent < 0:
                return False
            holder = containers[block.parent]  # the list the block is in
            if holder.is_object or holder.parent < 0:
                return False
            owner = containers[holder.parent]
            if holder.key == "system" and owner.parent < 0:
                return owner.is_object
            if holder.key != "content":
                return False
            if owner.key is None and owner.parent >= 0:
                messages = containers[owner.parent]
                if messages.key == "messages" and not messages.is_object and messages.parent >= 0:
                    root = containers[messages.parent]
                    if root.parent < 0 and root.is_object:
                        return True
            if owner.key == "source" and owner.parent >= 0 and containers[owner.parent].is_object:
                index = owner.parent  # a document's content source: is the document a block?
                continue
            if self._type(holder.parent) != "tool_result":
                return False
            index = holder.parent  # is the tool_result a block?
        return True  # nested past the bound: what the API would decode there is checked all the same

    def exemption(self, i: int) -> str | None:
        """For a string value: "binary" (an image's or binary document's data),
        "opaque" (a signature), "text-document" (a text/plain document's data) or None (an ordinary
        value)."""
        containers = self.doc.containers
        index = self.doc.owners[i]
        if index < 0:
            return None
        node = containers[index]
        if not node.is_object:
            return None
        key = self.doc.keys[i]
        if key == "data" and node.key == "source" and self._type(index) != "text":
            # base64 data (or data claimed so by a duplicated or odd source type): what the API
            # decodes, so the bytes are checked; a text source's data is ordinary text
            block = node.parent
            if containers[block].is_object and self.is_block(block):
                kind = self._type(block)
                if kind == "document" and _media(self._member(index, "media_type")) == _TEXT_MEDIA:
                    return "text-document"
                if kind in ("document", "image") or (kind is None and "type" in containers[block].strings):
                    return "binary"  # (two types: refused as of no known media type)
            return None
        if (
            (key, self._type(index)) in (("signature", "thinking"), ("data", "redacted_thinking"))
            and _base64ish(self.doc.values[i])
            and self.is_block(index)
        ):
            return "opaque"
        return None

    def media_type(self, i: int) -> str | None:
        """For the data of a block's source: the source's media type as written (parameters too)."""
        return self._member(self.doc.owners[i], "media_type")

    def source_types(self, i: int) -> tuple[str, str]:
        """For the data of a block's source: the block's type and the source's media type."""
        index = self.doc.owners[i]
        block = self.doc.containers[index].parent
        return self._type(block) or "", _media(self._member(index, "media_type"))

    def text_runs(self) -> list[list[int]]:
        """Runs of text the model reads as one, as literal indices in reading order: the text of
        adjacent blocks (text blocks' ``text``, plain strings, a ``tool_result``'s content in its
        place) of a message's content, of consecutive messages of one role (the API merges them into
        one turn), and of ``system``; and the text blocks of a ``document``'s content source or of a
        ``search_result``, each a run of its own. Thinking blocks are passed over (the API drops
        them from earlier turns); any other block (an image, a tool_use) ends a run."""
        doc = self.doc
        containers = doc.containers
        if not containers or not containers[0].is_object:
            return []
        items: dict[int, list[tuple[int, int]]] = {}  # list container -> (place, +literal / ~container)
        under: dict[tuple[int, str | None], list[int]] = {}  # (object, key) -> its container values
        owners = doc.owners
        for i, place in doc.positions.items():  # the literals in lists
            items.setdefault(owners[i], []).append((place, i))
        for c, container in enumerate(containers):
            if container.parent < 0:
                continue
            if containers[container.parent].is_object:
                under.setdefault((container.parent, container.key), []).append(c)
            else:
                items.setdefault(container.parent, []).append((container.position, ~c))
        for listed in items.values():
            listed.sort()
        runs: list[list[int]] = []
        run: list[int] = []

        def cut() -> None:
            if len(run) > 1:
                runs.append(list(run))
            run.clear()

        def content(holder: int, key: str, depth: int, joins: bool = False) -> None:
            """The text of ``holder``'s ``key`` (a string, or a list of blocks), onto the run.
            ``joins``: the text runs on from the text before the holder and into the text after it
            (a message's or a tool_result's content)."""
            strings = containers[holder].strings.get(key, ())
            lists = under.get((holder, key), ())
            if joins and len(strings) + len(lists) > 1:
                if lists or len({doc.values[i] for i in strings}) > 1:
                    raise _ambiguous(key)
                strings = strings[:1]  # copies of one string: read once
            for i in strings:
                run.append(i)
            for c in lists:
                if containers[c].is_object or depth > _MAX_BLOCK_DEPTH:
                    cut()
                    continue
                for _, item in items.get(c, ()):
                    if item >= 0:
                        if doc.kinds[item] == NUMBER:
                            cut()
                        else:
                            run.append(item)
                        continue
                    block = ~item
                    kind = self._type(block) if containers[block].is_object else None
                    if kind is None and containers[block].is_object:
                        types = {doc.values[i] for i in containers[block].strings.get("type", ())}
                        if len(types) > 1 and types & _TEXT_TYPES:
                            raise _ambiguous("type")
                    if kind == "text":
                        texts = containers[block].strings.get("text", ())
                        if len({doc.values[i] for i in texts}) > 1 or under.get((block, "text")):
                            raise _ambiguous("text")
                        if texts:
                            run.append(texts[0])
                        else:
                            cut()
                    elif kind == "tool_result":
                        content(block, "content", depth + 1, joins=True)
                    elif kind in ("document", "search_result"):  # text blocks of their own
                        cut()
                        holders = [block] if kind == "search_result" else under.get((block, "source"), [])
                        for holder in holders:
                            if containers[holder].is_object and depth < _MAX_BLOCK_DEPTH:
                                content(holder, "content", depth + 1)
                            cut()
                    elif kind not in _UNREAD_TYPES:
                        cut()

        content(0, "system", 0)
        cut()
        for messages in under.get((0, "messages"), ()):
            roles: set[str] = set()
            for _, item in items.get(messages, ()):
                message = ~item if item < 0 else -1
                if message < 0 or not containers[message].is_object:
                    cut()
                    roles = set()
                    continue
                # (a duplicated role joins both ways: which one the API keeps is not ours to guess)
                this = {doc.values[i] for i in containers[message].strings.get("role", ())}
                if not this & roles:
                    cut()
                roles = this
                content(message, "content", 0, joins=True)
            cut()
        return runs


def _mask_runs(
    masker: Masker,
    runs: list[list[int]],
    originals: list[str],
    masked: list[str],
    contexts: list[str],
    suffixes: list[str],
    result: MaskResult,
) -> MaskResult:
    """Mask each run of text the model reads as one (text indices in reading order; ``masked`` holds
    each part masked alone) as one text too, and share the result back out to its parts: every
    character stays in its part, and a token goes where its identifier began (an identifier cut
    across two parts is masked whole in the first, and the second goes on after it). The restore
    gives back the joined original.

    The joined originals are masked; where that changes a run (most runs it does not: one more scan
    of their text), each of its parts is then masked alone again, because joined, an identifier whole
    in one part can run on into the next (``i-0123456789abcdef0`` + ``1 more``) and no longer match.
    (The parts alone first would not do: the head of a split identifier can be one of its own,
    ``i-01234567`` + ``89abcdef0``, and leave the tail.) A name found only joined (its key in one
    part, the name in the next) is echoed in every string. Returns the request's result with the
    tokens, counts and names added."""
    joined_first, whole = _joined(masker, runs, originals, contexts, suffixes, result.tokens)
    changed = [r for r, ks in enumerate(runs) if joined_first[r] != [masked[k] for k in ks]]
    final = whole
    if changed:
        flat = [k for r in changed for k in runs[r]]
        alone, final = masker.mask_texts(
            [part for r in changed for part in joined_first[r]],
            [contexts[k] for k in flat],
            suffixes=[suffixes[k] for k in flat],
            issued=whole.tokens,
        )
        tokens = final.tokens
        counts = result.counts
        for k, part in zip(flat, alone, strict=True):
            counts.subtract(_categories(masked[k], tokens))
            counts.update(_categories(part, tokens))
            masked[k] = part
        if result.names:  # the names the parts alone gave, where joining lengthened them
            echoed = echo.echo([masked[k] for k in flat], result.names, [[] for _ in flat], counts)
            for k, part in zip(flat, echoed, strict=True):
                masked[k] = part
        final.names = {**whole.names, **final.names}
    final.counts = +result.counts
    final.collisions += result.collisions + (whole.collisions if changed else 0)
    fresh = {name: entry for name, entry in final.names.items() if name not in result.names}
    if fresh:
        masked[:] = echo.echo(masked, fresh, [[] for _ in masked], final.counts)
    final.names = {**fresh, **result.names}
    return final


_JOIN_WINDOW = 96
"""How far past the part on either side of an ambiguous join the parts are joined again
(``_mask_word_joins``): room for an identifier and the words that give it away."""


def _word_char(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _mask_word_joins(
    masker: Masker,
    runs: list[list[int]],
    masked: list[str],
    contexts: list[str],
    suffixes: list[str],
    result: MaskResult,
) -> MaskResult:
    """Where a part ending in a letter or digit is followed by one beginning with one, the run joined
    reads the two as one word, and a rule whose evidence ends (or whose identifier begins) right there
    no longer matches: "the tfstate" + "-" + "7731 bucket" + "role ..." reads "bucketrole". So at each
    such join the parts that end there, and the parts that begin there (each with up to
    ``_JOIN_WINDOW`` more characters of their neighbours), are masked as runs of their own too, from
    what the runs left. The windows are scanned together first; only one that finds something is
    masked (most find nothing). Linear: every window is bounded beyond its own part."""
    windows: list[list[int]] = []
    for ks in runs:
        last = len(ks) - 1
        for p in range(last):
            if not (_word_char(masked[ks[p]][-1:]) and _word_char(masked[ks[p + 1]][:1])):
                continue
            start, size = p, 0
            while start > 0 and size < _JOIN_WINDOW:  # the parts that end at the join
                start -= 1
                size += len(masked[ks[start]])
            if start < p:
                windows.append(ks[start : p + 1])
            end, size = p + 1, 0
            while end < last and size < _JOIN_WINDOW:  # the parts that begin there
                end += 1
                size += len(masked[ks[end]])
            if end > p + 1:
                windows.append(ks[p + 1 : end + 1])
    if not windows:
        return result
    texts = ["".join(masked[k] for k in window) for window in windows]
    again, _ = masker.mask_texts(
        texts,
        [contexts[window[0]] for window in windows],
        suffixes=[suffixes[window[-1]] for window in windows],
        issued=result.tokens,
    )
    for window, before, after in zip(windows, texts, again, strict=True):
        if after != before:
            result = _mask_runs(masker, [window], list(masked), masked, contexts, suffixes, result)
    return result


def _categories(text: str, tokens: dict[str, str]) -> list[str]:
    """The category of each token of this request in ``text``."""
    return [KIND_CATEGORIES[token_kind(token)] for token in TOKEN_RE.findall(text) if token in tokens]


def _joined(
    masker: Masker,
    runs: list[list[int]],
    texts: list[str],
    contexts: list[str],
    suffixes: list[str],
    issued: dict[str, str],
) -> tuple[list[list[str]], MaskResult]:
    """Each run's parts of ``texts`` joined (with the first part's context and the last part's
    suffix), masked, and cut back into parts."""
    joined = ["".join(texts[k] for k in ks) for ks in runs]
    again, result = masker.mask_texts(
        joined, [contexts[ks[0]] for ks in runs], suffixes=[suffixes[ks[-1]] for ks in runs], issued=issued
    )
    out: list[list[str]] = []
    for ks, before, after in zip(runs, joined, again, strict=True):
        parts = [texts[k] for k in ks]
        if after != before:
            bounds = list(itertools.accumulate(map(len, parts[:-1])))
            split = _split_masked(before, after, bounds, result.tokens)
            # (None: an identifier written with escapes, its text is not its value)
            parts = split if split is not None else [after] + [""] * (len(ks) - 1)
        out.append(parts)
    return out, result


def _split_masked(joined: str, masked: str, bounds: list[int], tokens: dict[str, str]) -> list[str] | None:
    """``masked`` (``joined`` with identifiers replaced by ``tokens``) cut where ``joined`` was cut
    (``bounds``), or None if the two cannot be aligned. One step per token, not per character."""
    parts: list[list[str]] = [[] for _ in range(len(bounds) + 1)]
    edges = [0, *bounds, len(joined)]

    def plain(start: int, text: str) -> None:  # joined[start:start + len(text)] == text
        end = start + len(text)
        for p in range(bisect_right(bounds, start), len(parts)):
            lo, hi = max(start, edges[p]), min(end, edges[p + 1])
            if lo >= end:
                break
            parts[p].append(text[lo - start : hi - start])

    i = j = 0  # where masked and joined are aligned
    for m in TOKEN_RE.finditer(masked):
        original = tokens.get(m.group())
        if original is None:
            continue  # token-shaped text the client sent: plain text
        gap = masked[i : m.start()]
        at = j + len(gap)
        if joined[j:at] != gap:
            return None
        if joined[at : at + len(original)] != original:
            if joined.startswith(m.group(), at):
                continue  # a token the parts already had: plain text
            return None
        plain(j, gap)
        parts[bisect_right(bounds, at)].append(m.group())
        i, j = m.end(), at + len(original)
    if joined[j:] != masked[i:]:
        return None
    plain(j, masked[i:])
    return ["".join(part) for part in parts]
