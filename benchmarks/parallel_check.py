"""`envassay check -j 2` against `-j 1` over three envs, cold (every env created).

Three specs from the local test channel (one with a package broken on purpose, so the
run has a known failure). Each measured run gets a fresh env store, so every env is
solved, linked, byte-compiled and probed; a warm-up run first fills the OS page cache
so the first measured run is not penalised. Both runs must give the same verdicts
(item by item, from their JUnit XML) and the same exit code, or the script fails.

    python benchmarks/parallel_check.py [--jobs 2] [--repeat 1] [--keep]

Prints the wall times, the ratio (-j 1 time / -j N time) and the load average before and
after: on a shared machine other work changes the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    import envassay  # noqa: F401
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from envassay.command import run
from envassay.testing.channel import build_test_channel

ENVS = {
    "arrays": ["python=3.11", "numpy", "pyyaml"],
    "web": [
        "python=3.11",
        "requests",
        "idna",
        "urllib3",
        "certifi",
        "charset-normalizer",
        "beautifulsoup4",
        "soupsieve",
    ],
    "misc": ["python=3.11", "attrs", "six", "packaging", "datatools", "brokenraise"],
}


def write_project(root: Path, channel_url: str) -> None:
    (root / "envs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    for name, deps in ENVS.items():
        lines = [f"name: {name}", f"channels: [{channel_url}]", "dependencies:"]
        lines += [f'  - "{dep}"' for dep in deps]
        (root / "envs" / f"{name}.yml").write_text("\n".join(lines) + "\n")


def outcomes(xml: Path) -> dict[str, str]:
    result = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        result[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return result


def check(root: Path, jobs: int, label: str) -> tuple[float, int, dict[str, str]]:
    """One cold `envassay check -j JOBS` in ``root`` with a fresh store."""
    store = root / f"store-{label}"
    shutil.rmtree(store, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["ENVASSAY_HOME"] = str(store)
    xml = root / f"junit-{label}.xml"
    started = time.perf_counter()
    result = run(
        [sys.executable, "-m", "envassay", "check", "-j", str(jobs), "--junitxml", xml],
        env=env,
        cwd=root,
        timeout=1800,
    )
    seconds = time.perf_counter() - started
    if result.returncode not in (0, 1) or not xml.is_file():
        sys.exit(f"`envassay check -j {jobs}` did not run: {result.describe()}")
    shutil.rmtree(store, ignore_errors=True)
    return seconds, result.returncode, outcomes(xml)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPU(s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="the parallel run's -j (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="measured pairs (median)")
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args()

    channel = build_test_channel()
    root = Path(tempfile.mkdtemp(prefix="envassay-parallel-"))
    try:
        write_project(root, channel.url)
        print(f"load average before: {load()}")
        check(root, 1, "warmup")
        serial_times, parallel_times = [], []
        for i in range(args.repeat):
            serial, serial_code, serial_items = check(root, 1, f"j1-{i}")
            parallel, parallel_code, parallel_items = check(root, args.jobs, f"j{args.jobs}-{i}")
            if serial_items != parallel_items or serial_code != parallel_code:
                diff = sorted(set(serial_items.items()) ^ set(parallel_items.items()))
                sys.exit(f"-j 1 and -j {args.jobs} disagree: {diff}")
            failures = sorted(k for k, v in serial_items.items() if v == "failure")
            print(
                f"run {i + 1}: -j 1 {serial:.1f}s, -j {args.jobs} {parallel:.1f}s; "
                f"{len(serial_items)} items identical in both, exit {serial_code}, "
                f"failures {failures}"
            )
            serial_times.append(serial)
            parallel_times.append(parallel)
        serial, parallel = statistics.median(serial_times), statistics.median(parallel_times)
        print(f"load average after:  {load()}")
        print(
            f"{len(ENVS)} envs, cold: -j 1 {serial:.1f}s, -j {args.jobs} {parallel:.1f}s, "
            f"ratio {serial / parallel:.2f}x"
        )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
