"""What checking every package path before linking costs a rattler create.

For the `arrays` and `mixed` specs of warm_check.py (numpy, python and pure packages from
the local test channel), in one worker-like process:

  check, cold   envassay's link check with no remembered listing: each archive read once
                (a .tar.bz2 as a stream, a .conda unpacked by rattler) and every path resolved
  check, warm   the same with the listings remembered (every later create of these packages)
  install       rattler's own install of the same records into a fresh prefix, warm package
                cache, check excluded

    python benchmarks/link_check.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from _bench import FIVE_ENVS

from envassay import rattler_ops
from envassay_testing import build_test_channel


async def _measure(name: str, specs: list[str], channel: str) -> None:
    cache = Path(tempfile.mkdtemp(prefix="envassay-bench-"))
    records = await rattler_ops.solve([channel], specs, cache)
    times = {}
    for label in ("check, cold", "check, warm"):
        started = time.perf_counter()
        await rattler_ops.check_link_paths(records, cache / "prefix-check", cache)
        times[label] = time.perf_counter() - started
    await rattler_ops.install(records, cache / "warmup", cache, [])  # fills the package cache
    started = time.perf_counter()
    await rattler_ops.install(records, cache / "prefix", cache, [])
    times["install"] = time.perf_counter() - started - times["check, warm"]
    shown = ", ".join(f"{k} {v:.3f}s" for k, v in times.items())
    print(f"{name}: {len(records)} packages: {shown}")


def main() -> None:
    channel = build_test_channel().url
    for name in ("arrays", "mixed"):
        asyncio.run(_measure(name, FIVE_ENVS[name], channel))
    os._exit(0)  # py-rattler's exit crash (shared/notes/py-rattler.md)


if __name__ == "__main__":
    main()
