"""Compile an env's Python files after linking, as conda does for noarch packages.

py-rattler links files but writes no `.pyc`; without them every import in the
env recompiles its modules, and where PYTHONDONTWRITEBYTECODE is set (it is on
some CI machines) it does so on every run, which would make each probe pay the
compile cost again. Compiling once at create time keeps warm runs warm.

Only what ``noarch: python`` packages installed is compiled, as by conda: a
binary package ships its bytecode, and going over its files again (numpy has
hundreds) would cost a create time for nothing.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from envassay import command
from envassay.backends.base import Progress

_SITE_PACKAGES = re.compile(r"^((?:lib/python\d+\.\d+t?|Lib)/site-packages)/(.+)$")


def compile_bytecode(prefix: Path, progress: Progress) -> float:
    """`python -m compileall` over the noarch: python packages' files; return the seconds."""
    python = prefix / "bin" / "python"
    targets = noarch_python_paths(prefix)
    if not python.exists() or not targets:
        return 0.0
    started = time.perf_counter()
    progress("compiling bytecode")
    # Files that do not compile (py2-only test data in some packages) are not an error
    # here, as in conda; a module that really is broken fails its import item instead.
    # Directories are compiled in parallel (-j 0); the list goes on stdin (-i -).
    command.run(
        [python, "-m", "compileall", "-q", "-j", "0", "-i", "-"],
        input="".join(f"{target}\n" for target in targets),
        timeout=900,
    )
    return time.perf_counter() - started


def noarch_python_paths(prefix: Path) -> list[Path]:
    """The top-level site-packages entries (package directories, module files) that the
    env's ``noarch: python`` packages installed, from ``conda-meta``."""
    tops: set[str] = set()
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or not _noarch_python(record.get("noarch")):
            continue
        for name in record.get("files") or []:
            found = _SITE_PACKAGES.match(str(name))
            if found is None or "\n" in name or not name.endswith(".py"):
                continue
            head, sep, _ = found.group(2).partition("/")
            tops.add(f"{found.group(1)}/{head}" if sep else name)
    return [prefix / top for top in sorted(tops)]


def _noarch_python(noarch: Any) -> bool:
    """rattler writes ``"python"``; older conda records ``{"type": "python"}``."""
    return noarch == "python" or (isinstance(noarch, dict) and noarch.get("type") == "python")
