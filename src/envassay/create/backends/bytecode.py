"""Compile an env's Python files after linking, as conda does for noarch packages.

py-rattler links files but writes no `.pyc`; without them every import in the
env recompiles its modules, and where PYTHONDONTWRITEBYTECODE is set (it is on
some CI machines) it does so on every run, which would make each probe pay the
compile cost again. Compiling once at create time keeps warm runs warm.

Only what ``noarch: python`` packages installed is compiled, as by conda: a
binary package ships its bytecode, and going over its files again (numpy has
hundreds) would cost a create time for nothing.

With a cache directory, each package is compiled once per (package, interpreter):
``CACHE/pyc/v1/PYTHON-RECORD/PACKAGE-RECORD/`` holds its ``.pyc`` files and, written
last, ``manifest.json`` (which files, under which names in the prefix); a later create
hard-links them in and starts no interpreter when every package hits. Records are named
by their sha256 (else md5): a package without either is compiled every time. The files
are PEP 552 checked-hash pycs, valid whatever the sources' mtimes (rattler may copy);
the interpreter checks each against its source's hash at import, so one that does not
match (a source rewritten in this env) is recompiled, never used.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envassay import command
from envassay.progress import Progress
from envassay.store_layout import CacheLayout

_SITE_PACKAGES = re.compile(r"^((?:lib/python\d+\.\d+t?|Lib)/site-packages)/(.+)$")
_DIGEST = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{64})$")
_UNSAFE = re.compile(r"[^\w.+!-]")
_VERSION = "v1"  # of the cache layout and the compile options: bump when either changes
MANIFEST = "manifest.json"
_OPTIONS = ("-q", "-f", "-j", "0", "--invalidation-mode", "checked-hash")
_TAG = re.compile(r"^[\w.-]+$")
_COPY_INSTEAD = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


@dataclass(frozen=True)
class _Package:
    key: str | None  # the cache entry's name; None: not cacheable
    sources: tuple[str, ...]  # its .py files in site-packages, relative to the prefix
    tops: tuple[str, ...]  # the top-level site-packages entries they are under


def compile_bytecode(prefix: Path, progress: Progress, cache_dir: Path | None = None) -> float:
    """Give the noarch: python packages' files their bytecode; return the seconds.

    From ``cache_dir/pyc`` where it holds them, else by `python -m compileall`, whose
    output then fills the cache."""
    python = prefix / "bin" / "python"
    records = _records(prefix)
    packages = [p for p in map(_package, records) if p is not None]
    if not python.exists() or not packages:
        return 0.0
    started = time.perf_counter()
    interpreter = _record_key(_python_record(records)) if cache_dir is not None else None
    pyc = CacheLayout(cache_dir).pyc if cache_dir else None
    root = pyc / _VERSION / interpreter if pyc and interpreter else None
    missing: list[_Package] = []
    linked = 0
    for package in packages:
        count = _link_entry(root / package.key, prefix) if root and package.key else None
        if count is None:
            missing.append(package)
        else:
            linked += count
    if len(missing) < len(packages):
        hits = len(packages) - len(missing)
        progress(f"bytecode: linked {linked} cached .pyc file(s) of {hits} package(s)")
    if missing:
        progress("compiling bytecode")
        _compile(python, sorted({prefix / top for p in missing for top in p.tops}))
        tag = _cache_tag(python, root) if root and any(p.key for p in missing) else None
        if root is not None and tag is not None:
            for package in missing:
                if package.key:
                    _store_entry(root, package, prefix, tag)
    return time.perf_counter() - started


def noarch_python_paths(prefix: Path) -> list[Path]:
    """The top-level site-packages entries (package directories, module files) that the
    env's ``noarch: python`` packages installed, from ``conda-meta``."""
    packages = [p for p in map(_package, _records(prefix)) if p is not None]
    return [prefix / top for top in sorted({top for p in packages for top in p.tops})]


def _compile(python: Path, targets: list[Path]) -> None:
    """compileall over ``targets`` in the env's interpreter.

    Files that do not compile (py2-only test data in some packages) are not an error
    here, as in conda; a module that really is broken fails its import item instead.
    Directories are compiled in parallel (-j 0); the list goes on stdin (-i -); -f: a
    pyc a package shipped is replaced too."""
    command.run(
        [python, "-m", "compileall", *_OPTIONS, "-i", "-"],
        input="".join(f"{target}\n" for target in targets),
        timeout=900,
    )


def _cache_tag(python: Path, root: Path) -> str | None:
    """The interpreter's ``sys.implementation.cache_tag`` (in the pycs' names), asked once
    and recorded in its cache directory."""
    recorded = root / "cache_tag"
    with contextlib.suppress(OSError):
        if (tag := _valid_tag(recorded.read_text(encoding="utf-8"))) is not None:
            return tag
    asked = command.run([python, "-c", "import sys; print(sys.implementation.cache_tag)"])
    tag = _valid_tag(asked.stdout)
    if tag is not None:
        with contextlib.suppress(OSError):
            root.mkdir(parents=True, exist_ok=True)
            writing = root / f".cache_tag-{os.getpid()}"
            writing.write_text(tag, encoding="utf-8")
            os.replace(writing, recorded)
    return tag


def _valid_tag(text: str) -> str | None:
    return text.strip() if _TAG.match(text.strip()) else None


def _link_entry(entry: Path, prefix: Path) -> int | None:
    """Link a cache entry's pycs into ``prefix``; the number linked, or None if the entry
    is missing, has no manifest (partly written) or cannot be read."""
    pycs = _manifest(entry)
    if pycs is None:
        return None
    made: set[str] = set()
    try:
        for index, relative in enumerate(pycs):
            target = os.path.join(prefix, relative)
            folder = os.path.dirname(target)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            _place(os.path.join(entry, f"{index}.pyc"), target)
    except OSError:  # removed under us (a rebuilt entry): compile this package instead
        return None
    return len(pycs)


def _manifest(entry: Path) -> list[str] | None:
    """The pycs an entry holds (paths in the prefix), or None: no entry, or one partly
    written (no manifest yet) or damaged."""
    try:
        pycs = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))["pycs"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return pycs if isinstance(pycs, list) and all(map(_relative, pycs)) else None


def _store_entry(root: Path, package: _Package, prefix: Path, tag: str) -> None:
    """Put ``package``'s freshly compiled pycs into the cache: built in a temporary
    directory, manifest last, then renamed into place; a lost race discards ours."""
    assert package.key is not None
    entry = root / package.key
    if _manifest(entry) is not None:
        return  # a concurrent creator stored it meanwhile
    pycs = [pyc for s in package.sources if (prefix / (pyc := _pyc_for(s, tag))).is_file()]
    building: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".tmp-{package.key}-", dir=root))
        for index, relative in enumerate(pycs):
            _place(str(prefix / relative), str(building / f"{index}.pyc"))
        manifest = {"cache_tag": tag, "pycs": pycs}
        (building / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        if entry.exists() and _manifest(entry) is None:
            _discard(entry, root)  # partly written or damaged: replaced
        os.rename(building, entry)
        building = None
    except OSError:
        pass  # another creator's entry is in place, or the cache is not writable
    finally:
        if building is not None:
            shutil.rmtree(building, ignore_errors=True)


def remove_leftovers(cache_dir: Path, older_than: float = 3600.0) -> int:
    """Delete what creators killed mid-way left in the pyc cache (``.tmp-*`` entries being
    built, ``.trash-*`` being deleted), once older than ``older_than`` seconds: never
    used, but never removed by anyone else. Returns how many went."""
    removed = 0
    cutoff = time.time() - older_than
    for leftover in sorted(CacheLayout(cache_dir).pyc.glob("*/*/.*")):
        if not leftover.name.startswith((".tmp-", ".trash-")):
            continue
        with contextlib.suppress(OSError):
            if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover)
                removed += 1
    return removed


def _discard(entry: Path, root: Path) -> None:
    """Move ``entry`` aside (atomically), then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=root))
    with contextlib.suppress(OSError):  # another creator got there first
        os.rename(entry, trash / "entry")
    shutil.rmtree(trash, ignore_errors=True)


def _place(source: str, target: str) -> None:
    """Hard-link ``source`` at ``target`` (replacing a file there), or copy it where a link
    cannot be made. Never writes through an existing file: it may be a link itself."""
    try:
        os.link(source, target)
        return
    except FileExistsError:
        os.unlink(target)
    except OSError as error:
        if error.errno not in _COPY_INSTEAD:
            raise
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in _COPY_INSTEAD:
            raise
        if os.path.lexists(target):
            os.unlink(target)
        shutil.copyfile(source, target)


def _pyc_for(source: str, tag: str) -> str:
    """``d/m.py`` -> ``d/__pycache__/m.TAG.pyc`` (what importlib looks for)."""
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[: -len('.py')]}.{tag}.pyc"


def _relative(path: Any) -> bool:
    return (
        isinstance(path, str)
        and path.endswith(".pyc")
        and not os.path.isabs(path)
        and ".." not in path.split("/")
    )


def _records(prefix: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _package(record: dict[str, Any]) -> _Package | None:
    """A noarch: python record's .py files in site-packages, or None (another kind, or
    none)."""
    if not _noarch_python(record.get("noarch")):
        return None
    sources: list[str] = []
    tops: set[str] = set()
    for name in record.get("files") or []:
        found = _SITE_PACKAGES.match(str(name))
        if found is None or "\n" in name or not name.endswith(".py"):
            continue
        sources.append(name)
        head, sep, _ = found.group(2).partition("/")
        tops.add(f"{found.group(1)}/{head}" if sep else name)
    if not sources:
        return None
    key = None if _prefix_in_sources(record) else _record_key(record)
    return _Package(key, tuple(sources), tuple(sorted(tops)))


def _record_key(record: dict[str, Any] | None) -> str | None:
    """``name-version-build-DIGEST`` by the archive's sha256, else md5: it changes whenever
    the package's content does. None without either."""
    if record is None:
        return None
    digest = next(
        (str(d) for d in (record.get("sha256"), record.get("md5")) if d and _DIGEST.match(str(d))),
        None,
    )
    if digest is None:
        return None
    name = "-".join(str(record.get(field, "")) for field in ("name", "version", "build"))
    return f"{_UNSAFE.sub('_', name)[:100]}-{digest}"


def _python_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in records if r.get("name") == "python"), None)


def _prefix_in_sources(record: dict[str, Any]) -> bool:
    """Whether a .py file has its prefix rewritten at link time: its pycs differ by env."""
    data = record.get("paths_data")
    paths = data.get("paths") if isinstance(data, dict) else None
    return isinstance(paths, list) and any(
        isinstance(p, dict) and p.get("prefix_placeholder") and str(p.get("_path")).endswith(".py")
        for p in paths
    )


def _noarch_python(noarch: Any) -> bool:
    """rattler writes ``"python"``; older conda records ``{"type": "python"}``."""
    return noarch == "python" or (isinstance(noarch, dict) and noarch.get("type") == "python")
