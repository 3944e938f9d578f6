"""How much the probe costs compared with importing the same modules by hand.

Measures, best of N, for one interpreter and ~20 modules:
  probe       run_probe on a NativeTarget (facts + imports in one child interpreter)
  facts only  the same probe asked to import nothing (interpreter start + conda/pip facts)
  floor       one interpreter importing the modules in a plain loop
  per-module  one `python -c "import X"` process per module
  bare start  `python -c pass`, for scale

    python benchmarks/probe_imports.py [--python PATH] [--modules a,b,c] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import envassay  # noqa: F401
except ImportError:  # run from a checkout without installing it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from envassay.command import run
from envassay.probe import PackageRequest, ProbeReport, ProbeRequest, run_probe
from envassay.targets import NativeTarget

STDLIB = [
    "json",
    "decimal",
    "asyncio",
    "email",
    "http.client",
    "xml.etree.ElementTree",
    "sqlite3",
    "unittest",
    "argparse",
    "logging",
    "csv",
    "ssl",
    "multiprocessing",
    "concurrent.futures",
    "urllib.request",
    "ctypes",
    "tarfile",
    "zipfile",
    "difflib",
    "statistics",
]
OPTIONAL = ("numpy", "yaml")


def main() -> int:
    args = parse_args()
    target = NativeTarget(Path(args.python).absolute().parent.parent)
    modules = args.modules.split(",") if args.modules else STDLIB + importable(target, OPTIONAL)
    print(f"{target.python}: {len(modules)} modules, best of {args.repeat}")
    times = measure(target, modules, args.repeat)
    for label, seconds in times.items():
        print(f"  {label:<12} {seconds:7.3f} s")
    print(f"  probe / floor       {times['probe'] / times['floor']:.2f}  (target <= 1.2)")
    print(f"  per-module / probe  {times['per-module'] / times['probe']:.2f}")
    overhead = times["probe"] - times["floor"]
    print(
        f"  probe - floor       {overhead * 1000:.0f} ms"
        "  (the probe's overhead beyond its imports; target <= 100 ms)"
    )
    one, five, _ = os.getloadavg()
    print(
        f"  load {one:.2f} {five:.2f} (1/5 min) on {os.cpu_count()} CPU(s);"
        " absolute times: this machine only"
    )
    print(f"  facts overhead      {times['facts only'] - times['bare start']:.3f} s")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter at PREFIX/bin/python")
    parser.add_argument("--modules", default="", help="comma-separated modules to import")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best of)")
    return parser.parse_args()


def importable(target: NativeTarget, candidates: tuple[str, ...]) -> list[str]:
    """The candidates the target interpreter can find."""
    code = "import importlib.util as u, sys; print(*[m for m in sys.argv[1:] if u.find_spec(m)])"
    result = run([target.python, "-c", code, *candidates], env=target.env(), timeout=60)
    return result.stdout.split()


def measure(target: NativeTarget, modules: list[str], repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` wall time of each way to import ``modules``."""
    request = ProbeRequest(
        packages=tuple(PackageRequest(m, "pip") for m in modules),
        rename={m: (m,) for m in modules},
    )
    loop = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    ways: dict[str, Callable[[], object]] = {
        "probe": lambda: check_probe(run_probe(target, request), len(modules)),
        "facts only": lambda: run_probe(target, ProbeRequest()),
        "floor": lambda: python(target, "-c", loop, *modules),
        "per-module": lambda: each(target, modules),
        "bare start": lambda: python(target, "-c", "pass"),
    }
    best = dict.fromkeys(ways, float("inf"))
    # Round-robin, so that a busy spell on the machine does not land on one way only.
    for _ in range(repeat):
        for label, way in ways.items():
            start = time.perf_counter()
            way()
            best[label] = min(best[label], time.perf_counter() - start)
    return best


def check_probe(report: ProbeReport, expected: int) -> None:
    """A benchmark of a probe that failed to import would measure the wrong thing."""
    failed = [i.module for i in report.imports if not i.ok]
    if len(report.imports) != expected or failed:
        raise SystemExit(f"probe did not import everything: {failed}")


def each(target: NativeTarget, modules: list[str]) -> None:
    for module in modules:
        python(target, "-c", f"import {module}")


def python(target: NativeTarget, *args: str) -> None:
    result = run([target.python, *args], env=target.env(), timeout=300)
    if not result.ok:
        raise SystemExit(result.describe())


if __name__ == "__main__":
    raise SystemExit(main())
