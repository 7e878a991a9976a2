"""The figures of tests/systemd/in_container.py (boot → /readyz 200, install time, exposure),
printed at the end of the run: the note's numbers come from the run itself."""

from __future__ import annotations

import pytest

from tests.systemd.machine import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("systemd in a container: figures")
        # Grouped by machine (the two run at the same time), each in the order measured.
        for line in sorted(FIGURES, key=lambda line: line.split(":", 1)[0]):
            terminalreporter.write_line(line)
