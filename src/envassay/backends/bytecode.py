"""Compile an env's Python files after linking, as conda does for noarch packages.

py-rattler links files but writes no `.pyc`; without them every import in the
env recompiles its modules, and where PYTHONDONTWRITEBYTECODE is set (it is on
some CI machines) it does so on every run, which would make each probe pay the
compile cost again. Compiling once at create time keeps warm runs warm.
"""

from __future__ import annotations

import time
from pathlib import Path

from envassay import command
from envassay.backends.base import Progress


def compile_bytecode(prefix: Path, progress: Progress) -> float:
    """`python -m compileall` over the env's site-packages; return the seconds taken."""
    python = prefix / "bin" / "python"
    site_packages = sorted(prefix.glob("lib/python3*/site-packages"))
    if not python.exists() or not site_packages:
        return 0.0
    started = time.perf_counter()
    progress("compiling bytecode")
    # Files that do not compile (py2-only test data in some packages) are not an error
    # here, as in conda; a module that really is broken fails its import item instead.
    command.run([python, "-m", "compileall", "-q", "-j", "0", *site_packages], timeout=900)
    return time.perf_counter() - started
