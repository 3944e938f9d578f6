"""envassay's in-target probe: facts about one Python environment, as one JSON document.

This file runs INSIDE the interpreter under test, so it uses only the standard
library and Python 3.8 syntax. It is piped to ``python - '<request JSON>'`` and
prints exactly one JSON document on stdout (schema: ``envassay.probe.model``).
Diagnostics go to stderr. It never raises: a section that fails becomes
``{"error": "<traceback>"}``.
"""

from __future__ import annotations

import os
import sys
import time

STARTED = time.perf_counter()

# Replaced by the host in the text it pipes in (never argv or the environment, which
# other processes can read): the report is framed with it, so a line a package wrote
# where the report goes is told apart from the report.
REPORT_TOKEN = ""

# Set by the host (envassay.command.GUARD_VARIABLE, through NativeTarget) instead of
# running this script under command.py's guard interpreter, whose start would cost
# more than the rest of the probe's own work: the probe is its own guard.
GUARD_VARIABLE = "ENVASSAY_GUARD_PARENT"


def guard_against_orphaning():
    """Die with envassay, even when it is killed by SIGKILL, taking the import child too.

    As command.py's guard: the kernel sends SIGTERM when the parent dies
    (PR_SET_PDEATHSIG; Linux), and the handler kills this process group, which
    the host started for this probe alone. No-op unless the host asked for it.
    """
    parent = os.environ.pop(GUARD_VARIABLE, "")
    if not parent.isdigit() or not sys.platform.startswith("linux"):
        return
    import signal

    def end(*_):
        end_descendants()
        os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, end)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # an interpreter without ctypes: the probe still works, unguarded
        return
    if os.getppid() != int(parent):  # the host died before prctl took effect
        end()


# --- containment: what a package starts ends with the probe ------------------------------


def contain():
    """Linux: adopt every process the imports orphan (a child subreaper), so that
    :func:`end_descendants` finds a daemon that double-forked and left its session; and
    make this process undumpable, so other processes of the user cannot read its memory
    or open its pipes through /proc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
        libc.prctl(4, 0)  # PR_SET_DUMPABLE
    except Exception:  # no ctypes: uncontained, as before
        pass


def end_descendants():
    """Kill and reap every process still below this one; returns how many there were."""
    if not sys.platform.startswith("linux"):
        return 0
    import contextlib
    import signal

    ended = 0
    for _ in range(10000):  # orphans of the killed come up to us: repeat until none
        found = children()
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for pid in found:
            try:
                os.waitpid(pid, 0)
                ended += 1
            except OSError:
                pass
    return ended


def children():
    """The pids whose parent is this process (/proc)."""
    me = os.getpid()
    found = set()
    try:
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children") as handle:
                found.update(int(pid) for pid in handle.read().split())
        return found
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: read every process's parent
        pass
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if entry.isdigit() and int(handle.read().rsplit(")", 1)[1].split()[1]) == me:
                    found.add(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


if __name__ == "__main__":
    contain()
    guard_against_orphaning()

# The child that imports modules. It reads the whole module list from stdin
# first (so a module that reads stdin cannot eat it), keeps a private copy of
# the original stdout for the protocol and points fd 1 at stderr, so what an
# imported module prints (even from C) cannot corrupt the protocol.
CHILD_CODE = r"""
import faulthandler, importlib, os, sys, time
faulthandler.enable()
sys.path[:] = [p for p in sys.path if p]
key, *modules = sys.stdin.read().split() or [""]
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
def say(line, key=key):
    out.write(key + " " + line + "\n")
    out.flush()
del key
def describe(exc):
    try:
        text = "%s: %s" % (type(exc).__name__, exc)
    except Exception:
        text = repr(exc)
    return text[:2000]
for name in modules:
    say("START " + name)
    start = time.perf_counter()
    try:
        importlib.import_module(name)
    except BaseException as exc:
        seconds = time.perf_counter() - start
        import json  # only now, so that importing json itself is timed honestly
        say("ERR %s %.6f %s" % (name, seconds, json.dumps(describe(exc))))
    else:
        say("OK %s %.6f" % (name, time.perf_counter() - start))
"""


class Process:
    """A child interpreter running CHILD_CODE: binary ``stdin`` to write, ``stdout`` to read.

    os.posix_spawn where there is one: importing subprocess alone takes as long
    as starting the child, and this is the probe's critical path.
    """

    def __init__(self):
        args = [sys.executable, "-c", CHILD_CODE]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = None
        self.code = None  # the exit status, once reaped
        if hasattr(os, "posix_spawn"):
            self.pid, self.stdin, self.stdout = posix_spawn(args, env)
        else:
            import subprocess

            pipe = subprocess.PIPE
            self.popen = subprocess.Popen(args, stdin=pipe, stdout=pipe, env=env)
            self.stdin, self.stdout = self.popen.stdin, self.popen.stdout

    def kill(self):
        if self.popen is not None:
            self.popen.kill()
            return
        import signal

        if self.code is None:  # not reaped yet, so the pid is still ours
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout=None):
        """The exit status (negative for a signal, as subprocess has it); None on timeout."""
        if self.popen is not None:
            try:
                return self.popen.wait(timeout)
            except Exception:  # subprocess.TimeoutExpired
                return None
        if self.code is not None:
            return self.code
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                signaled = os.WIFSIGNALED(status)
                self.code = -os.WTERMSIG(status) if signaled else os.WEXITSTATUS(status)
                return self.code
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)


def posix_spawn(args, env):
    """(pid, stdin file, stdout file) of ``args`` started with pipes for fds 0 and 1."""
    child_in, to_child = os.pipe()
    from_child, child_out = os.pipe()
    # The pipes are close-on-exec; only the dup2'd copies reach the child.
    actions = [(os.POSIX_SPAWN_DUP2, child_in, 0), (os.POSIX_SPAWN_DUP2, child_out, 1)]
    try:
        pid = os.posix_spawn(args[0], args, env, file_actions=actions)
    except BaseException:
        os.close(to_child)
        os.close(from_child)
        raise
    finally:
        os.close(child_in)
        os.close(child_out)
    return pid, os.fdopen(to_child, "wb"), os.fdopen(from_child, "rb")


def spawn_first_child():
    """The first child, or None for Child() to try again and report why it cannot start."""
    try:
        return Process()
    except Exception:
        return None


# The first child starts before anything else is imported or done, so that its
# interpreter start-up overlaps the probe's own work instead of following it.
FIRST_CHILD = spawn_first_child() if __name__ == "__main__" else None

# platform, sysconfig, site, csv, signal and traceback are imported where they are used,
# for the same reason.
import collections  # noqa: E402
import json  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterable  # noqa: E402

PROBE_VERSION = 2
MANAGERS = ("conda", "pip")
# A metapackage is never followed into the interpreter itself or a virtual package.
NOT_FOLLOWED = ("python", "python_abi")
# How long a fresh child may take to start or to go from one module to the next.
STARTUP_SECONDS = 30.0
# How long a child that has done all its imports may take to exit, at most (a
# module may have started a non-daemon thread).
EXIT_SECONDS = 5.0
SITE_PACKAGES = re.compile(r"^(?:lib/(?:python|pypy)\d+\.\d+t?|Lib)/site-packages/(.+)$")
# A distribution's metadata directory among a conda record's files.
METADATA_DIR = re.compile(r"^(.*?/site-packages/[^/]+\.(?:dist-info|egg-info))(?:/|$)")
DEPENDS_NAME = re.compile(r"[^\s\[=<>!~,]+")
HEADER = re.compile(r"^(name|version|requires-dist)[ \t]*:(.*)$", re.IGNORECASE)
TIMEOUT = "timeout"
# How often a child that may have exited is looked at while its pipe stays open.
EXIT_POLL = 0.1
# The longest protocol line read from a child (an ERR line carries at most 2000 characters).
LINE_LIMIT = 65536


def normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def unique(items):
    """Items in first-seen order, without repeats."""
    return list(collections.OrderedDict.fromkeys(items))


# --- import names from installed files -------------------------------------------------


def file_module(filename: str) -> str | None:
    """``foo.py`` or an extension module (``foo.cpython-311-x86_64-linux-gnu.so``) -> ``foo``."""
    if not filename.endswith((".py", ".so", ".pyd")):
        return None
    stem = filename.split(".", 1)[0]
    return stem if stem.isidentifier() else None


def names_below(paths: Iterable[str]) -> set[str]:
    """Importable names for paths relative to one directory (site-packages or a namespace)."""
    names: set[str] = set()
    dirs: dict[str, list[str]] = collections.defaultdict(list)
    packages: set[str] = set()
    for path in paths:
        head, sep, rest = path.replace("\\", "/").partition("/")
        if not sep:
            names.update(filter(None, [file_module(head)]))
        elif rest.startswith("__init__."):
            packages.add(head)
        else:
            dirs[head].append(rest)
    for top in packages.union(dirs):
        if top.isidentifier() and top != "__pycache__":
            names.update(package_names(top, top in packages, dirs.get(top, ())))
    return names


def package_names(top: str, regular: bool, below: Iterable[str]) -> list[str]:
    """A regular package is named by itself; a namespace package by the modules it holds.

    A directory with no modules in it at all (data files) is nothing to import.
    """
    if regular:
        return [top]
    return [top + "." + name for name in sorted(names_below(below))]


def module_names(paths: Iterable[str]) -> list[str]:
    """Top-level import names installed at ``paths`` (relative to site-packages)."""
    names = sorted(names_below(paths))
    public = [n for n in names if not n.rsplit(".", 1)[-1].startswith("_")]
    return public or names


# --- facts about the interpreter ------------------------------------------------------


def interpreter_facts():
    """Version, paths and the PEP 508 marker environment."""
    import platform
    import sysconfig

    return {
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "prefix": sys.prefix,
        "base_prefix": sys.base_prefix,
        # Without conda-meta the host judges the env by the interpreter and pip alone.
        "conda_meta": os.path.isdir(os.path.join(sys.prefix, "conda-meta")),
        "platform": sysconfig.get_platform(),
        "markers": marker_environment(platform),
        "virtual_packages": virtual_packages(platform),
    }


def virtual_packages(platform):
    """The machine's conda virtual packages, detected as conda detects them (its
    ``conda.plugins.virtual_packages``), so depends such as ``__glibc >=2.28`` are judged
    against the target itself. ``__cuda`` and ``__archspec`` are left to the GPU check
    and the solver."""
    found = {}
    system = platform.system()
    if os.name == "posix":
        found["__unix"] = "0"
    if system == "Linux":
        release = re.match(r"\d+\.\d+(\.\d+)?(\.\d+)?", platform.release())
        found["__linux"] = release.group(0) if release else "0"
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError):
            libc = ""
        if libc.startswith("glibc "):
            found["__glibc"] = libc.split(" ", 1)[1]
    elif system == "Darwin":
        found["__osx"] = platform.mac_ver()[0] or "0"
    elif system == "Windows":
        found["__win"] = "0"
    return found


def marker_environment(platform):
    """The same dict as ``packaging.markers.default_environment()``."""
    info = sys.implementation.version
    version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def site_packages():
    """The environment's site-packages directories that exist, the env's own first.

    From site, not sysconfig.get_paths(): that loads _sysconfigdata, whose bytecode a
    conda python seldom has valid (its prefix is rewritten at link time), so it is
    compiled again on every probe: 10-20 ms.
    """
    import site

    candidates = site.getsitepackages() if hasattr(site, "getsitepackages") else []
    candidates += [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    return [p for p in unique(candidates) if os.path.isdir(p)]


# --- conda-meta records ----------------------------------------------------------------


def conda_records(warnings):
    """Every ``<prefix>/conda-meta/*.json`` record, with the modules its files provide."""
    meta = os.path.join(sys.prefix, "conda-meta")
    if not os.path.isdir(meta):
        return []
    records = []
    for entry in sorted(os.listdir(meta)):
        if entry.endswith(".json"):
            try:
                record = conda_record(os.path.join(meta, entry))
            except Exception as exc:
                warnings.append(f"conda-meta/{entry}: unreadable: {type(exc).__name__}: {exc}")
                continue
            # conda ignores a record whose file is not NAME-VERSION-BUILD.json (its
            # PrefixData warns "Ignoring malformed prefix record"), so the env lacks it.
            if entry[:-5] != "{name}-{version}-{build}".format(**record):
                warnings.append(f"conda-meta/{entry}: ignored: not named after its record")
                continue
            records.append(record)
    return sorted(records, key=lambda r: r["name"])


def conda_record(path):
    """One conda-meta record, reduced to the fields the host judges."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    files = raw.get("files") or []
    below = [m.group(1) for m in map(SITE_PACKAGES.match, files) if m]
    return {
        "name": raw["name"],
        "version": raw["version"],
        "build": raw.get("build", ""),
        "channel": raw.get("channel"),
        "depends": list(raw.get("depends") or []),
        "constrains": list(raw.get("constrains") or []),
        "build_number": raw.get("build_number"),
        "subdir": raw.get("subdir"),
        "url": raw.get("url"),
        "requested_spec": requested_spec(raw),
        "python_modules": module_names(below),
        "python_dists": python_dists(files),
        # Only used here to tell a metapackage; not part of the output.
        "_has_files": bool(files),
    }


def python_dists(files):
    """The metadata directories (dist-info, egg-info) a record's files put down, as real
    paths: the host tells conda's distributions from pip's by them, as ``conda list``
    does (a metadata directory no record owns is pip's)."""
    found = [m.group(1) for m in map(METADATA_DIR.match, files) if m]
    return [real_path(os.path.join(sys.prefix, path)) for path in unique(found)]


def real_path(path):
    """``path`` with symlinks resolved (``lib64`` -> ``lib``), so that paths compare."""
    return os.path.normcase(os.path.realpath(path))


def requested_spec(raw):
    """What the user asked for: conda writes ``requested_spec``, rattler ``requested_specs``."""
    return raw.get("requested_spec") or ", ".join(raw.get("requested_specs") or []) or None


# --- installed distributions ------------------------------------------------------------


def distributions(warnings: list[str]) -> list[dict]:
    """Installed distributions; the first of a name on sys.path wins, as for imports.

    The metadata directories are read directly: importing importlib.metadata (and
    the email package it parses with) cost more than everything else the probe
    does in a small environment, and ``dist.metadata`` parses the whole file,
    long description included, again for each of name, version and requires.
    """
    found = collections.OrderedDict()
    for path in metadata_dirs():
        try:
            headers = metadata_headers(read_meta(path, "METADATA") or read_meta(path, "PKG-INFO"))
            name = (headers.get("name") or [""])[0]
            if not name:
                continue
            if normalize(name) in found:  # shadowed: installed, but not what imports find
                found[normalize(name)]["shadows"].append(real_path(path))
            else:
                found[normalize(name)] = distribution(path, name, headers)
        except Exception as exc:
            warnings.append(f"{path}: {type(exc).__name__}: {exc}")
    return list(found.values())


def metadata_dirs():
    """Each ``*.dist-info`` / ``*.egg-info`` (or an egg's EGG-INFO) on sys.path, in order."""
    for entry in sys.path:
        if entry.endswith(".egg") and os.path.isdir(os.path.join(entry, "EGG-INFO")):
            yield os.path.join(entry, "EGG-INFO")
        elif os.path.isdir(entry):
            for name in sorted(os.listdir(entry)):
                if name.endswith((".dist-info", ".egg-info")):
                    yield os.path.join(entry, name)


def read_meta(path, name):
    """One metadata file's text, or None. An old ``foo.egg-info`` file is itself PKG-INFO."""
    if os.path.isfile(path):
        if name != "PKG-INFO":
            return None
        name = ""
    try:
        with open(os.path.join(path, name) if name else path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def metadata_headers(text):
    """Name, Version and Requires-Dist from METADATA, by lower-cased field name.

    Only the header block is searched: the body (a long description) can be most
    of the file. A line starting with whitespace continues the field above it, as
    in email (a writer such as Python's email generator folds long values, and
    whl2conda rewrites METADATA with it); pip reads the unfolded value, stripped.
    """
    headers = collections.defaultdict(list)
    head = (text or "").split("\n\n", 1)[0].split("\r\n\r\n", 1)[0]
    key = None
    for line in head.splitlines():
        if line[:1] in (" ", "\t"):
            if key is not None:
                headers[key][-1] = (headers[key][-1] + " " + line.strip()).strip()
            continue
        match = HEADER.match(line)
        key = match.group(1).lower() if match else None
        if match:
            headers[key].append(match.group(2).strip())
    return headers


def distribution(path, name, headers):
    """One distribution's name, version, requirements, import names and installer."""
    return {
        "name": name,
        "version": (headers.get("version") or [""])[0],
        "requires": headers.get("requires-dist") or egg_requires(path),
        "top_level": top_level(path),
        "installer": (read_meta(path, "INSTALLER") or "").strip() or None,
        "location": os.path.dirname(path),
        "metadata": real_path(path),
        "shadows": [],
    }


def legacy(path):
    """importlib.metadata's view of an egg-info, for the formats it alone converts."""
    import importlib.metadata
    import pathlib

    return importlib.metadata.PathDistribution(pathlib.Path(path))


def egg_requires(path):
    """An egg-info's requires.txt as Requires-Dist strings."""
    if read_meta(path, "requires.txt") is None:
        return []
    return list(legacy(path).requires or [])


def top_level(path):
    """Import names from top_level.txt, else derived from the RECORD (or egg-info file list).

    A top_level.txt entry with no module beside the metadata is not an import name:
    Debian's setuptools lists ``debian``, which it does not install.
    """
    text = read_meta(path, "top_level.txt")
    present = modules_at(os.path.dirname(path))
    listed = [line.strip() for line in (text or "").split() if line.strip()]
    names = [n for n in listed if n in present]
    if names:
        return module_names([n + "/__init__.py" for n in names])
    record = read_meta(path, "RECORD")
    if record is not None:
        return module_names(record_paths(record))
    return module_names([str(f) for f in legacy(path).files or []])


MODULES_AT = {}


def modules_at(directory):
    """Top-level module names present in ``directory`` (packages, namespace directories,
    modules and extension modules), read once per directory."""
    if directory not in MODULES_AT:
        try:
            entries = os.listdir(directory)
        except OSError:
            entries = []
        names = set()
        for entry in entries:
            name = entry if os.path.isdir(os.path.join(directory, entry)) else file_module(entry)
            if name and name.isidentifier():
                names.add(name)
        MODULES_AT[directory] = names
    return MODULES_AT[directory]


def record_paths(record):
    """The paths in a RECORD: the first CSV field (the hash and size have no commas)."""
    paths = [line.rsplit(",", 2)[0] for line in record.splitlines() if line]
    if any(p.startswith('"') for p in paths):  # a path with a comma in it, quoted
        import csv

        paths = [row[0] for row in csv.reader(record.splitlines()) if row]
    return paths


# --- the request and package resolution -------------------------------------------------


def parse_request(argv):
    """The request JSON from argv[1], with defaults filled in."""
    raw = json.loads(argv[1]) if len(argv) > 1 else {}
    packages = []
    for item in raw.get("packages") or []:
        manager = item.get("manager", "conda")
        if manager not in MANAGERS:
            raise ValueError(f"package {item!r}: manager must be one of {MANAGERS}")
        packages.append({"name": str(item["name"]), "manager": manager})
    return {
        "packages": packages,
        "modules": dict(raw.get("modules") or {}),
        "rename": dict(raw.get("rename") or {}),
        "skip": set(raw.get("skip") or []),
        "timeout": float(raw.get("timeout", 60.0)),
    }


class Index:
    """Lookups over the installed conda records and distributions."""

    def __init__(self, records, dists):
        self.records = dict((r["name"].lower(), r) for r in records)
        self.dists = dict((normalize(d["name"]), d) for d in dists)

    def dist_modules(self, name):
        dist = self.dists.get(normalize(name))
        return list(dist["top_level"]) if dist else []

    def record_modules(self, record):
        # Some conda packages list their files oddly; the dist-info then knows better.
        return list(record["python_modules"]) or self.dist_modules(record["name"])

    def derive(self, name, manager):
        """(modules, via, installed) for one requested package."""
        if manager == "pip":
            return self.dist_modules(name), [], normalize(name) in self.dists
        record = self.records.get(name.lower())
        if record is None and not self.records:
            # No conda records (a venv, a distribution's python): pip's distribution of
            # that name answers, as the host's pins do.
            return self.dist_modules(name), [], normalize(name) in self.dists
        if record is None:
            return [], [], False
        modules = self.record_modules(record)
        if modules or record["_has_files"] or record["name"] in NOT_FOLLOWED:
            return modules, [], True
        via, modules = self.follow(record)
        return modules, via, True

    def follow(self, record):
        """A metapackage's modules: those of what it depends on, breadth first."""
        via, modules, seen = [], [], {record["name"]}
        todo = collections.deque(depends_names(record))
        while todo:
            dep = todo.popleft()
            if dep in seen or dep in NOT_FOLLOWED or dep.startswith("__"):
                continue
            seen.add(dep)
            found = self.records.get(dep)
            if found is None:
                continue
            dep_modules = self.record_modules(found)
            if dep_modules:
                via.append(dep)
                modules.extend(dep_modules)
            else:
                todo.extend(depends_names(found))
        return via, unique(modules)


def depends_names(record):
    """Package names (first token) of a record's depends strings."""
    return [m.group(0) for m in map(DEPENDS_NAME.match, record["depends"]) if m]


def resolve_packages(request, index):
    """What each requested package is, and which modules stand for it."""
    return dict((p["name"], resolve(p, request, index)) for p in request["packages"])


def resolve(package, request, index):
    """One package's status, modules and the packages followed to find them."""
    name, manager = package["name"], package["manager"]
    entry = {"manager": manager, "status": "skipped", "modules": [], "via": []}
    if name in request["skip"]:
        return entry
    modules, via, installed = index.derive(name, manager)
    if name in request["rename"]:
        modules, via = list(request["rename"][name]), []
    modules = unique(modules + list(request["modules"].get(name, [])))
    status = "python" if modules else "not-python"
    entry.update(status=status if installed else "missing", modules=modules, via=via)
    return entry


# --- imports in a child interpreter -----------------------------------------------------


class Child:
    """One child interpreter that imports the modules it is sent, reporting over a pipe.

    It is started before it knows its modules, so that its interpreter starts up
    while the probe gathers facts.
    """

    def __init__(self, proc=None):
        self.proc = proc or Process()
        # Its lines carry this: a package that writes to the child's pipe blindly is ignored.
        self.key = os.urandom(16).hex()
        # A reader thread rather than select(): it also works on Windows pipes.
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self.pump, daemon=True)
        self.reader.start()

    def send(self, modules):
        """Give the child its modules; it starts importing when stdin closes."""
        try:
            self.proc.stdin.write("".join(m + "\n" for m in [self.key, *modules]).encode())
            self.proc.stdin.close()
        except OSError:
            pass  # it already died: drive() sees the end of its output

    def pump(self):
        # Bounded lines: a package that floods the pipe costs no memory here.
        for raw in iter(lambda: self.proc.stdout.readline(LINE_LIMIT), b""):
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def next_event(self, deadline):
        """The next protocol line as a list of fields, None at EOF, or TIMEOUT."""
        while True:
            try:
                line = self.lines.get(timeout=min(EXIT_POLL, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                # Exited, but its pipe is still open: a process it left holds it. What it
                # wrote before exiting is read at once; after that, its end is the EOF.
                if self.proc.wait(0) is not None:
                    try:
                        line = self.lines.get(timeout=EXIT_POLL)
                    except queue.Empty:
                        return None
                elif time.monotonic() >= deadline:
                    return TIMEOUT
                else:
                    continue
            if line is None:
                return None
            if not line.startswith(self.key + " "):
                continue  # not the child's own line (see CHILD_CODE's say)
            fields = line[len(self.key) + 1 :].split(" ", 3)
            # Anything else was printed before the child took over fd 1 (a .pth file).
            if fields[0] in ("START", "OK", "ERR") and len(fields) >= 2:
                return fields

    def end(self, kill=False):
        """Wait for the child (killing it first if asked) and return its exit status."""
        if kill:
            self.proc.kill()
        return self.reap(self.proc.wait())

    def reap(self, code):
        self.reader.join(1.0)
        if not self.reader.is_alive():
            self.proc.stdout.close()
        return code

    def close(self, timeout, warnings):
        """End a child that has done all its imports; one that lingers is killed."""
        grace = min(timeout, EXIT_SECONDS)
        code = self.proc.wait(grace)
        if code is None:
            warnings.append(f"import child still running {grace:g}s after its imports; killed")
            return self.end(kill=True)
        if code != 0:
            warnings.append(f"import child {how_ended(code)} after its imports")
        return self.reap(code)


def import_result(module, package, status, seconds, error=None, signum=None):
    """One entry of the ``imports`` section."""
    return {
        "module": module,
        "package": package,
        "status": status,
        "error": error,
        "signal": signum,
        "seconds": round(seconds, 6),
    }


def how_ended(code):
    """Words for an exit status: ``killed by signal SIGSEGV``, ``exited with status 3``."""
    if code >= 0:
        return f"exited with status {code}"
    import signal

    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def drive(child, todo, timeout, warnings):
    """Results for ``todo`` (module, package pairs) from one child, until it ends.

    Returns at least one result, so a caller that starts a fresh child for the
    rest always makes progress.
    """
    results = []
    for module, package in todo:
        event = child.next_event(time.monotonic() + max(timeout, STARTUP_SECONDS))
        if event is None or event == TIMEOUT or event[:2] != ["START", module]:
            code = child.end(kill=True)
            return results or not_started(todo, code)
        started = time.monotonic()
        event = child.next_event(started + timeout)
        seconds = time.monotonic() - started
        if event == TIMEOUT:
            child.end(kill=True)
            error = f"import took longer than {timeout:g}s"
            results.append(import_result(module, package, "timeout", seconds, error))
            return results
        if event is None:
            code = child.end()
            signum = -code if code < 0 else None
            error = f"interpreter {how_ended(code)} during the import"
            results.append(import_result(module, package, "crashed", seconds, error, signum))
            return results
        results.append(finished(module, package, event))
    child.close(timeout, warnings)
    return results


def finished(module, package, event):
    """The result an OK or ERR line reports."""
    seconds = float(event[2]) if len(event) > 2 else 0.0
    if event[0] == "OK":
        return import_result(module, package, "ok", seconds)
    error = json.loads(event[3]) if len(event) > 3 else "unknown error"
    return import_result(module, package, "error", seconds, error)


def not_started(todo, code):
    """A fresh child that died before its first import: nothing more can be imported."""
    error = f"child interpreter {how_ended(code)} before importing anything"
    return [import_result(m, p, "error", 0.0, error) for m, p in todo]


# Imported after everything else: importing pip removes setuptools' distutils shim
# for the rest of the process, so a later `import setuptools` fails its own
# assertion although it imports fine on its own (pip 24 + setuptools 70, Python 3.11).
IMPORT_LAST = ("pip",)


def plan_imports(request, packages):
    """(module, package) pairs in request order; a module belongs to the first that asked."""
    owners = collections.OrderedDict()
    for package in request["packages"]:
        for module in packages[package["name"]]["modules"]:
            owners.setdefault(module, package["name"])
    pairs = list(owners.items())
    return [p for p in pairs if p[0] not in IMPORT_LAST] + [p for p in pairs if p[0] in IMPORT_LAST]


def valid_module(name):
    return all(part.isidentifier() for part in name.split("."))


class Imports:
    """The imports section: begun as soon as the modules are known, collected last."""

    def __init__(self, request, packages, child, warnings):
        self.timeout = request["timeout"]
        self.warnings = warnings
        self.plan = plan_imports(request, packages)
        self.todo = [(m, p) for m, p in self.plan if valid_module(m)]
        self.child = child
        child.send([m for m, _ in self.todo])

    def results(self):
        """Every planned module's result, in plan order; a crash costs one restart."""
        results = [
            import_result(m, p, "error", 0.0, f"ValueError: not a module name: {m!r}")
            for m, p in self.plan
            if not valid_module(m)
        ]
        todo, child = self.todo, self.child
        if not todo:  # nothing to import: let the child go now, not at the end
            child.close(self.timeout, self.warnings)
        while todo:
            batch = drive(child, todo, self.timeout, self.warnings)
            results.extend(batch)
            todo = todo[len(batch) :]
            if todo:
                child = Child()
                child.send([m for m, _ in todo])
        order = dict((m, i) for i, (m, _) in enumerate(self.plan))
        return sorted(results, key=lambda r: order[r["module"]])


# --- the document -----------------------------------------------------------------------


def guarded(func, *args):
    """Run one section; a failure is recorded in its place instead of ending the probe."""
    try:
        return func(*args)
    except Exception:
        return {"error": error_text()}


def error_text():
    """The exception being handled, with its traceback."""
    import traceback

    return traceback.format_exc()[-4000:]


def failed(value):
    """Whether a section's value is the record of its failure."""
    return isinstance(value, dict) and list(value) == ["error"] and isinstance(value["error"], str)


SECTIONS = ("interpreter", "site_packages", "conda_records", "distributions", "packages", "imports")


def build(argv):
    """The whole document for the request in ``argv``.

    The child interpreter starts first and gets its modules as soon as they are
    known, so its start-up and imports overlap the rest of the fact gathering.
    """
    child = guarded(Child, FIRST_CHILD)
    warnings = []
    doc = collections.OrderedDict(probe_version=PROBE_VERSION)
    doc.update((key, None) for key in SECTIONS)
    records = doc["conda_records"] = guarded(conda_records, warnings)
    dists = doc["distributions"] = guarded(distributions, warnings)
    request = guarded(parse_request, argv)
    index = Index([] if failed(records) else records, [] if failed(dists) else dists)
    packages = request if failed(request) else guarded(resolve_packages, request, index)
    doc["packages"] = packages
    imports = begin_imports(request, packages, child, warnings)
    doc["interpreter"] = guarded(interpreter_facts)
    doc["site_packages"] = guarded(site_packages)
    doc["imports"] = imports if failed(imports) else guarded(imports.results)
    for record in [] if failed(records) else records:
        record.pop("_has_files", None)
    doc["warnings"] = warnings
    doc["elapsed"] = round(time.perf_counter() - STARTED, 6)  # from the probe's first line
    return doc


def begin_imports(request, packages, child, warnings):
    """Started imports, or the failure that prevented them (the child is then let go)."""
    failure = next((v for v in (child, request, packages) if failed(v)), None)
    if failure is None:
        return guarded(Imports, request, packages, child, warnings)
    if not failed(child):
        child.send([])
        child.end()
    return failure


def main(argv):
    """Print the document for the request in ``argv``; always exits 0 once it is printed."""
    # Keep stdout for the document alone: anything else this process prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.path[:] = [p for p in sys.path if p]  # the working directory is not the environment
    try:
        doc = build(argv)
    except BaseException:
        doc = {"probe_version": PROBE_VERSION, "error": error_text()}
    left = end_descendants()  # before the report: nothing the imports started outlives it
    if left and isinstance(doc.get("warnings"), list):
        doc["warnings"].append(f"ended {left} process(es) the imports left running")
    out.write(REPORT_TOKEN + " " + json.dumps(doc) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
