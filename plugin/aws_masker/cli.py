"""The ``aws-masker`` command.

    aws ec2 describe-instances | aws-masker mask      # see exactly what would leave the building
    aws-masker mask --save-map m.json < in > masked   # ... and keep the token map
    aws-masker unmask --map m.json < answer           # put the originals back (JSON, SSE, text)
    aws-masker gateway --config kong.yml              # the local Kong stand-in
    aws-masker stub                                   # a Claude stand-in upstream
    aws-masker up                                     # plugin server + gateway (+ stub) in one go
    aws-masker monitor                                # watch masking live (--once: one snapshot)

Subcommands that need the gateway import it lazily, so ``mask`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .body import mask_request, restore_body
from .config import CATEGORY_TOGGLES, MaskerConfig
from .engine import Masker
from .errors import MaskerError
from .tokens import TOKEN_RE

SECRET_ENV = "AWS_MASKER_TOKEN_SECRET"


def _mask(args: argparse.Namespace) -> int:
    disabled = set(args.disable or ())
    unknown = disabled - set(CATEGORY_TOGGLES.values())
    if unknown:
        print(f"aws-masker: unknown category: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    toggles = {field: cat not in disabled for field, cat in CATEGORY_TOGGLES.items()}
    config = MaskerConfig(
        **toggles, allow_list=tuple(args.allow or ()), token_secret=os.environ.get(SECRET_ENV) or None
    )
    data = sys.stdin.buffer.read()
    masker = Masker(config)
    try:
        if args.format == "text":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                print("aws-masker: input is not valid UTF-8; nothing was written", file=sys.stderr)
                return 1
            masked_text, result = masker.mask_text(text)
            masked = masked_text.encode("utf-8")
        else:
            masked, result = mask_request(data, masker)
    except MaskerError as exc:
        print(f"aws-masker: cannot mask input ({exc.message}); nothing was written", file=sys.stderr)
        return 1
    if args.save_map:
        try:
            _write_private(args.save_map, json.dumps(result.tokens, ensure_ascii=False, indent=1) + "\n")
        except OSError as exc:
            print(
                f"aws-masker: cannot write {args.save_map}: {exc.strerror}; nothing was written",
                file=sys.stderr,
            )
            return 1
    sys.stdout.buffer.write(masked)
    sys.stdout.flush()
    if not args.quiet:
        parts = ", ".join(
            f"{cat} {n}" for cat, n in sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        summary = f"masked {result.total} identifiers ({len(result.tokens)} unique)"
        print(f"aws-masker: {summary}{': ' + parts if parts else ''}", file=sys.stderr)
    return 0


def _write_private(path: str, text: str) -> None:
    """The token map holds the originals: readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def _unmask(args: argparse.Namespace) -> int:
    try:
        with open(args.map, encoding="utf-8") as f:
            tokens = json.load(f)
    except OSError as exc:
        print(f"aws-masker: cannot read {args.map}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError:
        print(f"aws-masker: {args.map} is not a token map (JSON object)", file=sys.stderr)
        return 1
    if not isinstance(tokens, dict) or not all(
        isinstance(k, str) and TOKEN_RE.fullmatch(k) and isinstance(v, str) for k, v in tokens.items()
    ):
        print(f"aws-masker: {args.map} is not a token map (token -> original)", file=sys.stderr)
        return 1
    data = sys.stdin.buffer.read()
    content_type = {"json": "application/json", "sse": "text/event-stream", "text": "text/plain"}.get(
        args.format
    ) or _sniff(data)
    restored = restore_body(data, tokens, content_type)
    sys.stdout.buffer.write(restored)
    sys.stdout.flush()
    return 0


def _sniff(data: bytes) -> str:
    """``auto``: an event stream starts with an SSE field, JSON with a bracket; anything else is text."""
    head = data.lstrip()[:16]
    if head.startswith((b"event:", b"data:", b"id:", b":")):
        return "text/event-stream"
    return "application/json" if head.startswith((b"{", b"[")) else "text/plain"


# Subcommands implemented elsewhere; they parse their own arguments.
DELEGATED: dict[str, tuple[str, str, str]] = {
    "gateway": ("aws_masker_gateway.cli", "gateway_main", "run the local Kong stand-in"),
    "stub": ("aws_masker_stack.stub", "stub_main", "run the Claude stand-in upstream"),
    "up": ("aws_masker_stack.up", "up_main", "start the whole local stack"),
    "subscriber": ("aws_masker_subscriber.cli", "subscriber_main", "run the monitoring-event subscriber"),
    "monitor": ("aws_masker_subscriber.monitor.cli", "monitor_main", "watch masking live in the terminal"),
}


def _delegated(name: str) -> Callable[[list[str]], int]:
    import importlib

    module, func, _help = DELEGATED[name]
    return getattr(importlib.import_module(module), func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-masker",
        description="Mask AWS identifiers before they reach Claude, and run the local gateway stack.",
        epilog="examples:\n" + __doc__.split("\n\n")[1].rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    mask = sub.add_parser(
        "mask",
        help="mask AWS identifiers in stdin and write the result to stdout",
        description=(
            "Reads stdin, writes the masked text to stdout and a per-category count to stderr. "
            f"Tokens are stable across runs when ${SECRET_ENV} is set."
        ),
    )
    mask.add_argument(
        "--format",
        choices=("auto", "text"),
        default="auto",
        help="auto: in a JSON document only the strings that hold identifiers change (numbers, spacing "
        "and key order stay as written; default); text: mask the bytes as plain text",
    )
    mask.add_argument(
        "--disable",
        action="append",
        metavar="CATEGORY",
        help=f"leave a category unmasked (repeatable): {', '.join(CATEGORY_TOGGLES.values())}",
    )
    mask.add_argument(
        "--allow", action="append", metavar="VALUE", help="never mask this exact value (repeatable)"
    )
    mask.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    mask.add_argument(
        "--save-map",
        metavar="FILE",
        help="write this run's token map (token -> original, JSON, mode 0600) for `aws-masker unmask`",
    )
    mask.set_defaults(func=_mask)

    unmask = sub.add_parser(
        "unmask",
        help="restore the originals in stdin with a token map (the gateway's restore, offline)",
        description=(
            "Reads an answer on stdin and writes it with this map's tokens restored; other tokens are "
            "left as they are. JSON gets JSON-escaped originals, an event stream is restored event "
            "by event exactly as the gateway's restore plugin does it."
        ),
    )
    unmask.add_argument("--map", required=True, metavar="FILE", help="token map from `mask --save-map`")
    unmask.add_argument(
        "--format",
        choices=("auto", "json", "sse", "text"),
        default="auto",
        help="how to read stdin (default: auto, from its first bytes)",
    )
    unmask.set_defaults(func=_unmask)

    for name, (_module, _func, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    if argv and argv[0] in DELEGATED:
        return int(_delegated(argv[0])(argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
