"""Engine benchmark: ``make bench-engine``.

Measures, side by side in one run on this machine:
- masking an 8 KB prompt, a 1 MB AWS CLI dump and a 10 MB dump (one-pass engine);
- restoring a 10 MB Claude response full of tokens;
- the same engine with the pure-``re`` scanner it falls back to where Hyperscan has no wheel;
- a naive baseline that applies each catalogue rule as a separate substitution pass over the
  progressively masked text, as the original Lua plugin did (same rules, same tokens).

The cases of each input size run interleaved (each case's runs spread over the same rounds), so a
slow spell of this shared machine hits them alike and the ratios hold even when the absolute numbers
drift. Best runs are reported too: they show the machine undisturbed.

Writes the results into docs/benchmarks.md between the ``bench-engine`` markers (other benchmarks keep
their own sections). Timings are benchmarks, not tests: nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchlib import machine, pct, write_section

from aws_masker.config import MaskerConfig
from aws_masker.engine import Masker
from aws_masker.patterns import RULES, Verdict
from aws_masker.restore import restore_json_text
from aws_masker.scanner import Scanner, _namespaced
from aws_masker.tokens import TokenIssuer

START, END = "<!-- bench-engine:start -->", "<!-- bench-engine:end -->"
SECRET = "bench-secret-0123456789"


def _hex(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(n))


def cli_dump(size: int, seed: int = 1) -> str:
    """``aws ec2 describe-instances`` output of about ``size`` bytes, with unique IDs."""
    rnd = random.Random(seed)
    reservations = []
    length = 0
    while length < size:
        acct = str(rnd.randint(10**11, 10**12 - 1))
        ip = f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
        inst = {
            "InstanceId": f"i-{_hex(rnd, 17)}",
            "ImageId": f"ami-{_hex(rnd, 17)}",
            "State": {"Code": 16, "Name": "running"},
            "PrivateDnsName": f"ip-{ip.replace('.', '-')}.ec2.internal",
            "PrivateIpAddress": ip,
            "PublicIpAddress": f"54.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
            "SubnetId": f"subnet-{_hex(rnd, 17)}",
            "VpcId": f"vpc-{_hex(rnd, 8)}",
            "InstanceType": "t3.micro",
            "LaunchTime": "2024-01-01T00:00:00+00:00",
            "Placement": {"AvailabilityZone": "us-east-1a", "Tenancy": "default"},
            "SecurityGroups": [{"GroupName": "web-server-security-group", "GroupId": f"sg-{_hex(rnd, 17)}"}],
            "IamInstanceProfile": {
                "Arn": f"arn:aws:iam::{acct}:instance-profile/web",
                "Id": "AIPA" + _hex(rnd, 17).upper(),
            },
            "Tags": [
                {"Key": "Name", "Value": "web server for the checkout service"},
                {"Key": "Team", "Value": "platform"},
            ],
            "Monitoring": {"State": "disabled"},
            "Architecture": "x86_64",
            "RootDeviceType": "ebs",
        }
        reservation = {"ReservationId": f"r-{_hex(rnd, 17)}", "OwnerId": acct, "Instances": [inst]}
        reservations.append(reservation)
        length += len(json.dumps(reservation, indent=4)) + 10
    return json.dumps({"Reservations": reservations}, indent=4)


PROSE = (
    "We are seeing intermittent timeouts between the checkout service and the payments API since "
    "yesterday's deploy. The service runs on EC2 behind an ALB and talks to a Postgres database. "
    "Below is what describe-instances and the logs say; can you tell what is wrong? "
)


def prompt_8k() -> str:
    text = (PROSE * 20)[:6000] + "\n" + cli_dump(1800, seed=7)
    return text[:8192]


def naive_masker(masker_config: MaskerConfig) -> Callable[[str], str]:
    """The original's shape: one substitution pass per rule over the progressively masked text."""
    compiled = [(rule, re.compile(_namespaced(rule.regex, "n"))) for rule in RULES]
    secret = (masker_config.token_secret or "").encode()

    def mask(text: str) -> str:
        issuer = TokenIssuer(secret)
        for rule, rx in compiled:

            def repl(m: re.Match[str], rule=rule) -> str:
                value = m.group("nv") if "nv" in m.re.groupindex and m.group("nv") is not None else m.group()
                if rule.validate and rule.validate(value, m.string, m.start()) is not Verdict.MASK:
                    return m.group()
                kind = rule.kind_of(value) if rule.kind_of else rule.kind
                return m.group().replace(value, issuer.issue(kind, value), 1)

            text = rx.sub(repl, text)
        return text

    return mask


def interleaved(
    cases: dict[str, tuple[Callable[[], object], int]], rounds: int, label: str = "bench-engine"
) -> dict[str, list[float]]:
    """Time each ``name: (fn, runs)`` case, its runs spread evenly over ``rounds`` rounds in which every
    case takes its turn: all cases see the same spells of a busy machine."""
    out: dict[str, list[float]] = {name: [] for name in cases}
    for fn, _runs in cases.values():
        fn()  # warm-up
    for r in range(rounds):
        for name, (fn, runs) in cases.items():
            for _ in range((r + 1) * runs // rounds - r * runs // rounds):
                t0 = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - t0)
        if r % 10 == 9:
            print(f"{label}: round {r + 1}/{rounds}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument("--quick", action="store_true", help="fewer runs (for a smoke test)")
    args = parser.parse_args(argv)

    config = MaskerConfig(token_secret=SECRET)
    masker = Masker(config)
    fallback = Scanner(mode="words")

    def cold(text: str) -> object:
        # a fresh Masker: its token cache is empty, as for text the gateway has never seen
        return Masker(config).mask_text(text)

    def cold_fallback(text: str) -> object:
        return Masker(config, fallback).mask_text(text)

    naive = naive_masker(masker.config)
    small, dump1, dump10 = prompt_8k(), cli_dump(1_000_000), cli_dump(10_000_000, seed=2)
    masked10, result10 = masker.mask_text(dump10)
    response10 = json.dumps({"content": [{"type": "text", "text": masked10}]})

    def n(full: int) -> int:  # runs per case; --quick takes a tenth
        return max(2, full // 10) if args.quick else full

    def four_ways(key: str, text: str, runs: int, naive_runs: int) -> dict[str, list[float]]:
        """The engine cold, warm and with the fallback scanner, and the naive baseline, interleaved."""
        return interleaved(
            {
                f"{key} cold": (lambda: cold(text), n(runs)),
                f"{key} warm": (lambda: masker.mask_text(text), n(runs)),
                f"{key} fallback": (lambda: cold_fallback(text), n(runs // 2)),
                f"{key} naive": (lambda: naive(text), n(naive_runs)),
            },
            rounds=n(20),
        )

    print(f"bench-engine: 8 KB prompt ({len(small)} B) ...", file=sys.stderr)
    t = four_ways("8k", small, 2000, 300)
    print(f"bench-engine: 1 MB dump ({len(dump1)} B) ...", file=sys.stderr)
    t |= four_ways("1m", dump1, 40, 6)
    print(f"bench-engine: 10 MB dump ({len(dump10)} B) beside the 1 MB one; restore ...", file=sys.stderr)
    t |= interleaved(
        {
            "10m cold": (lambda: cold(dump10), n(10)),
            "1m cold beside 10m": (lambda: cold(dump1), n(100)),
            "10m restore": (lambda: restore_json_text(response10, result10.tokens), n(10)),
        },
        rounds=n(10),
    )

    def mbs(size: int, samples: list[float]) -> str:
        return f"{size / statistics.median(samples) / 1e6:.1f}"

    def ms(x: float) -> str:
        return f"{x * 1000:.2f}"

    rows = [
        ("8 KB prompt, mask", len(small), t["8k cold"], t["8k naive"]),
        ("8 KB prompt, mask again (warm token cache)", len(small), t["8k warm"], None),
        ("8 KB prompt, mask, fallback scanner (pure `re`)", len(small), t["8k fallback"], t["8k naive"]),
        ("1 MB CLI dump, mask", len(dump1), t["1m cold"], t["1m naive"]),
        ("1 MB CLI dump, mask again (warm token cache)", len(dump1), t["1m warm"], None),
        ("1 MB CLI dump, mask, fallback scanner (pure `re`)", len(dump1), t["1m fallback"], t["1m naive"]),
        ("10 MB CLI dump, mask", len(dump10), t["10m cold"], None),
        ("10 MB response, restore", len(response10), t["10m restore"], None),
    ]
    lines = [
        START,
        "## Masking engine (`make bench-engine`)",
        "",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine()}",
        "- Command: `make bench-engine` (`python load/bench_engine.py`)",
        "- Inputs: 1 MB dump = synthetic `aws ec2 describe-instances` JSON, "
        f"{len(masker.find(dump1))} identifiers; "
        f"10 MB response = a Claude JSON answer carrying {len(result10.tokens)} distinct tokens.",
        f"- 8 KB prompt = prose plus a pasted CLI excerpt, {len(masker.find(small))} identifiers.",
        "- Naive baseline: the same catalogue applied as one substitution pass per rule over the "
        "progressively masked text, as the original Lua plugin did.",
        "- The engine finds where rules can start with Hyperscan (prefilter.py); the fallback scanner, "
        "used where the `hyperscan` package has no wheel, walks word starts in `re` and finds the same "
        "identifiers.",
        "- The cases of each input size ran interleaved (each case's runs spread evenly over the same "
        "rounds), so the engine/naive ratios are side by side; so did the 10 MB runs and the 1 MB runs "
        "the linearity ratio compares them with.",
        '- "mask" rows use a fresh Masker per run (cold token cache: text never seen before); "mask '
        'again" rows reuse one (a conversation resends its history every turn).',
        "",
        "| case | size | runs | MB/s (p50) | p50 ms | p99 ms | best ms | naive p50 ms | one-pass speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, eng, nai in rows:
        speed = f"{statistics.median(nai) / statistics.median(eng):.1f}x" if nai else "-"
        naive_p50 = ms(statistics.median(nai)) if nai else "-"
        lines.append(
            f"| {name} | {size:,} | {len(eng)} | {mbs(size, eng)} | {ms(statistics.median(eng))} | "
            f"{ms(pct(eng, 0.99))} | {ms(min(eng))} | {naive_p50} | {speed} |"
        )
    beside = t["1m cold beside 10m"]
    linear = statistics.median(t["10m cold"]) / statistics.median(beside)
    linear_best = min(t["10m cold"]) / min(beside)
    lines += [
        "",
        f"Linearity: masking 10 MB took {linear:.1f}x the 1 MB time by median, {linear_best:.1f}x by "
        f"best run (10x would be exactly linear). Measured side by side: the 10 MB runs were interleaved "
        f"with {len(beside)} more 1 MB runs (p50 {ms(statistics.median(beside))} ms).",
        "",
        "Targets from the engine issue: >= 25 MB/s on the 1 MB dump, <= 0.3 ms p50 for 8 KB, 10 MB within "
        "12x the 1 MB time.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    write_section(args.out, START, END, section)
    print(f"bench-engine: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
