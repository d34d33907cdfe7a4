"""A scan for committed secrets: known key shapes and high-entropy values assigned to secret-like names.

Reports the path, the line and the kind, never the value."""

from __future__ import annotations

import math
import re
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

# Shapes of real credentials that have no business in this repository, anywhere.
KEY_SHAPES = {
    "anthropic key": re.compile(r"sk-ant-[a-z]+\d*-[A-Za-z0-9_-]{20,}"),
    "openai key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{40,}"),
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "github token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    "slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "google api key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "stripe key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
}
# AWS credentials: this project's subject, so its synthetic samples live in tests and the catalogue.
AWS_SHAPES = {
    "aws access key id": re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    "aws secret key": re.compile(r"(?i)aws_?secret_?access_?key\W{1,4}[A-Za-z0-9/+]{40}\b"),
}
AWS_FIXTURE_PATHS = ("plugin/aws_masker/patterns.py", "tests/test_*.py", "tests/*/test_*.py")
# The labelled corpus of synthetic AWS data (tests/corpus/README.md): every shape is expected there.
FIXTURE_DIRS = ("tests/corpus/aws/",)
# Fake secrets the tests use as masking fixtures (random-looking on purpose; never valid anywhere).
FAKE_VALUES = frozenset(
    {
        "Xk3pL9vQ2mR8sT1uW4yZ6aB0cD5eF7gH9iJ2kL4m",
        "Xk3pL9vQ2mR8sT1u/logs2024/yZ6aB0cD5eF7gH",
        "Zx9kQm2Lr7Vt4Wp8Yb3Nc6Hd1Jf5Gs0Ae2Ku7Tiq",
        "Zq8vR2mK7pL4xN9cT1bW6yH3jF5dS0gA+e/uVk2Q",  # tests/test_cliformats.py
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEYabcde",  # AWS's documentation example, altered
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # AWS's documentation example (load/payloads.py)
        "AWS_EC2_0123456789ab",  # a masked token (tests/test_load_answers.py)
    }
)
ASSIGNMENT = re.compile(
    r"""(?i)[\w.-]*(?:secret|passw(?:or)?d|pwd|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)"""
    r"""[\w.-]*["']?\s*[:=]\s*["']?([A-Za-z0-9+/=_\-~]{20,})"""
)
MAX_THRESHOLD = 4.3  # bits per character; shorter values can score at most log2(length)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str


def entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    return (
        entropy(value) >= min(MAX_THRESHOLD, math.log2(len(value)) - 0.8)
        and any(c.isdigit() for c in value)
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
    )


def repository_files(root: Path) -> list[str]:
    """Tracked files plus new files not ignored: what a commit would contain."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({p for p in out.decode().split("\0") if p})


def scan_text(path: str, text: str) -> Iterable[Finding]:
    if path.startswith(FIXTURE_DIRS):
        return
    aws_ok = any(fnmatch(path, pattern) for pattern in AWS_FIXTURE_PATHS)
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in KEY_SHAPES.items():
            if pattern.search(line):
                yield Finding(path, number, kind)
        if not aws_ok:
            for kind, pattern in AWS_SHAPES.items():
                if pattern.search(line):
                    yield Finding(path, number, kind)
        for m in ASSIGNMENT.finditer(line):
            value = m[1]
            if value not in FAKE_VALUES and looks_random(value) and not (aws_ok and _aws_shaped(value)):
                yield Finding(path, number, "high-entropy value for a secret-like name")


def _aws_shaped(value: str) -> bool:
    return any(p.search(value) for p in AWS_SHAPES.values())


def scan(root: Path, files: Iterable[str]) -> list[Finding]:
    findings: list[Finding] = []
    for rel in files:
        path = root / rel
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        findings.extend(scan_text(rel, data.decode("utf-8", errors="replace")))
    return findings
