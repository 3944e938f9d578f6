"""Cold `envassay create` against a bare py-rattler solve + install of the same specs.

For the five specs of warm_check.py, from the same warm package cache (every package
already extracted; each measured round starts with no env at all), best of N, summed
over the specs, one process per spec on both sides:

  envassay create   `envassay create SPEC`: CLI, spec, store key, worker (solve + link),
                    then `compileall` of site-packages, then the store marker
  bare rattler      a fresh interpreter: `rattler.solve` + `rattler.install` of the
                    spec's conda specs into a new prefix, same caches, then os._exit
  compile           envassay's compile step (`compileall` of what noarch: python packages
                    installed) run on the bare prefixes, to show its share

Target: envassay create <= 1.25 x bare rattler. Printed with and without the compile
step (envassay compiles bytecode; the bare install does not).

    python benchmarks/cold_create.py [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import FIVE_ENVS, Envassay, load, python_ok, timed, write_project

from envassay.backends.bytecode import compile_bytecode
from envassay.spec import load_spec
from envassay.testing.channel import build_test_channel

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
    root = Path(tempfile.mkdtemp(prefix="envassay-cold-"))
    envassay = Envassay(root, root / "store")
    bare_root = root / "bare"
    try:
        specs = write_project(root, FIVE_ENVS, [channel.url])
        print(f"{len(specs)} specs: {', '.join(FIVE_ENVS)}; {load()}")
        for spec in specs:  # fill the package cache (untimed)
            envassay("create", spec)
        cache = envassay.store / "cache"

        def create_all() -> None:
            for spec in specs:
                envassay("create", spec)

        def bare_all() -> None:
            shutil.rmtree(bare_root, ignore_errors=True)
            for spec in specs:
                solve = load_spec(spec).solve_specs
                request = [[channel.url], solve, str(bare_root / spec.stem), str(cache)]
                python_ok(Path(sys.executable), "-c", BARE, json.dumps(request))

        def compile_all() -> None:  # envassay's own compile step, on the bare prefixes
            for spec in specs:
                compile_bytecode(bare_root / spec.stem, lambda _line: None)

        best = {"envassay create": float("inf"), "bare rattler": float("inf")}
        best["compile"] = float("inf")
        for _ in range(args.repeat):
            envassay.drop_envs()
            best["envassay create"] = min(best["envassay create"], timed(create_all))
            best["bare rattler"] = min(best["bare rattler"], timed(bare_all))
            best["compile"] = min(best["compile"], timed(compile_all))
        ours, bare, compiled = best["envassay create"], best["bare rattler"], best["compile"]
        for label, seconds in best.items():
            print(f"  {label:<16} {seconds:7.2f} s")
        print(f"envassay / bare                    {ours / bare:5.2f}x  (target <= 1.25x)")
        print(f"envassay / (bare + compile)        {ours / (bare + compiled):5.2f}x")
        print(f"envassay without compile / bare    {(ours - compiled) / bare:5.2f}x")
        print(f"compile's share of envassay create {compiled / ours:5.1%}")
        print(f"after: {load()}  (absolute times: this machine only)")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
