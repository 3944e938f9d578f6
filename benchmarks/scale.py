"""How `envassay check` grows with the number of envs and of packages in one env.

A local channel of synthetic ``noarch: python`` packages (``syn000``...: one small
module each, in chains of ten, so the solver has dependencies to follow) beside the
standard test channel (for ``python``). Measured, each with a fresh project:

  envs      1, 5, 20 envs of 2 synthetic packages each, with their chains (all
            different): cold (envs created, package cache kept) and warm `envassay check`
  packages  one env of 20, 100, 200 synthetic packages: cold and warm, with the solve and
            link seconds the store recorded and the probe's import seconds

Each line: wall seconds, seconds per env (or per package), and the peak resident memory
of the largest process of the run. Linear growth shows as a flat per-unit cost; a
quadratic step would double it from 100 to 200 packages.

    python benchmarks/scale.py [--envs 1,5,20] [--packages 20,100,200] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import Envassay, load, scratch_dir, write_project

from envassay_testing.channel import (
    build_test_channel,
    file_url,
    index_channel,
    make_noarch_python_package,
    new_channel,
)

SYNTHETIC = 200


def synthetic_channel(path: Path, count: int) -> str:
    """``syn000``..: each depends on the one before it within its chain of ten."""
    new_channel(path)
    for i in range(count):
        name = f"syn{i:03d}"
        depends = [f"syn{i - 1:03d}"] if i % 10 else []
        body = f'"""Synthetic package {i}."""\nVALUE = {i}\n'
        if i % 10:
            body += f"from syn{i - 1:03d} import VALUE as PREVIOUS\n"
        make_noarch_python_package(path, name, "1.0", files={f"{name}.py": body}, depends=depends)
    index_channel(path)
    return file_url(path)


def measured(envassay: Envassay, *args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB of the largest process) of one `envassay ARGS`."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "envassay", *args],
        cwd=envassay.root,
        env=envassay.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"`envassay {' '.join(args)}` exited {proc.returncode}: {stderr[-3000:]!r}")
    return seconds, usage.ru_maxrss / 1024


def project(root: Path, envs: dict[str, list[str]], channels: list[str]) -> Envassay:
    shutil.rmtree(root, ignore_errors=True)
    write_project(root, envs, channels)
    return Envassay(root, root.parent / "store")  # one store: the package cache is shared


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="1,5,20", help="env counts")
    parser.add_argument("--packages", default="20,100,200", help="package counts (<= 200)")
    parser.add_argument("--keep", action="store_true", help="keep the directory")
    args = parser.parse_args()

    with scratch_dir("envassay-scale-", args.keep) as base:
        started = time.perf_counter()
        channels = [build_test_channel().url, synthetic_channel(base / "channel", SYNTHETIC)]
        print(f"channel of {SYNTHETIC} synthetic packages in {time.perf_counter() - started:.1f}s")
        print(f"before: {load()}")
        # Fill the package cache once, so that each cold run below links from it.
        warmup = project(base / "warmup", {"all": ["python=3.11", "syn199"]}, channels)
        for i in range(0, SYNTHETIC, 50):
            warmup.root.joinpath("envs/all.yml").unlink()
            deps = ["python=3.11", *(f"syn{j:03d}" for j in range(i, i + 50))]
            write_project(warmup.root, {"all": deps}, channels)
            warmup("create", "envs/all.yml")

        print("envs   cold s  per env   warm s  per env   peak MB (cold/warm)")
        for count in [int(n) for n in args.envs.split(",")]:
            envs = {
                f"env{k:02d}": [
                    "python=3.11",
                    *(f"syn{(k * 7 + j) % SYNTHETIC:03d}" for j in (0, 3)),
                ]
                for k in range(count)
            }
            envassay = project(base / f"envs-{count}", envs, channels)
            envassay.drop_envs()
            cold, cold_mb = measured(envassay, "check")
            warm, warm_mb = min(measured(envassay, "check") for _ in range(3))
            print(
                f"{count:4d} {cold:8.2f} {cold / count:8.2f} {warm:8.2f} {warm / count:8.2f}"
                f"   {cold_mb:6.0f} / {warm_mb:.0f}"
            )

        print("pkgs   cold s  per pkg   warm s  per pkg   solve s  link s  imports s  peak MB")
        for count in [int(n) for n in args.packages.split(",")]:
            deps = ["python=3.11", *(f"syn{j:03d}" for j in range(count))]
            envassay = project(base / f"pkgs-{count}", {"big": deps}, channels)
            envassay.drop_envs()
            cold, cold_mb = measured(envassay, "check")
            warm, warm_mb = min(measured(envassay, "check") for _ in range(3))
            listed = [e for e in _entries(envassay) if e.get("name") == "big"]
            solve = sum(float(e.get("solve_seconds", 0)) for e in listed)
            link = sum(float(e.get("link_seconds", 0)) for e in listed)
            report = envassay.report()
            imports = sum(i["seconds"] for run in report["runs"] for i in run["imports"])
            print(
                f"{count:4d} {cold:8.2f} {cold / count:8.3f} {warm:8.2f} {warm / count:8.3f}"
                f"   {solve:7.2f} {link:7.2f} {imports:9.2f}   {max(cold_mb, warm_mb):6.0f}"
            )
        print(f"after: {load()}  (absolute times: this machine only)")
    return 0


def _entries(envassay: Envassay) -> list[dict[str, Any]]:
    import json

    return list(json.loads(envassay("envs", "list", "--json").stdout))


if __name__ == "__main__":
    raise SystemExit(main())
