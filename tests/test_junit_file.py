"""``make test`` leaves pytest's JUnit XML where AWS_MASKER_JUNIT_XML says (tests/junit_file.py) and
prints exactly what pytest alone prints: no "generated xml file" line."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""


def _pytest(tmp_path: Path, env_value: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from junit_file import configure\n\n"
        "def pytest_configure(config):\n    configure(config)\n"
    )
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "AWS_MASKER_JUNIT_XML"}
    if env_value is not None:
        env["AWS_MASKER_JUNIT_XML"] = env_value
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_xml_is_written_and_nothing_more_is_printed(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "reports/junit.xml")
    assert proc.returncode == 1  # the failing sample test
    assert "generated xml file" not in proc.stdout + proc.stderr
    suite = ET.parse(tmp_path / "reports" / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("timestamp")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["command"].startswith("pytest ") and props["machine"]


def test_without_the_variable_no_xml(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, None)
    assert proc.returncode == 1
    assert not list(tmp_path.rglob("*.xml"))
