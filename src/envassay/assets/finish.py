"""Finish a created env for a non-root runtime user, in one walk over the prefix.

Run as root by create.sh with the env's own interpreter: ``python finish.py PREFIX``.
- Every file and directory readable by all (``chmod a+rX``): rattler writes
  conda-meta/*.json with mode 0600, and the runtime user is not root.
- Bytecode for every module under PREFIX/lib that has none, or whose timestamp pyc does
  not match its source (the runtime user cannot write __pycache__; conda compiles only
  noarch packages, as does envassay's creator). A hash-based pyc is valid as it is.
- Prints the prefix's size.

One pass replaces ``compileall`` (which hands every file to a worker process to read
its pyc header) plus ``chmod -R`` plus ``du``. Python 3.6+ syntax, standard library only.
"""

import compileall
import contextlib
import os
import stat
import struct
import sys
from importlib.util import MAGIC_NUMBER, cache_from_source

READ_ALL = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
EXEC_ALL = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


def readable(path, mode, directory):
    """chmod a+rX: read for all; search (x) for all on directories and on executables."""
    wanted = mode | READ_ALL
    if directory or mode & EXEC_ALL:
        wanted |= EXEC_ALL
    if wanted != mode:
        with contextlib.suppress(OSError):
            os.chmod(path, stat.S_IMODE(wanted))


def needs_bytecode(source, info):
    """Whether ``source`` has no valid pyc (missing, or a timestamp pyc of another source)."""
    try:
        with open(cache_from_source(source), "rb") as handle:
            header = handle.read(16)
    except (OSError, ValueError, NotImplementedError):
        return True
    if len(header) < 16 or header[:4] != MAGIC_NUMBER:
        return True
    flags, mtime, size = struct.unpack("<III", header[4:16])
    if flags & 1:  # hash-based: checked against the source when imported, or unchecked
        return False
    return mtime != (int(info.st_mtime) & 0xFFFFFFFF) or size != (info.st_size & 0xFFFFFFFF)


def finish(prefix):
    lib = os.path.join(prefix, "lib") + os.sep
    total = 0
    todo = []
    for root, _dirs, files in os.walk(prefix):
        readable(root, os.lstat(root).st_mode, True)
        for name in files:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                continue
            total += info.st_size
            readable(path, info.st_mode, False)
            if name.endswith(".py") and path.startswith(lib) and needs_bytecode(path, info):
                todo.append(path)
    compiled = compile_all(todo)
    # __pycache__ directories made just now: readable too.
    for path in todo:
        cache = os.path.dirname(cache_from_source(path))
        if os.path.isdir(cache):
            readable(cache, os.lstat(cache).st_mode, True)
            pyc = cache_from_source(path)
            if os.path.exists(pyc):
                readable(pyc, os.lstat(pyc).st_mode, False)
    return total, len(todo), compiled


def compile_all(paths):
    """Compile ``paths`` (in worker processes when there are many); errors are quiet, as
    with ``compileall -q`` (a test file written for Python 2 simply has no bytecode)."""
    if len(paths) < 200:
        return sum(1 for path in paths if compile_one(path))
    try:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor() as pool:
            return sum(1 for ok in pool.map(compile_one, paths, chunksize=64) if ok)
    except (ImportError, OSError, NotImplementedError):
        return sum(1 for path in paths if compile_one(path))


def compile_one(path):
    try:
        return bool(compileall.compile_file(path, quiet=2))
    except Exception:  # a module that cannot compile keeps no bytecode
        return False


def main(argv):
    total, missing, compiled = finish(argv[1])
    size = f"{total / 1e6:.0f} MB in {argv[1]}"
    print(f"{size}; bytecode written for {compiled} of {missing} module(s) that had none")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
