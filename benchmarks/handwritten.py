"""The hand-written way, side by side: what a user writes without envassay against
`envassay check --backend conda`, on the same 7-package spec, channel, conda and
package cache (issue 14).

The spec: python, numpy, pyyaml, six, requests, packaging, attrs from the local test
channel, with `nodefaults` (no `pip:` entry: the machine is offline, and pip's resolver
would cost both sides alike). Ways, taken in turn in every round (the order rotated
each round) so that load drift hits all of them alike:

  hand-written, cold    `conda env create -p P -f SPEC` into a fresh prefix, then one
                        `P/bin/python -c "import X"` per declared package (as
                        jupyter/docker-stacks' package tests do), then
                        `P/bin/python -m pip check`
  hand-written, warm    what a user re-runs when nothing changed: the env exists, so
                        the create is skipped (a script would test for P first:
                        `conda env create` refuses an existing prefix); only the
                        imports and `pip check`. The cheapest the hand-written way
                        can be, and it does not see a spec that changed.
  hand-written, warm + update   the same after `conda env update -p P -f SPEC --prune`,
                        which does follow a changed spec (as envassay's warm run does,
                        by the spec's content hash)
  envassay, cold        `envassay check SPEC --backend conda` with an empty store
                        (ENVASSAY_HOME; its pyc cache is in there too)
  envassay, warm        the same with the store kept: creates nothing, only probes

The package cache (CONDA_PKGS_DIRS, in the scratch directory) is shared by every way
and warmed once, untimed, before the rounds, with one env of each kind and one run of
each way. Every command starts as a shell script starts it (plain subprocess, no guard
interpreter on either side). Prints medians over --rounds, the ratios envassay /
hand-written from those medians, the parts of both warm ways and two floors (one env
interpreter importing every module; a run that only reuses a kept verdict), measured
in the same rounds, and the load average; --timeline adds three warm runs with marks
(envassay's imports, pytest's start, the probe's start and end).

    python benchmarks/handwritten.py [--conda PATH] [--rounds 5] [--keep] [--timeline]

The conda: --conda, else 24.7.1 under /opt/envassay-conda, else $CONDA_EXE, else PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import Envassay, load, scratch_dir, write_project

from envassay_testing.channel import build_test_channel

# 24.7.1: conda 26's `conda env create` reads `nodefaults` as a channel name.
DEFAULT_CONDA = Path("/opt/envassay-conda/24.7.1/bin/conda")
SPEC = ["python=3.11", "numpy", "pyyaml", "six", "requests", "packaging", "attrs"]
# What a run that reuses a verdict would import at least: the CLI, the spec and config
# readers and the store (no pytest, no rattler, no probe).
HIT_IMPORTS = "import envassay.cli, envassay.spec.environment, envassay.spec.config, envassay.store"
# A run that reuses a verdict, in its least form: the arguments parsed, the spec's bytes
# hashed with an lstat of every file of the env, the kept verdict (here: the JSON report
# of a warm run) read and its summary printed.
REUSE = """
import argparse, hashlib, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("spec")
parser.add_argument("prefix")
parser.add_argument("report")
args = parser.parse_args()
key = hashlib.sha256(open(args.spec, "rb").read())
for root, _dirs, names in os.walk(args.prefix):
    for name in names:
        s = os.lstat(os.path.join(root, name))
        key.update(f"{name} {s.st_ino} {s.st_size} {s.st_mtime_ns}".encode())
with open(args.report, encoding="utf-8") as report:
    runs = json.load(report)["runs"]
print(key.hexdigest()[:12], [(run["env"], run["summary"]) for run in runs])
"""
# Declared package -> its import name (python itself is not imported).
IMPORTS = {
    "numpy": "numpy",
    "pyyaml": "yaml",
    "six": "six",
    "requests": "requests",
    "packaging": "packaging",
    "attrs": "attrs",
}

# One `envassay check` in this interpreter, with marks: envassay's imports, pytest's
# start, every command started and ended (the probe and its import child), pytest's
# session; printed after MARKS.
MARKS = "--- marks ---"
TIMELINE = f"""
import os, subprocess, sys, time
t0 = time.perf_counter()
marks = []
def mark(what):
    marks.append(f"{{time.perf_counter() - t0:7.3f}}  {{what}}")
start = subprocess.Popen._execute_child
def execute_child(self, args, *rest):
    mark("start " + " ".join(os.path.basename(str(a)) for a in args[:2])[:40])
    return start(self, args, *rest)
subprocess.Popen._execute_child = execute_child
ended = subprocess.Popen._handle_exitstatus
def handle_exitstatus(self, *a, **k):
    mark(f"ended {{os.path.basename(str(self.args[0]))}}")
    return ended(self, *a, **k)
subprocess.Popen._handle_exitstatus = handle_exitstatus
import envassay.cli, envassay.run.runner
mark("envassay.cli and envassay.run.runner imported")
run_pytest = envassay.run.runner.run_pytest
class Marks:
    def pytest_configure(self, config): mark("pytest configured")
    def pytest_collection_finish(self, session): mark("items collected (after the probe)")
    def pytest_sessionfinish(self, session): mark("pytest session finished")
def marked(args, plugins=()):
    mark("pytest: import starts (the env's work already submitted)")
    import pytest
    mark("pytest imported")
    return run_pytest(args, [*plugins, Marks()])
envassay.run.runner.run_pytest = marked
try:
    code = envassay.cli.main(sys.argv[1:])
finally:
    mark("done")
    print("{MARKS}")
    print("\\n".join(marks))
sys.exit(code)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conda", type=Path, default=None, help="conda executable")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (medians)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--timeline", action="store_true", help="also one warm run's timeline (3 runs)"
    )
    args = parser.parse_args()
    conda = (args.conda or _default_conda()).resolve()
    if not conda.is_file():
        sys.exit(f"no conda at {conda}")

    channel = build_test_channel()
    with scratch_dir("envassay-handwritten-", args.keep) as root:
        spec = write_project(root, {"seven": SPEC}, [channel.url, "nodefaults"])[0]
        # One environment for both sides: this conda found by envassay ($CONDA_EXE),
        # one package cache; no activated env's or other session's CONDA_* settings.
        for name in [k for k in os.environ if k.startswith(("CONDA_", "MAMBA_"))]:
            del os.environ[name]
        os.environ.pop("ENVASSAY_BACKEND", None)
        os.environ["CONDA_EXE"] = str(conda)
        os.environ["CONDA_PKGS_DIRS"] = str(root / "pkgs")
        version = _sh(conda, "--version").strip()
        print(f"{version} ({conda}); spec: {', '.join(SPEC)}")
        print(f"before: {load()}")

        hand = HandWritten(conda, spec)
        warm_prefix = root / "hand-warm"
        warm_store = Envassay(root, root / "store-warm")
        fresh = count()
        cleanup: list[Path] = []

        def hand_cold() -> None:
            prefix = root / f"hand-cold-{next(fresh)}"
            cleanup.append(prefix)
            hand.create(prefix)
            hand.check(prefix)

        def envassay_cold() -> None:
            store = root / f"store-cold-{next(fresh)}"
            cleanup.append(store)
            _envassay(Envassay(root, store), spec)

        ways: dict[str, Callable[[], object]] = {
            "hand-written, cold": hand_cold,
            "hand-written, warm": lambda: hand.check(warm_prefix),
            "hand-written, warm + update": lambda: (
                hand.update(warm_prefix),
                hand.check(warm_prefix),
            ),
            "envassay, cold": envassay_cold,
            "envassay, warm": lambda: _envassay(warm_store, spec),
        }
        # Untimed: fills the package cache and the OS page cache, makes the warm env
        # and the warm store, and runs every way once.
        hand.create(warm_prefix)
        warm_store("check", spec, "--backend", "conda")
        for way in ways.values():
            way()
        _remove(cleanup)
        report = warm_store.report(spec, "--backend", "conda")
        env_prefix = warm_store.prefixes()["seven"]
        parts = _parts(env_prefix, warm_prefix, spec, root / "bench-report.json")
        files = _stat_all(env_prefix)
        ways.update(parts)

        times: dict[str, list[float]] = {label: [] for label in ways}
        loads: list[float] = []
        labels = list(ways)
        for round_ in range(args.rounds):
            for label in labels[round_ % len(labels) :] + labels[: round_ % len(labels)]:
                started = time.perf_counter()
                ways[label]()
                times[label].append(time.perf_counter() - started)
                loads.append(os.getloadavg()[0])
            _remove(cleanup)

        med = {label: statistics.median(ts) for label, ts in times.items()}
        print(f"\n{args.rounds} rounds, medians (min-max):")
        for label in ways:
            ts = times[label]
            print(f"  {label:<36} {med[label]:6.2f} s  ({min(ts):.2f}-{max(ts):.2f})")
        hw_cold, hw_warm = med["hand-written, cold"], med["hand-written, warm"]
        hw_update = med["hand-written, warm + update"]
        ea_cold, ea_warm = med["envassay, cold"], med["envassay, warm"]
        print("\nratios (envassay / hand-written, medians of this run):")
        print(f"  cold                       {ea_cold / hw_cold:5.2f}x")
        print(f"  warm                       {ea_warm / hw_warm:5.2f}x")
        print(f"  warm vs warm + update      {ea_warm / hw_update:5.2f}x")
        print(f"  warm vs hand-written cold  {ea_warm / hw_cold:5.2f}x  (a script that recreates)")
        print(f"  0.1x of hand-written warm is {0.1 * hw_warm:.2f} s")

        run_ = report["runs"][0]
        probe_imports = sum(i["seconds"] for i in run_["imports"])
        floor = med["part: env python, all imports once"]
        hit = med["part: host, a hit's imports"] + med["part: stat of every file in the env"]
        print("\nenvassay warm, the report of one warm run (taken before the rounds):")
        print(f"  env target (store lookup + probe + checks)  {run_['seconds']:5.2f} s")
        print(f"    of which the imports, as the probe timed   {probe_imports:5.2f} s")
        print("hand-written warm, its parts:")
        print(f"  {len(IMPORTS)} import interpreters  {med['hand: imports only']:5.2f} s")
        print(f"  pip check               {med['hand: pip check only']:5.2f} s")
        print("floors, against hand-written warm:")
        print(
            f"  one env interpreter, all imports {floor:5.2f} s  "
            f"{floor / hw_warm:5.2f}x  (any run that imports them at all)"
        )
        print(
            f"  a cached verdict's least work    {hit:5.2f} s  {hit / hw_warm:5.2f}x  "
            f"(host start + CLI/spec/config/store imports + lstat of the env's {files} files)"
        )
        reuse = med["part: reuse prototype (a process)"]
        print(
            f"  a reused verdict, least form     {reuse:5.2f} s  {reuse / hw_warm:5.2f}x  "
            "(one process: spec hash + lstat walk + read, no envassay imports)"
        )
        if args.timeline:
            for _ in range(3):
                print("\nenvassay warm, one run's timeline (s since the interpreter was up):")
                argv = [sys.executable, "-c", TIMELINE, "check", spec, "--backend", "conda"]
                print(_sh(*argv, env=warm_store.env(), cwd=root).split(MARKS, 1)[1], end="")
        print(f"\nload (1 min) during the rounds {min(loads):.2f}-{max(loads):.2f}")
        print(f"after: {load()}  (absolute times: this machine only)")
    return 0


class HandWritten:
    """What a user's script runs: conda, then an interpreter per import, then pip check."""

    def __init__(self, conda: Path, spec: Path) -> None:
        self.conda, self.spec = conda, spec

    def create(self, prefix: Path) -> None:
        _sh(self.conda, "env", "create", "-p", prefix, "-f", self.spec)

    def update(self, prefix: Path) -> None:
        _sh(self.conda, "env", "update", "-p", prefix, "-f", self.spec, "--prune")

    def imports(self, prefix: Path) -> None:
        for module in IMPORTS.values():
            _sh(prefix / "bin" / "python", "-c", f"import {module}")

    def pip_check(self, prefix: Path) -> None:
        _sh(prefix / "bin" / "python", "-m", "pip", "check")

    def check(self, prefix: Path) -> None:
        self.imports(prefix)
        self.pip_check(prefix)


def _parts(
    env_prefix: Path, hand_prefix: Path, spec: Path, report: Path
) -> dict[str, Callable[[], object]]:
    """Pieces of both warm ways, timed in the same rounds: what a warm check cannot go
    below (an interpreter in the env importing the declared modules once), and the
    host's fixed costs."""
    env_python = env_prefix / "bin" / "python"
    host = sys.executable
    hand = HandWritten(Path(), Path())
    all_imports = f"import {', '.join(IMPORTS.values())}"
    reuse = (REUSE, spec, env_prefix, report)
    return {
        "part: env python, bare start": lambda: _sh(env_python, "-c", "pass"),
        "part: env python, all imports once": lambda: _sh(env_python, "-c", all_imports),
        "part: host python, bare start": lambda: _sh(host, "-c", "pass"),
        "part: host, import envassay.cli": lambda: _sh(host, "-c", "import envassay.cli"),
        "part: host, import pytest": lambda: _sh(host, "-c", "import pytest"),
        "part: host, a hit's imports": lambda: _sh(host, "-c", HIT_IMPORTS),
        "part: stat of every file in the env": lambda: _stat_all(env_prefix),
        "part: reuse prototype (a process)": lambda: _sh(host, "-c", *reuse),
        "hand: imports only": lambda: hand.imports(hand_prefix),
        "hand: pip check only": lambda: hand.pip_check(hand_prefix),
    }


def _stat_all(prefix: Path) -> int:
    """lstat every file under ``prefix`` (what fingerprinting an env for a cached verdict
    would cost); the number of files."""
    files = 0
    for root, _dirs, names in os.walk(prefix):
        for name in names:
            os.lstat(os.path.join(root, name))
            files += 1
    return files


def _envassay(envassay: Envassay, spec: Path) -> None:
    """`envassay check SPEC --backend conda` as a user runs it (no guard process around
    it, unlike _bench's Envassay call, so that both sides start their commands alike)."""
    argv = [sys.executable, "-m", "envassay", "check", spec, "--backend", "conda"]
    _sh(*argv, env=envassay.env(), cwd=envassay.root)


def _sh(*argv: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """One command as a shell script runs it (plain subprocess: envassay.command.run
    would put a guard interpreter around each); its stdout. Exits on a failure."""
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    if result.returncode != 0:
        command = " ".join(map(str, argv))
        sys.exit(f"`{command}` exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    paths.clear()


def _default_conda() -> Path:
    if DEFAULT_CONDA.is_file():
        return DEFAULT_CONDA
    found = os.environ.get("CONDA_EXE") or shutil.which("conda")
    if not found:
        sys.exit("no conda: pass --conda PATH")
    return Path(found)


if __name__ == "__main__":
    raise SystemExit(main())
