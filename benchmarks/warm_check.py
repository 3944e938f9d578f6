"""Warm `envassay check` over five specs against cold, and against the physical floor.

Five small-to-medium specs on the local test channel, in a temporary project:

  cold        `envassay check` with an empty store: every env solved, linked, compiled,
              probed (best of --cold-repeat)
  cold, cached pkgs   the same with the package cache kept (only the envs dropped)
  warm        `envassay check` again, nothing changed: creates nothing, only re-probes
              (best of --repeat); also with `-j auto` (several envs probed at once)
  floor       per env, one interpreter importing the env's modules in a loop (the same
              modules the probe imports), best of --repeat, summed over the envs; shown
              with its two parts: the bare interpreter starts and the import times the
              probe measured
  host side   warm minus the probes' own wall times: CLI + pytest + collection + checks

Targets: warm <= 10 % of cold; warm <= 2 x floor.

    python benchmarks/warm_check.py [--repeat 5] [--cold-repeat 2] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import FIVE_ENVS, Envassay, best_of, load, python_ok, scratch_dir, timed, write_project

from envassay.run.session import parse_jobs
from envassay.targets import NativeTarget
from envassay_testing.channel import build_test_channel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="warm and floor runs (best of)")
    parser.add_argument("--cold-repeat", type=int, default=2, help="cold runs (best of)")
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args()

    channel = build_test_channel()
    with scratch_dir("envassay-warm-", args.keep) as root:
        envassay = Envassay(root, root / "store")
        write_project(root, FIVE_ENVS, [channel.url])
        print(f"{len(FIVE_ENVS)} envs: {', '.join(FIVE_ENVS)}; {load()}")
        envassay("check")  # untimed: fills the OS page cache for the channel and the host
        cold = cold_cached = float("inf")
        for _ in range(args.cold_repeat):
            shutil.rmtree(envassay.store, ignore_errors=True)
            cold = min(cold, timed(lambda: envassay("check")))
            envassay.drop_envs()
            cold_cached = min(cold_cached, timed(lambda: envassay("check")))
        report = envassay.report()  # warm too; gives the modules and the probes' times
        prefixes = envassay.prefixes()
        modules = {
            run["env"]: [i["module"] for i in run["imports"] if i["status"] == "ok"]
            for run in report["runs"]
        }
        measured_imports = sum(i["seconds"] for run in report["runs"] for i in run["imports"])
        ways: dict[str, Callable[[], object]] = {
            "warm": lambda: envassay("check"),
            "warm -j auto": lambda: envassay("check", "-j", "auto"),
        }
        for name, mods in modules.items():
            target = NativeTarget(prefixes[name])
            loop = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
            ways[f"floor {name}"] = _python(target, "-c", loop, *mods)
            ways[f"start {name}"] = _python(target, "-c", "pass")
        best = best_of(ways, args.repeat)
        warm = best["warm"]
        floor = sum(v for k, v in best.items() if k.startswith("floor "))
        starts = sum(v for k, v in best.items() if k.startswith("start "))
        probes = sum(run["seconds"] for run in report["runs"])
        print(f"cold (empty store)        {cold:7.2f} s")
        print(f"cold (package cache kept) {cold_cached:7.2f} s")
        print(f"warm                      {warm:7.2f} s")
        print(f"floor                     {floor:7.2f} s  = interpreter starts {starts:.2f} s")
        print(f"  + imports in those interpreters; the probe measured {measured_imports:.2f} s")
        print(f"  warm's targets (create lookup + probe + checks) {probes:.2f} s, in the")
        print("  background from the start; the host side (CLI, pytest, collection, reports)")
        print(f"  overlaps them, and what does not is {max(0.0, warm - probes):.2f} s")
        print(f"warm, -j auto ({parse_jobs('auto')} at once)    {best['warm -j auto']:7.2f} s")
        print(f"warm / cold               {warm / cold:7.1%}   (target <= 10 %)")
        print(f"warm / cold, cached pkgs  {warm / cold_cached:7.1%}")
        print(f"warm / floor              {warm / floor:7.2f}x  (target <= 2x)")
        print(f"warm -j auto / cold       {best['warm -j auto'] / cold:7.1%}")
        print(f"warm -j auto / floor      {best['warm -j auto'] / floor:7.2f}x")
        print(f"after: {load()}  (absolute times: this machine only)")
    return 0


def _python(target: NativeTarget, *args: str) -> Callable[[], object]:
    return lambda: python_ok(target.python, *args, env=target.env())


if __name__ == "__main__":
    raise SystemExit(main())
