"""JSON-aware masking of an Anthropic Messages request.

Every string in the document is masked (keys too: tool inputs are free-form), except the few that
are opaque by contract and would break the request if changed:

- top-level ``model``;
- ``data`` of a base64 ``source`` (``"source": {"type": "base64", "media_type": ..., "data": ...}``);
- ``signature`` of a ``thinking`` block and ``data`` of a ``redacted_thinking`` block in a
  ``content`` list (the API verifies them; tokens are deterministic, so restored thinking re-masks
  to the same text).

Those exemptions hold only where the Messages API puts those objects: the same shapes inside a tool
input are masked like any other value. Token-shaped text inside exempt strings is still reserved,
so no real identifier can be issued a token that already appears there.

Each value is scanned together with its key (as ``"key": "``), so rules that need a key see it in
structured input too. The walk is iterative (no recursion limit) and linear in the document size.
Output is compact JSON with non-ASCII kept as is.
"""

from __future__ import annotations

import json
from typing import Any

from .engine import Masker, MaskResult

# (enclosing key, block type) -> keys left alone
_SKIP_BY_TYPE: dict[tuple[str, str], frozenset[str]] = {
    ("source", "base64"): frozenset({"data"}),
    ("content", "thinking"): frozenset({"signature"}),
    ("content", "redacted_thinking"): frozenset({"data"}),
}
_TOP_LEVEL_SKIP = frozenset({"model"})


class _Slot:
    """A string's place in the document: a list index, a dict value, or a dict key."""

    __slots__ = ("container", "is_key", "key")

    def __init__(self, container: Any, key: Any, is_key: bool = False) -> None:
        self.container = container
        self.key = key
        self.is_key = is_key


def _context(key: str | None, opening: str) -> str:
    """The text that stood before a value in the serialized document: the key, then ``opening`` (``"``
    for a string value, ``["`` for a list element, ``[{`` for a dict in a list), so rules that need
    a key (``"OwnerId": "123456789012"``) see it."""
    if key is None:
        return ""
    return json.dumps(key, ensure_ascii=False) + ": " + opening


def mask_document(doc: Any, masker: Masker) -> tuple[Any, MaskResult]:
    """Mask every maskable string of a parsed JSON document in place (returns the new root).

    12-digit integers under a key that makes them account IDs (``"AccountId": 123456789012``) are
    masked too; they become token strings.
    """
    root = [doc]
    slots: list[_Slot] = []
    texts: list[str] = []
    contexts: list[str] = []
    exempt: list[str] = []
    # (node, is the document root, nearest enclosing key, is a list element)
    stack: list[tuple[Any, bool, str | None, bool]] = [(root, False, None, False)]
    while stack:
        node, top, near_key, in_list = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            skip = _SKIP_BY_TYPE.get((near_key, kind), frozenset()) if isinstance(kind, str) else frozenset()
            if top:
                skip = skip | _TOP_LEVEL_SKIP
            for key, value in node.items():
                if key in skip:
                    if isinstance(value, str):
                        exempt.append(value)
                    continue
                if isinstance(value, str) or _maybe_account(value):
                    slots.append(_Slot(node, key))
                    texts.append(str(value))
                    # the enclosing key too: "Owner": {"ID": "..., "Buckets": [{"Name": "...
                    outer = _context(near_key, "[{" if in_list else "{")
                    contexts.append(outer + _context(key, '"'))
                elif isinstance(value, (dict, list)):
                    stack.append((value, False, key, False))
            for key in node:
                slots.append(_Slot(node, key, is_key=True))
                texts.append(key)
                contexts.append("")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str) or _maybe_account(value):
                    slots.append(_Slot(node, i))
                    texts.append(str(value))
                    contexts.append(_context(near_key, '["'))
                elif isinstance(value, (dict, list)):
                    stack.append((value, node is root, near_key, True))
    masked, result = masker.mask_texts(texts, contexts, reserve_from=exempt)
    renamed: dict[int, list[tuple[str, str]]] = {}
    for slot, before, after in zip(slots, texts, masked, strict=True):
        if before is after or before == after:
            continue
        if slot.is_key:
            renamed.setdefault(id(slot.container), []).append((before, after))
        else:
            slot.container[slot.key] = after
    if renamed:
        _rename_keys(root, renamed)
    return root[0], result


def _maybe_account(value: Any) -> bool:
    return type(value) is int and 10**11 <= value < 10**12


def _rename_keys(root: list[Any], renamed: dict[int, list[tuple[str, str]]]) -> None:
    """Rebuild the dicts whose keys were masked, keeping key order."""
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, child in list(items):
            if isinstance(child, dict):
                changes = renamed.get(id(child))
                if changes:
                    mapping = dict(changes)
                    new = {mapping.get(key, key): value for key, value in child.items()}
                    node[k] = new
                    child = new
                stack.append(child)
            elif isinstance(child, list):
                stack.append(child)


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON. Lone surrogates (from "\\ud83d" escapes) cannot be UTF-8 encoded, so such a
    document is written with ASCII escapes instead."""
    try:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")
