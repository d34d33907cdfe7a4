"""JSON-aware masking of an Anthropic Messages request.

Every string in the document is masked (keys too: tool inputs are free-form), except the few that
are opaque by contract and would break the request if changed:

- top-level ``model``;
- ``data`` of a base64 source (``{"type": "base64", "media_type": ..., "data": ...}``);
- ``signature`` of a ``thinking`` block and ``data`` of a ``redacted_thinking`` block (the API
  verifies them; tokens are deterministic, so restored thinking re-masks to the same text).

The walk is iterative (no recursion limit) and linear in the document size. Output is compact JSON
with non-ASCII kept as is.
"""

from __future__ import annotations

import json
from typing import Any

from .engine import Masker, MaskResult

_SKIP_BY_TYPE: dict[str, frozenset[str]] = {
    "base64": frozenset({"data"}),
    "thinking": frozenset({"signature"}),
    "redacted_thinking": frozenset({"data"}),
}
_TOP_LEVEL_SKIP = frozenset({"model"})


class _Slot:
    """A string's place in the document: a list index, a dict value, or a dict key."""

    __slots__ = ("container", "is_key", "key")

    def __init__(self, container: Any, key: Any, is_key: bool = False) -> None:
        self.container = container
        self.key = key
        self.is_key = is_key


def mask_document(doc: Any, masker: Masker) -> tuple[Any, MaskResult]:
    """Mask every maskable string of a parsed JSON document in place (returns the new root)."""
    root = [doc]
    slots: list[_Slot] = []
    texts: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, top = stack.pop()
        if isinstance(node, dict):
            skip = (
                _SKIP_BY_TYPE.get(node.get("type"), frozenset())
                if isinstance(node.get("type"), str)
                else frozenset()
            )
            if top:
                skip = skip | _TOP_LEVEL_SKIP
            for key, value in node.items():
                if key in skip:
                    continue
                if isinstance(value, str):
                    slots.append(_Slot(node, key))
                    texts.append(value)
                elif isinstance(value, (dict, list)):
                    stack.append((value, False))
            for key in node:
                slots.append(_Slot(node, key, is_key=True))
                texts.append(key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, str):
                    slots.append(_Slot(node, i))
                    texts.append(value)
                elif isinstance(value, (dict, list)):
                    stack.append((value, node is root))
    masked, result = masker.mask_texts(texts)
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


def dumps(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
