"""GPU device check: does this machine's GPU really compute, and with which stack?

Runs envassay's GPU probe (``src/envassay/probe/gpu_script.py``) directly: the
driver through ctypes (cuInit, version, devices, names, memory, compute
capability), nvidia-smi, and each of torch, tensorflow, jax and cupy that is
installed doing real work on every visible device compared with the CPU. Then
it judges the facts with the same rules as the ``gpu[...]`` items of
``envassay check`` and prints one line per item.

    python benchmarks/gpu_device_check.py                 # this interpreter
    python benchmarks/gpu_device_check.py --python /opt/conda/envs/train/bin/python
    python benchmarks/gpu_device_check.py --prefix /opt/conda/envs/train --require

Exit status: 0 when every item passed, or when there is no GPU (the report
says "no GPU" and why); 1 when an item failed, including no GPU under
``--require``; 2 when the probe itself could not run. Needs nothing beyond the
Python it runs with: envassay's judging (which uses ``packaging``) is used when
it can be imported from this checkout, and otherwise the facts and the work
done on the devices are still reported, without the CUDA compatibility rules.
Every driver and framework call has a timeout, so it ends in under 5 minutes
with the defaults, even on a hung driver.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
SCRIPT = SRC / "envassay" / "probe" / "gpu_script.py"
FRAMEWORKS = ("torch", "tensorflow", "jax", "cupy")
WIDTH = 100


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    python = args.python or (str(Path(args.prefix) / "bin" / "python") if args.prefix else None)
    request = {
        "frameworks": list(args.frameworks),
        "driver_timeout": args.driver_timeout,
        "framework_timeout": args.framework_timeout,
    }
    try:
        doc = probe(python or sys.executable, request, args.driver_timeout)
    except ProbeFailed as exc:
        print(f"gpu device check: the GPU probe could not run: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc, indent=2))
    header = f"envassay GPU device check: {python or sys.executable}"
    print(header + (" (--require)" if args.require else ""))
    problem = importable()
    if problem is None:
        return judged(doc, args.require)
    print(f"  (CUDA compatibility not judged: envassay cannot be imported here: {problem})")
    return basic(doc, args.require)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--python", help="the interpreter to check (default: this one)")
    where.add_argument("--prefix", help="an env prefix: check its bin/python")
    parser.add_argument("--require", action="store_true", help="no GPU is a failure (exit 1)")
    parser.add_argument(
        "--frameworks",
        type=lambda text: tuple(t for t in text.split(",") if t),
        default=FRAMEWORKS,
        help=f"comma-separated, of {','.join(FRAMEWORKS)} (default: all; absent ones are listed)",
    )
    parser.add_argument("--driver-timeout", type=float, default=30.0, metavar="S")
    parser.add_argument("--framework-timeout", type=float, default=60.0, metavar="S")
    parser.add_argument("--json", action="store_true", help="also print the probe's document")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.frameworks) - set(FRAMEWORKS))
    if unknown:
        parser.error(f"unknown frameworks {unknown}; known: {','.join(FRAMEWORKS)}")
    return args


class ProbeFailed(Exception):
    pass


def probe(python: str, request: dict[str, Any], driver_timeout: float) -> dict[str, Any]:
    """The GPU probe's document, from ``python`` running the in-target script."""
    limit = driver_timeout + request["framework_timeout"] * len(request["frameworks"]) + 60
    try:
        done = subprocess.run(
            [python, "-", json.dumps(request)],
            input=SCRIPT.read_bytes(),
            capture_output=True,
            timeout=limit,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProbeFailed(str(exc)) from None
    stderr = done.stderr.decode("utf-8", "replace").strip()[-2000:]
    try:
        doc = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ProbeFailed(f"{python} exited {done.returncode}; stderr: {stderr}") from None
    if not isinstance(doc, dict) or "error" in doc:
        raise ProbeFailed(f"{doc.get('error') if isinstance(doc, dict) else doc}")
    return doc


def importable() -> str | None:
    """None when envassay's judging can be imported (from this checkout if need be), else why."""
    try:
        import envassay
    except ImportError:  # a checkout that was not installed
        sys.path.insert(0, str(SRC))
    try:
        import envassay.checks.gpu  # noqa: F401
    except Exception as exc:  # a missing dependency, or a Python older than envassay's
        return f"{type(exc).__name__}: {exc}"
    return None


def judged(doc: dict[str, Any], require: bool) -> int:
    """The gpu[...] verdicts of envassay itself, with the same rules as `envassay check`."""
    from dataclasses import replace

    from envassay.checks.gpu import judge_gpu
    from envassay.probe.gpu import GpuReport
    from envassay.spec.gpu import Expectation

    report = GpuReport.from_json(json.dumps(doc))
    absent = [name for name, f in report.frameworks.items() if f.status == "missing"]
    present = {n: f for n, f in report.frameworks.items() if f.status != "missing"}
    report = replace(report, frameworks=present)
    if require:
        expect = Expectation("required", "--require")
    else:
        expect = Expectation("optional", "without --require, no GPU is not a failure")
    results = judge_gpu(report, expect)
    for result in results:
        show(result.param, result.outcome, result.message)
    for name in absent:
        show(name, "absent", "not installed in this interpreter")
    failures = [r for r in results if r.outcome == "failed"]
    if not report.driver.visible:
        print(f"no GPU: {report.driver.reason()}")
    if failures:
        print(f"FAILED: {', '.join(f'gpu[{r.param}]' for r in failures)}")
        return 1
    if report.driver.visible:
        print(f"the GPU computes: {len(results)} item(s) passed")
    return 0


def basic(doc: dict[str, Any], require: bool) -> int:
    """Without envassay: the driver's facts and the work each framework did, as reported."""
    driver = doc.get("driver") or {}
    devices = driver.get("devices") or []
    visible = driver.get("status") == "ok" and bool(devices)
    if visible:
        names = "; ".join(f"{d['index']}: {d['name']} (sm {d['capability']})" for d in devices)
        show("driver", "passed", f"driver API version {driver.get('version')}; {names}")
    else:
        why = driver.get("init_error") or driver.get("error") or driver.get("status")
        if driver.get("status") == "no-library":
            why = "no NVIDIA driver (libcuda.so.1 not found)"
        show("driver", "failed" if require else "skipped", f"no GPU visible: {why}")
    bad = not visible and require
    for name, facts in (doc.get("frameworks") or {}).items():
        if facts.get("status") == "missing":
            show(name, "absent", "not installed in this interpreter")
            continue
        checks = facts.get("checks") or []
        failed = [c for c in checks if not c.get("ok")]
        ok = facts.get("status") == "ok" and facts.get("build") != "cpu" and not failed
        ok = ok and (bool(checks) or not visible)
        words = f"{facts.get('version')} build={facts.get('build')} cuda={facts.get('cuda')}"
        words += "".join(
            f"; {c['name']}: {'ok' if c['ok'] else 'FAILED'} {c['detail']}" for c in checks
        )
        words += f"; {facts['error']}" if facts.get("error") else ""
        outcome = "passed" if ok and visible else "failed" if visible or require else "skipped"
        bad = bad or outcome == "failed"
        show(name, outcome, words)
    if not visible:
        print("no GPU")
    return 1 if bad else 0


def show(name: str, outcome: str, message: str) -> None:
    label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "absent": " -- "}[outcome]
    lines = textwrap.wrap(message, WIDTH - 20, subsequent_indent=" " * 2) or [""]
    print(f"  {label}  gpu[{name}]".ljust(24) + lines[0])
    for line in lines[1:]:
        print(" " * 24 + line)


if __name__ == "__main__":
    sys.exit(main())
