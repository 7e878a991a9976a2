"""Where the checkout is, for tests that read its files (docs, deploy/, scripts/): one place
to change if the tests move again."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
