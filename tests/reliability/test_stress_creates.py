"""Flake-free creates: benchmarks/stress_creates.py with a small count (200 by hand).

Each create is real (a fresh --prefix, or a store entry with a new content hash); one
crash (the py-rattler exit crash, a dead worker, any non-zero exit) fails the test.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from envassay.command import run
from envassay_testing import LocalChannel

pytestmark = [pytest.mark.channel, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "stress_creates.py"
COUNT = int(os.environ.get("ENVASSAY_STRESS_CREATES", "20"))


def test_consecutive_creates_never_crash(test_channel: LocalChannel, tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    result = run(
        [
            sys.executable,
            SCRIPT,
            "--count",
            str(COUNT),
            "--channel",
            str(test_channel.path),
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(figures),
        ],
        timeout=60 * COUNT,
    )
    assert result.ok, result.describe()
    data = json.loads(figures.read_text())
    assert data["creates"] == COUNT and data["crashes"] == 0, data
    print(f"stress: {data}")
