#!/usr/bin/env python3
"""Generate plugin/aws_masker/data/cli_shapes.json from botocore's service models (development time).

The AWS CLI's ``--output text`` prints each structure as one line: the name of the key that holds it,
in capitals, then the values of its scalar members sorted by member name (cliformats.py). To map those
values back to their member names, the engine needs each structure's members in that order, with
their types (booleans, numbers, timestamps and ARNs pin the alignment down). Only structures with a
member whose name gives a value context (an account, owner, RDS identifier, secret, token or bucket
key: the catalogue's own key rules decide, by probing them) are kept, which keeps the file small.

    pip install botocore   # or: pip install -e '.[shapes]'
    python scripts/gen_cli_shapes.py

The file records the botocore version it was made from. Regenerate it when the catalogue gains a key
rule or a rule changes: the file records a fingerprint of the catalogue it was made from, and
tests/test_cliformats.py fails until it is made again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "plugin" / "aws_masker" / "data" / "cli_shapes.json"

sys.path.insert(0, str(ROOT / "plugin"))

from aws_masker.cliformats import catalogue_fingerprint, member_gives_context  # noqa: E402


def _code(name: str, shape: dict) -> str:
    kind = shape["type"]
    if kind == "boolean":
        return "b"
    if kind in ("integer", "long", "float", "double", "bigdecimal"):
        return "i"
    if kind == "timestamp":
        return "t"
    if kind == "string" and name.endswith("Arn") and "enum" not in shape:
        return "a"
    return "s"


def main() -> None:
    import botocore
    from botocore.loaders import create_loader

    loader = create_loader()
    structs: dict[str, int] = {}  # encoded member list -> index
    named: dict[str, dict[str, list[int]]] = {}  # NAME -> {member name: [struct indexes]}
    scalar_lists: dict[str, set[str]] = {}  # NAME -> member names of lists of scalars
    top: set[int] = set()

    def struct_id(shapes: dict, shape_name: str, parent: str) -> int | None:
        members = shapes[shape_name].get("members", {})
        scalars = []
        flagged = False
        for name in sorted(members):
            target = shapes[members[name]["shape"]]
            if target["type"] in ("structure", "list", "map"):
                continue
            interesting = member_gives_context(parent, name)
            flagged |= interesting
            code = _code(name, target)
            scalars.append((code.upper() if interesting else code) + name)
        if not flagged:
            return None
        key = "|".join(scalars)
        return structs.setdefault(key, len(structs))

    for service in loader.list_available_services("service-2"):
        model = loader.load_service_model(service, "service-2")
        shapes = model["shapes"]
        for operation in model["operations"].values():
            output = operation.get("output", {}).get("shape")
            if output:
                sid = struct_id(shapes, output, "")
                if sid is not None:
                    top.add(sid)
        for shape in shapes.values():
            if shape["type"] != "structure":
                continue
            for member, ref in shape.get("members", {}).items():
                target = shapes[ref["shape"]]
                if target["type"] == "list":
                    element = shapes[target["member"]["shape"]]
                    if element["type"] == "structure":
                        sid = struct_id(shapes, target["member"]["shape"], member)
                    elif element["type"] not in ("list", "map"):
                        if member_gives_context("", member):
                            scalar_lists.setdefault(member.upper(), set()).add(member)
                        continue
                    else:
                        continue
                elif target["type"] == "structure":
                    sid = struct_id(shapes, ref["shape"], member)
                else:
                    continue
                if sid is not None:
                    ids = named.setdefault(member.upper(), {}).setdefault(member, [])
                    if sid not in ids:
                        ids.append(sid)
    data = {
        "botocore": botocore.__version__,
        "catalogue": catalogue_fingerprint(),
        "structs": list(structs),
        "named": {k: {m: sorted(ids) for m, ids in sorted(v.items())} for k, v in sorted(named.items())},
        "scalar_lists": {k: sorted(v) for k, v in sorted(scalar_lists.items())},
        "top": sorted(top),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")
    print(
        f"{OUT.relative_to(ROOT)}: {len(structs)} structures, {len(named)} names, {OUT.stat().st_size} bytes"
    )


if __name__ == "__main__":
    main()
