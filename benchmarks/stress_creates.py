"""Stress: N consecutive real `envassay create` runs of a small env from the local test
channel, with zero crashes allowed.

py-rattler can crash a process at interpreter exit after an ``await`` (3-6 % of runs
measured; see shared/notes/py-rattler.md). envassay runs rattler in a worker whose exit
it controls; this script is the proof that no create ever dies of it. Every create is
real: odd runs create at a fresh ``--prefix``, even runs in the store from a spec made
distinct by a ``variables:`` entry (a new content hash, so the store cannot reuse).

    python benchmarks/stress_creates.py              # 200 creates
    python benchmarks/stress_creates.py --count 20   # what the test suite runs

A crash is any create that does not exit 0, or whose output shows a signal, a
``Fatal Python error`` or a dead rattler worker. Exit 1 if there was one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRASH_MARKERS = (
    "Fatal Python error",
    "Segmentation fault",
    "PyGILState",
    "the rattler worker died",
    "panicked",
    "Traceback",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="how many creates (default 200)")
    parser.add_argument("--channel", help="a local channel directory (default: the test channel)")
    parser.add_argument("--work", type=Path, help="where to create (default: a temporary dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.channel:
        channel_url = Path(args.channel).resolve().as_uri()
    else:
        from envassay_testing import build_test_channel

        channel_url = build_test_channel().url
    work = args.work or Path(tempfile.mkdtemp(prefix="envassay-stress-"))
    try:
        return stress(args.count, channel_url, work.resolve(), args.json)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def stress(count: int, channel_url: str, work: Path, json_path: Path | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["ENVASSAY_HOME"] = str(work / "store")
    env.pop("GITHUB_STEP_SUMMARY", None)
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "stress.yml"
    seconds: list[float] = []
    crashes: list[str] = []
    for i in range(1, count + 1):
        lines = [
            "name: stress",
            f"channels: [{channel_url}]",
            "dependencies: [python=3.11, six]",
        ]
        at_prefix = i % 2 == 1
        if not at_prefix:
            lines.append(f"variables: {{STRESS_RUN: '{i}'}}")
        spec.write_text("\n".join(lines) + "\n")
        argv = [sys.executable, "-m", "envassay", "create", str(spec)]
        prefix = work / f"prefix-{i}"
        if at_prefix:
            argv += ["--prefix", str(prefix)]
        started = time.perf_counter()
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        seconds.append(time.perf_counter() - started)
        output = result.stdout + result.stderr
        made = prefix if at_prefix else _store_prefix(result.stdout)
        problem = None
        if result.returncode != 0:
            problem = f"exit {result.returncode}"
        elif marker := next((m for m in CRASH_MARKERS if m in output), None):
            problem = f"output says {marker!r}"
        elif made is None or not (made / "conda-meta").is_dir() or not _has_six(made):
            problem = f"no env at {made}"
        if problem:
            crashes.append(f"create {i}: {problem}\n{output[-2000:]}")
            print(f"create {i}/{count}: CRASH ({problem})", flush=True)
        elif i % 10 == 0 or i == count:
            print(
                f"create {i}/{count}: ok ({seconds[-1]:.2f}s, median "
                f"{statistics.median(seconds):.2f}s)",
                flush=True,
            )
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)  # keep the disk small; the cache stays
    figures = {
        "creates": count,
        "crashes": len(crashes),
        "median_s": round(statistics.median(seconds), 3),
        "p95_s": round(sorted(seconds)[max(0, int(len(seconds) * 0.95) - 1)], 3),
        "total_s": round(sum(seconds), 1),
    }
    print(json.dumps(figures))
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=1))
    for crash in crashes:
        print(crash, file=sys.stderr)
    return 1 if crashes else 0


def _store_prefix(stdout: str) -> Path | None:
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    return Path(last.rsplit(": ", 1)[1]) if ": " in last else None


def _has_six(prefix: Path) -> bool:
    return any(prefix.glob("lib/python3*/site-packages/six.py"))


if __name__ == "__main__":
    sys.exit(main())
