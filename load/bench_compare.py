"""Side by side: the masking engine of another revision against this checkout's, in one process.

``make bench-compare`` (``BASE=<git revision>``; by default 94da8f4, the engine from before the
hardening work of issue 10) exports that revision's ``plugin/aws_masker`` under another package name
(the package imports itself relatively, so it runs as it was) and masks the bench inputs of
``bench_engine.py`` (the 8 KB prompt, the 1 MB dump) with both engines, round by round, a fresh Masker
per call (as bench-engine's "mask" rows). Both run in one process, interleaved, so a machine that
speeds up or slows down during the run moves both alike. It prints the medians and their ratio and
writes nothing: the numbers go into docs/benchmarks.md by hand, with the date and the machine.
"""

from __future__ import annotations

import argparse
import importlib
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench_engine import SECRET, cli_dump, interleaved, prompt_8k
from benchlib import machine

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "94da8f4"
BASE_PACKAGE = "aws_masker_base"


def export_engine(revision: str, into: Path) -> None:
    """``plugin/aws_masker`` of ``revision`` as the package ``aws_masker_base`` under ``into``."""
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", revision, "plugin/aws_masker"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"bench-compare: cannot export {revision!r}: {exc.stderr.decode().strip()}") from exc
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # (Python 3.10.12 and later)
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - older Pythons: git's own archive of this repository
            tar.extractall(into)
    (into / "plugin" / "aws_masker").rename(into / BASE_PACKAGE)
    for path in (into / BASE_PACKAGE).glob("*.py"):
        source = path.read_text()
        if "import aws_masker" in source or "from aws_masker" in source:
            raise SystemExit(f"bench-compare: {revision}'s {path.name} imports aws_masker by name")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help=f"git revision to compare with (default {DEFAULT_BASE})"
    )
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--quick", action="store_true", help="two rounds of a few calls (a smoke test)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        export_engine(args.base, Path(tmp))
        sys.path.insert(0, tmp)
        try:
            base_engine = importlib.import_module(f"{BASE_PACKAGE}.engine")
            base_config = importlib.import_module(f"{BASE_PACKAGE}.config")
        finally:
            sys.path.remove(tmp)
        engines = {
            args.base: lambda: base_engine.Masker(base_config.MaskerConfig(token_secret=SECRET)),
            "this checkout": lambda: Masker(MaskerConfig(token_secret=SECRET)),
        }
        inputs = {"8 KB prompt": (prompt_8k(), 200), "1 MB dump": (cli_dump(1_000_000), 4)}  # (per round)
        rounds = 2 if args.quick else args.rounds
        print(f"bench-compare: {machine()}; {rounds} rounds, a fresh Masker per call", file=sys.stderr)
        lines = [
            f"| input | {args.base} p50 ms | this checkout p50 ms | this / {args.base} |",
            "|---|---:|---:|---:|",
        ]
        for label, (text, per_round) in inputs.items():
            per_round = 2 if args.quick else per_round
            times = interleaved(  # (its warm-up call compiles each engine's patterns)
                {
                    name: (lambda make=make, text=text: make().mask_text(text), per_round * rounds)
                    for name, make in engines.items()
                },
                rounds,
                label=f"bench-compare: {label}",
            )
            base_ms, this_ms = (statistics.median(times[name]) * 1000 for name in engines)
            lines.append(f"| {label} | {base_ms:.3f} | {this_ms:.3f} | {this_ms / base_ms:.2f}x |")
            print(f"bench-compare: {label} done", file=sys.stderr)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
