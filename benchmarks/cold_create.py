"""Cold `envassay create` against a bare py-rattler solve + install of the same specs.

For the five specs of warm_check.py, from the same warm package cache (every package
already extracted; each measured round starts with no env at all), best of N, summed
over the specs, one process per spec on both sides:

  envassay create           `envassay create SPEC`: CLI, spec, store key, worker (solve +
                            link), bytecode for noarch: python packages, store marker; the
                            pyc cache warm (every package compiled before): the normal case
                            once the package cache is warm too, the pycs are linked in
  envassay create, no pycs  the same with the store's pyc cache emptied before each round:
                            first-time cost (the packages shared by the five specs are
                            still compiled once only)
  bare rattler              a fresh interpreter: `rattler.solve` + `rattler.install` of the
                            spec's conda specs into a new prefix, same caches, then os._exit
  compile                   `compileall` of what noarch: python packages installed, without
                            the cache, on the bare prefixes: what a create would pay for
                            bytecode without the pyc cache

Target: envassay create <= 1.25 x bare rattler. Also printed against bare + compile
(envassay gives the env its bytecode; the bare install does not).

    python benchmarks/cold_create.py [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import FIVE_ENVS, Envassay, load, python_ok, scratch_dir, timed, write_project

from envassay.create.backends.bytecode import compile_bytecode
from envassay.spec.environment import load_spec
from envassay_testing.channel import build_test_channel

BARE = r"""
import asyncio, json, os, sys
from rattler import Gateway, MatchSpec, Platform, VirtualPackage, install, solve
channels, specs, prefix, cache = json.loads(sys.argv[1])
async def main():
    records = await solve(
        sources=channels, specs=[MatchSpec(s) for s in specs],
        gateway=Gateway(cache_dir=os.path.join(cache, "repodata")),
        platforms=[Platform.current(), Platform("noarch")],
        virtual_packages=VirtualPackage.detect(),
    )
    await install(records, target_prefix=prefix, cache_dir=os.path.join(cache, "pkgs"),
                  show_progress=False, execute_link_scripts=False)
asyncio.run(main())
sys.stdout.flush()
os._exit(0)  # py-rattler's exit-time crash (shared/notes/py-rattler.md), as envassay's worker
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (best of)")
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args()

    import json

    channel = build_test_channel()
    with scratch_dir("envassay-cold-", args.keep) as root:
        envassay = Envassay(root, root / "store")
        bare_root = root / "bare"
        specs = write_project(root, FIVE_ENVS, [channel.url])
        print(f"{len(specs)} specs: {', '.join(FIVE_ENVS)}; {load()}")
        for spec in specs:  # fill the package cache (untimed)
            envassay("create", spec)
        cache = envassay.store / "cache"

        def create_all() -> None:
            for spec in specs:
                envassay("create", spec)

        def create_all_uncached() -> None:
            shutil.rmtree(cache / "pyc", ignore_errors=True)
            create_all()

        def bare_all() -> None:
            shutil.rmtree(bare_root, ignore_errors=True)
            for spec in specs:
                solve = load_spec(spec).solve_specs
                request = [[channel.url], solve, str(bare_root / spec.stem), str(cache)]
                python_ok(Path(sys.executable), "-c", BARE, json.dumps(request))

        def compile_all() -> None:  # the compile step without the cache, on the bare prefixes
            for spec in specs:
                compile_bytecode(bare_root / spec.stem, lambda _line: None)

        ways = {
            "envassay create": create_all,
            "envassay create, no pyc cache": create_all_uncached,
            "bare rattler": bare_all,
            "compile": compile_all,
        }
        best = dict.fromkeys(ways, float("inf"))
        for _ in range(args.repeat):
            for label, way in ways.items():  # round-robin: a busy spell hits every way
                if way in (create_all, create_all_uncached):
                    envassay.drop_envs()
                best[label] = min(best[label], timed(way))
        ours, cold = best["envassay create"], best["envassay create, no pyc cache"]
        bare, compiled = best["bare rattler"], best["compile"]
        for label, seconds in best.items():
            print(f"  {label:<30} {seconds:7.2f} s")
        print(f"envassay / bare                            {ours / bare:5.2f}x  (target <= 1.25x)")
        print(f"envassay / (bare + compile)                {ours / (bare + compiled):5.2f}x")
        print(f"no pyc cache: envassay / bare              {cold / bare:5.2f}x")
        print(f"no pyc cache: envassay / (bare + compile)  {cold / (bare + compiled):5.2f}x")
        print(f"after: {load()}  (absolute times: this machine only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
