"""What checking every package path before linking costs a rattler create.

For the `arrays` and `mixed` specs of warm_check.py (numpy, python and pure packages from
the local test channel) and, with --realistic, the 43 packages of realistic_channel.py
(~180 MB of .tar.bz2), in one worker-like process, each from an empty package cache:

  bare install        rattler's own install of the solved records, no check: it unpacks
                      every archive into its cache and links
  check + install     envassay's install: each archive unpacked once into rattler's cache
                      (envassay.package_fetch), its listing read there and every path
                      resolved, then rattler links what is already unpacked
  check, warm         the check again with every listing remembered (every later create of
                      these packages)

    python benchmarks/link_check.py [--realistic]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import rattler
from _bench import FIVE_ENVS, load

from envassay import rattler_ops
from envassay_testing import build_test_channel


async def _measure(name: str, specs: list[str], channel: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="envassay-bench-"))
    records = await rattler_ops.solve([channel], specs, root / "solve")
    times = {}
    bare = root / "bare"
    started = time.perf_counter()
    await rattler.install(
        records,
        target_prefix=str(bare / "prefix"),
        cache_dir=bare / "pkgs",
        show_progress=False,
        execute_link_scripts=False,
    )
    times["bare install"] = time.perf_counter() - started
    ours = root / "ours"
    started = time.perf_counter()
    await rattler_ops.install(records, ours / "prefix", ours, [])
    times["check + install"] = time.perf_counter() - started
    started = time.perf_counter()
    await rattler_ops.check_link_paths(records, ours / "prefix-2", ours)
    times["check, warm"] = time.perf_counter() - started
    shown = ", ".join(f"{k} {v:.2f}s" for k, v in times.items())
    ratio = times["check + install"] / times["bare install"]
    print(f"{name}: {len(records)} packages: {shown}; check + install / bare {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realistic", action="store_true", help="also the realistic channel")
    args = parser.parse_args()
    print(load())
    channel = build_test_channel().url
    for name in ("arrays", "mixed"):
        asyncio.run(_measure(name, FIVE_ENVS[name], channel))
    if args.realistic:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from realistic_channel import IMPORTS, realistic_channel

        specs = ["python=3.11", "pip", *IMPORTS]
        asyncio.run(_measure("realistic", specs, realistic_channel().as_uri()))
    print(load())
    sys.stdout.flush()
    os._exit(0)  # py-rattler's exit crash (shared/notes/py-rattler.md)


if __name__ == "__main__":
    main()
