"""pytest's JUnit XML of a run, written where ``AWS_MASKER_JUNIT_XML`` says, without a word on the
terminal.

``make test`` sets the variable so ``make report`` can read the latest run's results
(``.run/reports/junit.xml``). pytest's own ``--junitxml`` would do the writing but adds a "generated
xml file" line to the end of the output; this keeps ``make test``'s output exactly what pytest alone
prints. The file also records the command and the machine as suite properties.
"""

from __future__ import annotations

import os
import platform
import shlex

import pytest
from _pytest.junitxml import LogXML

ENV = "AWS_MASKER_JUNIT_XML"


class QuietLogXML(LogXML):
    """pytest's JUnit writer minus its terminal summary line."""

    def pytest_terminal_summary(self, terminalreporter: object, config: pytest.Config) -> None:
        return None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def configure(config: pytest.Config) -> None:
    """Register the writer when the variable is set (not on xdist workers)."""
    path = os.environ.get(ENV)
    if not path or hasattr(config, "workerinput"):
        return
    xml = QuietLogXML(
        path,
        config.option.junitprefix,
        config.getini("junit_suite_name"),
        config.getini("junit_logging"),
        config.getini("junit_duration_report"),
        config.getini("junit_family"),
        config.getini("junit_log_passing_tests"),
    )
    xml.add_global_property("command", shlex.join(["pytest", *config.invocation_params.args]))
    xml.add_global_property("machine", machine())
    config.pluginmanager.register(xml, "aws-masker-junit-file")
