"""Without the embedded extra (the container image) and without DATABASE_URL, every command
that needs a database stops at once with one line naming DATABASE_URL, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hearth.db.embedded import WHEEL, WHEEL_MISSING
from tests.support.process import clean_environment

# The wheel is installed in the suite's virtualenv; `None` in sys.modules is how Python spells
# "this module is absent": importing it raises ModuleNotFoundError, find_spec() answers None.
WITHOUT_THE_WHEEL = (
    "import sys\n"
    f"sys.modules[{WHEEL!r}] = None\n"
    "from hearth.cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


# Each stops before it binds a port or starts a process.
@pytest.mark.parametrize(
    "command",
    [("serve",), ("worker",), ("migrate",)],
    ids=" ".join,
)
def test_no_wheel_and_no_database_url_is_one_clear_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_WHEEL, *command],
        env=clean_environment(HEARTH_DATA_DIR=str(data_dir)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [WHEEL_MISSING]
    assert "DATABASE_URL" in WHEEL_MISSING
    assert "Traceback" not in result.stdout
    assert not data_dir.exists()  # nothing was started or created
