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
import shutil
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import Envassay, load, scratch_dir, timed, write_project

from envassay_testing.channel import build_test_channel

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
    envassay = Envassay(root, root / f"store-{label}")
    shutil.rmtree(envassay.store, ignore_errors=True)
    xml = root / f"junit-{label}.xml"
    result = []
    seconds = timed(
        lambda: result.append(envassay("check", "-j", str(jobs), "--junitxml", xml, ok=(0, 1)))
    )
    if not xml.is_file():
        sys.exit(f"`envassay check -j {jobs}` wrote no report: {result[0].describe()}")
    shutil.rmtree(envassay.store, ignore_errors=True)
    return seconds, result[0].returncode, outcomes(xml)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="the parallel run's -j (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="measured pairs (median)")
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args()

    channel = build_test_channel()
    with scratch_dir("envassay-parallel-", args.keep) as root:
        write_project(root, ENVS, [channel.url])
        print(f"before: {load()}")
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
        print(f"after:  {load()}")
        print(
            f"{len(ENVS)} envs, cold: -j 1 {serial:.1f}s, -j {args.jobs} {parallel:.1f}s, "
            f"ratio {serial / parallel:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
