"""Worker process for rattler work: `python -m envassay.backends.rattler_worker`.

Reads one JSON request on stdin, prints progress lines on stderr and one JSON
result on stdout, then leaves with ``os._exit`` so py-rattler's exit-time crash
(see rattler_ops) cannot turn a finished create into a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _progress(message: str) -> None:
    print(f"[rattler] {message}", file=sys.stderr, flush=True)


async def _create(request: dict[str, Any]) -> dict[str, Any]:
    from envassay import rattler_ops

    cache_dir = Path(request["cache_dir"])
    prefix = Path(request["prefix"])
    specs: list[str] = request["specs"]
    started = time.perf_counter()
    _progress(f"solving {len(specs)} spec(s) against {', '.join(request['channels'])}")
    records = await rattler_ops.solve(
        request["channels"], specs, cache_dir, request.get("platform")
    )
    solved = time.perf_counter()
    _progress(
        f"solved: {len(records)} package(s) in {solved - started:.2f}s; linking into {prefix}"
    )
    await rattler_ops.install(records, prefix, cache_dir, specs)
    linked = time.perf_counter()
    _progress(f"linked in {linked - solved:.2f}s")
    return {
        "ok": True,
        "records": [rattler_ops.record_summary(r) for r in records],
        "solve_seconds": solved - started,
        "link_seconds": linked - solved,
    }


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies, so a killed `create` leaves no linker behind."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    parent = os.getppid()
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main() -> None:
    from envassay.rattler_ops import RattlerFailure

    _die_with_parent()
    code = 0
    try:
        request = json.loads(sys.stdin.read())
        result = asyncio.run(_create(request))
    except RattlerFailure as failure:
        result = {"ok": False, "kind": failure.kind, "message": failure.message}
    except Exception as exc:  # reported to the parent, which decides how to show it
        result = {"ok": False, "kind": "other", "message": f"{type(exc).__name__}: {exc}"}
        code = 1
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
