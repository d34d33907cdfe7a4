"""No secret, password or key is committed: every file git would commit is scanned for known key
shapes and for random-looking values assigned to secret-like names (tests/stack/secrets.py). The
synthetic AWS credentials of the corpus, the catalogue and the test modules are allowed by path;
a few fake secrets used as masking fixtures are allowed by value. Findings name the file, the line
and the kind, never the value."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from . import secrets

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_secret_is_committed() -> None:
    findings = secrets.scan(ROOT, secrets.repository_files(ROOT))
    assert findings == [], "\n".join(f"{f.path}:{f.line}: {f.kind}" for f in findings)


def test_env_example_and_gitignore_keep_secrets_out() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored
    assert ".env" not in secrets.repository_files(ROOT)


def _random(alphabet: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
# built at run time, so that this file holds no key-shaped string itself
PLANTED = {
    "anthropic key": "sk-ant-" + "api03-" + _random(ALNUM + "_-", 90, 1),
    "private key": "-----BEGIN " + "RSA PRIVATE KEY-----",
    "github token": "gh" + "p_" + _random(ALNUM, 36, 2),
    "aws access key id": "AK" + "IA" + _random(string.ascii_uppercase + "234567", 16, 3),
    "high-entropy value for a secret-like name": "REDIS_PASSWORD=" + _random(ALNUM, 32, 4),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_planted_secret_is_found(tmp_path: Path, kind: str) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "config.txt").write_text(f"line one\nvalue: {PLANTED[kind]}\n")
    findings = secrets.scan(tmp_path, ["deploy/config.txt"])
    assert (kind, 2) in {(f.kind, f.line) for f in findings}


def test_allow_lists_are_narrow(tmp_path: Path) -> None:
    aws = PLANTED["aws access key id"]
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f'KEY = "{aws}"\n')
    (tmp_path / "tests" / "helper.py").write_text(f'KEY = "{aws}"\n')
    (tmp_path / "tests" / "test_y.py").write_text(f'KEY = "{PLANTED["anthropic key"]}"\n')
    findings = secrets.scan(tmp_path, ["tests/test_x.py", "tests/helper.py", "tests/test_y.py"])
    assert {(f.path, f.kind) for f in findings} == {
        ("tests/helper.py", "aws access key id"),
        ("tests/test_y.py", "anthropic key"),
    }


@pytest.mark.parametrize(
    "value, random_looking",
    [
        ("change-me-please-0123456789", False),
        ("self.config.token_secret", False),
        (_random(ALNUM, 24, 5), True),
    ],
)
def test_entropy_threshold(value: str, random_looking: bool) -> None:
    assert secrets.looks_random(value) is random_looking
