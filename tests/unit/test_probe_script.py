"""The probe script, run for real in throwaway venvs seeded with fake modules and metadata."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.utils import canonicalize_name

from envassay import redact
from envassay.command import Capture, CommandResult, run
from envassay.probe import (
    PackageRequest,
    ProbeError,
    ProbeReport,
    ProbeRequest,
    probe_script,
    run_probe,
)
from envassay.probe import script as probe
from envassay.targets import NativeTarget, TargetError

# Modules dropped into the venv's site-packages: what each does on import is the point.
MODULES = {
    "goodmod.py": "VALUE = 1\n",
    "badmod.py": "raise ValueError('boom')\n",
    "segvmod.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "aftercrash.py": "VALUE = 2\n",
    "hangmod.py": "import time\ntime.sleep(3600)\n",
    "afterhang.py": "VALUE = 3\n",
    # Prints protocol-looking lines from Python and straight to fd 1.
    "chatty.py": "import os\nprint('OK goodmod 0.5')\nos.write(1, b'START hangmod\\n')\n",
    # Reads stdin at import: it must not get (and swallow) the child's module list.
    "stdinreader.py": "import sys\nDATA = sys.stdin.read()\n",
    "exitmod.py": "import os\nos._exit(3)\n",
    "afterexit.py": "VALUE = 4\n",
    # Imports fine, then crashes when its interpreter exits.
    "exitcrash.py": "import atexit, os\natexit.register(os.kill, os.getpid(), 11)\n",
    # Imports fine, then keeps its interpreter from exiting.
    "lingering.py": (
        "import threading, time\nthreading.Thread(target=time.sleep, args=[3600]).start()\n"
    ),
    "legacymod/__init__.py": "",
    "xmod/__init__.py": "",
    "xmod/sub.py": "",
    "xtool.py": "",
    "ymod/__init__.py": "",
    "zmod/__init__.py": "",
    "nsroot/sub/__init__.py": "",
}
TEST_MODULES = [
    *("goodmod", "badmod", "segvmod", "aftercrash", "hangmod", "afterhang"),
    *("chatty", "stdinreader", "exitmod", "afterexit", "exitcrash"),
]

REQUEST = ProbeRequest(
    packages=(
        PackageRequest("x"),
        PackageRequest("datatools"),
        PackageRequest("libfoo"),
        PackageRequest("toolchain"),
        PackageRequest("ydist", "pip"),
        PackageRequest("Z-Dist", "pip"),
        PackageRequest("nsdist", "pip"),
        PackageRequest("legacy", "pip"),
        PackageRequest("missingpkg"),
        PackageRequest("nopython"),
        PackageRequest("testmods", "pip"),
    ),
    modules={"x": ("xmod.sub",)},
    rename={"testmods": tuple(TEST_MODULES)},
    skip=frozenset({"nopython"}),
    timeout=1.0,
)


def conda_meta(site: str) -> dict[str, dict[str, object] | str]:
    """Fake conda-meta records: a package with modules, a C library, two metapackages."""
    return {
        "x-1.0-0.json": {
            "name": "x",
            "version": "1.0",
            "build": "0",
            "channel": "https://conda.anaconda.org/conda-forge",
            "subdir": "linux-64",
            "url": "https://conda.anaconda.org/conda-forge/linux-64/x-1.0-0.conda",
            "requested_spec": "x >=1",
            "depends": ["python >=3.8", "libfoo 2.*"],
            "constrains": ["pyqt >=5.15"],
            "build_number": 3,
            "files": [
                f"{site}/xmod/__init__.py",
                f"{site}/xmod/sub.py",
                f"{site}/xmod.libs/libz.so",
                f"{site}/_xhelper.cpython-311-x86_64-linux-gnu.so",
                f"{site}/x-1.0.dist-info/METADATA",
                f"{site}/xtool.py",
                f"{site}/__pycache__/xtool.cpython-311.pyc",
                f"{site}/x.pth",
                "bin/x",
                "lib/libx.so",
            ],
        },
        # As rattler writes it: requested_specs, a list.
        "libfoo-1.0-0.json": record("libfoo", files=["lib/libfoo.so.2"])
        | {"requested_specs": ["libfoo >=2", "libfoo <3"]},
        # Its files list is empty, but a dist-info of the same name knows its modules.
        "ydist-1.0-0.json": record("ydist", depends=["python"]),
        "datatools-1.0-0.json": record(
            "datatools", depends=["python >=3.8", "__glibc >=2.17", "x >=1", "libfoo", "ydist"]
        ),
        "toolchain-1.0-0.json": record("toolchain", depends=["libfoo"]),
        "broken-1.0-0.json": "{not json",
        # conda ignores a record whose file is not named NAME-VERSION-BUILD.json.
        "misnamed-9.9-0.json": record("misnamed"),
    }


def record(
    name: str, files: list[str] | None = None, depends: list[str] | None = None
) -> dict[str, object]:
    return {
        "name": name,
        "version": "1.0",
        "build": "0",
        "depends": depends or [],
        "files": files or [],
    }


def dist_info(root: Path, name: str, version: str, files: dict[str, str]) -> None:
    """A dist-info directory with METADATA (plus ``files['metadata']``) and other ``files``."""
    info = root / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    (info / "METADATA").write_text(metadata + files.pop("metadata", ""))
    for file_name, text in files.items():
        (info / file_name).write_text(text)


def seed(prefix: Path) -> None:
    """Put the fake modules, distributions and conda records into a fresh venv."""
    site = next(prefix.glob("lib/python*/site-packages"))
    for rel, text in MODULES.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    requires = 'Requires-Dist: goodmod>=1\nRequires-Dist: zdist; extra == "z"\n'
    ydist = {"metadata": requires, "top_level.txt": "ymod\n", "INSTALLER": "pip\n"}
    dist_info(site, "ydist", "2.0", ydist)
    record = (
        "zmod/__init__.py,,\n_zspeedups.cpython-311-x86_64-linux-gnu.so,,\n../../../bin/zcmd,,\n"
    )
    dist_info(site, "Z_Dist", "1.0", {"RECORD": record, "INSTALLER": "conda\n"})
    dist_info(site, "nsdist", "1.0", {"RECORD": "nsroot/sub/__init__.py,,\nnsroot/data/x.txt,,\n"})
    # Like Debian's setuptools, which lists a `debian` module it does not install.
    dist_info(site, "testmods", "1.0", {"top_level.txt": "goodmod\ndebian\n"})
    egg = site / "legacy-1.0-py3.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: legacy\nVersion: 1.0\n")
    (egg / "requires.txt").write_text("six>=1\n\n[test]\npytest\n")
    (egg / "top_level.txt").write_text("legacymod\n")
    # A distutils-era egg-info that is a single PKG-INFO file.
    (site / "oldfile-0.1-py3.egg-info").write_text(
        "Metadata-Version: 1.0\nName: oldfile\nVersion: 0.1\n"
    )
    # An older ydist later on sys.path (through a .pth file) must not shadow the first one.
    dist_info(prefix / "extra", "ydist", "1.0", {"top_level.txt": "ymod\n"})
    (site / "extra.pth").write_text(str(prefix / "extra") + "\n")
    meta = prefix / "conda-meta"
    meta.mkdir()
    for entry, data in conda_meta(str(site.relative_to(prefix))).items():
        (meta / entry).write_text(data if isinstance(data, str) else json.dumps(data))


def make_env(python: str, prefix: Path) -> NativeTarget:
    result = run([python, "-m", "venv", "--without-pip", prefix], timeout=120)
    assert result.ok, result.describe()
    seed(prefix)
    return NativeTarget(prefix)


def find_python38() -> str | None:
    """A real Python 3.8 interpreter (not a pyenv shim that refuses to run), if there is one."""
    code = "import sys; print(sys.executable if sys.version_info[:2] == (3, 8) else '')"
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))
    for candidate in ["python3.8", *map(str, pyenv)]:
        try:
            found = run([candidate, "-c", code], timeout=30).stdout.strip()
        except FileNotFoundError:
            continue
        if found:
            return found
    return None


@dataclass(frozen=True)
class Probed:
    target: NativeTarget
    raw: CommandResult
    report: ProbeReport


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(sys.executable, id="host-python"),
        pytest.param("python3.8", id="python3.8"),
    ],
)
def probed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Probed:
    """One probe run of REQUEST in a seeded venv, for each interpreter."""
    python = request.param if request.param != "python3.8" else find_python38()
    if python is None:
        pytest.skip("no Python 3.8 interpreter here")
    target = make_env(python, tmp_path_factory.mktemp("env") / "env")
    raw = target.run_python(probe_script(), [REQUEST.to_json()], timeout=120)
    assert raw.ok, raw.describe()
    return Probed(target, raw, ProbeReport.from_json(raw.stdout))


def test_script_parses_as_python_3_8() -> None:
    ast.parse(probe_script(), feature_version=(3, 8))


def test_script_imports_only_the_standard_library() -> None:
    tree = ast.parse(probe_script())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert names - {"__future__"} <= sys.stdlib_module_names


def test_stdout_is_exactly_one_json_document(probed: Probed) -> None:
    doc = json.loads(probed.raw.stdout)
    assert doc["probe_version"] == 2
    assert probed.raw.stdout.count("\n") == 1
    # What chatty printed went to stderr instead.
    assert "OK goodmod 0.5" in probed.raw.stderr


def test_imports_survive_errors_crashes_and_hangs(probed: Probed) -> None:
    testmods = {i.module: (i.status, i.signal) for i in probed.report.imports_of("testmods")}
    assert testmods == {
        "goodmod": ("ok", None),
        "badmod": ("error", None),
        "segvmod": ("crashed", 11),
        "aftercrash": ("ok", None),
        "hangmod": ("timeout", None),
        "afterhang": ("ok", None),
        "chatty": ("ok", None),
        "stdinreader": ("ok", None),
        "exitmod": ("crashed", None),
        "afterexit": ("ok", None),
        "exitcrash": ("ok", None),
    }


def test_import_errors_say_what_happened(probed: Probed) -> None:
    by_module = {i.module: i for i in probed.report.imports}
    assert by_module["badmod"].error == "ValueError: boom"
    assert by_module["segvmod"].error == "interpreter killed by signal SIGSEGV during the import"
    assert by_module["hangmod"].error == "import took longer than 1s"
    assert by_module["exitmod"].error == "interpreter exited with status 3 during the import"
    assert 1.0 <= by_module["hangmod"].seconds < 5.0
    assert all(i.seconds < 1.0 for i in probed.report.imports if i.ok)


def test_imports_follow_request_order_and_first_owner(probed: Probed) -> None:
    owners = [(i.module, i.package) for i in probed.report.imports]
    assert owners == [
        ("xmod", "x"),
        ("xtool", "x"),
        ("xmod.sub", "x"),
        ("ymod", "datatools"),
        ("zmod", "Z-Dist"),
        ("nsroot.sub", "nsdist"),
        ("legacymod", "legacy"),
        *[(m, "testmods") for m in TEST_MODULES],
    ]


def test_packages_are_resolved_to_modules(probed: Probed) -> None:
    got = {n: (p.status, p.modules, p.via) for n, p in probed.report.packages.items()}
    assert got == {
        "x": ("python", ("xmod", "xtool", "xmod.sub"), ()),
        "datatools": ("python", ("xmod", "xtool", "ymod"), ("x", "ydist")),
        "libfoo": ("not-python", (), ()),
        "toolchain": ("not-python", (), ()),
        "ydist": ("python", ("ymod",), ()),
        "Z-Dist": ("python", ("zmod",), ()),
        "nsdist": ("python", ("nsroot.sub",), ()),
        "legacy": ("python", ("legacymod",), ()),
        "missingpkg": ("missing", (), ()),
        "nopython": ("skipped", (), ()),
        "testmods": ("python", tuple(TEST_MODULES), ()),
    }
    assert {p.manager for n, p in probed.report.packages.items() if n in {"ydist", "nsdist"}} == {
        "pip"
    }


def test_conda_records(probed: Probed) -> None:
    x = probed.report.conda_record("x")
    assert x is not None
    assert x.python_modules == ("xmod", "xtool")
    assert (x.version, x.build, x.subdir, x.requested_spec) == ("1.0", "0", "linux-64", "x >=1")
    assert x.channel == "https://conda.anaconda.org/conda-forge"
    assert x.depends == ("python >=3.8", "libfoo 2.*")
    assert (x.constrains, x.build_number) == (("pyqt >=5.15",), 3)
    libfoo = probed.report.conda_record("libfoo")
    assert libfoo is not None
    assert (libfoo.python_modules, libfoo.requested_spec) == ((), "libfoo >=2, libfoo <3")
    names = [r.name for r in probed.report.conda_records]
    assert names == ["datatools", "libfoo", "toolchain", "x", "ydist"]
    assert [w.split(": ")[:2] for w in probed.report.warnings][:2] == [
        ["conda-meta/broken-1.0-0.json", "unreadable"],
        ["conda-meta/misnamed-9.9-0.json", "ignored"],
    ]


def test_an_unclean_exit_after_the_imports_is_a_warning(probed: Probed) -> None:
    assert probed.report.warnings[2:] == (
        "import child killed by signal SIGSEGV after its imports",
    )


def test_a_child_that_does_not_exit_is_killed(probed: Probed) -> None:
    request = ProbeRequest(
        packages=(PackageRequest("t", "pip"),),
        rename={"t": ("lingering", "goodmod")},
        timeout=1.0,
    )
    report = run_probe(probed.target, request, timeout=60)
    assert [(i.module, i.status) for i in report.imports] == [
        ("lingering", "ok"),
        ("goodmod", "ok"),
    ]
    assert report.warnings[-1] == "import child still running 1s after its imports; killed"


def test_distributions(probed: Probed) -> None:
    ydist = probed.report.distribution("YDist")
    assert ydist is not None
    assert (ydist.version, ydist.top_level, ydist.installer) == ("2.0", ("ymod",), "pip")
    assert ydist.requires == ("goodmod>=1", 'zdist; extra == "z"')
    assert [d.name for d in probed.report.distributions].count("ydist") == 1
    zdist = probed.report.distribution("z-dist")
    assert zdist is not None
    assert (zdist.top_level, zdist.installer) == (("zmod",), "conda")
    nsdist = probed.report.distribution("nsdist")
    assert nsdist is not None
    assert nsdist.top_level == ("nsroot.sub",)
    site = next(probed.target.prefix.glob("lib/python*/site-packages"))
    assert Path(nsdist.location) == site
    # A top_level.txt name with no module beside it is no import name.
    assert probed.report.distribution("testmods").top_level == ("goodmod",)  # type: ignore[union-attr]
    # The older ydist later on sys.path is recorded as shadowed, with real paths.
    real = os.path.realpath
    assert ydist.metadata == real(site / "ydist-2.0.dist-info")
    assert ydist.shadows == (real(probed.target.prefix / "extra" / "ydist-1.0.dist-info"),)
    # A conda record owns the metadata directories among its files.
    x = probed.report.conda_record("x")
    assert x is not None and x.python_dists == (real(site / "x-1.0.dist-info"),)


def test_egg_info_distributions(probed: Probed) -> None:
    legacy = probed.report.distribution("legacy")
    assert legacy is not None
    assert (legacy.version, legacy.top_level) == ("1.0", ("legacymod",))
    assert legacy.requires == ("six>=1", 'pytest; extra == "test"')
    oldfile = probed.report.distribution("oldfile")
    assert oldfile is not None
    assert (oldfile.version, oldfile.top_level, oldfile.requires) == ("0.1", (), ())


def test_distributions_agree_with_importlib_metadata() -> None:
    """The probe reads metadata files itself (for speed); the result must not differ."""
    expected: dict[str, tuple[str, list[str]]] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        expected.setdefault(name, (dist.version, list(dist.requires or [])))
    got = {
        canonicalize_name(d["name"]): (d["version"], d["requires"]) for d in probe.distributions([])
    }
    assert got == expected


def test_interpreter_facts(probed: Probed) -> None:
    interp = probed.report.interpreter
    assert interp is not None
    assert Path(interp.prefix) == probed.target.prefix
    assert Path(interp.executable).parent == probed.target.prefix / "bin"
    assert interp.implementation == "cpython"
    assert interp.markers["python_version"] == ".".join(interp.version.split(".")[:2])
    if interp.version == ".".join(map(str, sys.version_info[:3])):
        assert interp.markers == default_environment()
    # conda's detection: os.confstr for glibc, the numeric head of the kernel release.
    assert interp.virtual_packages["__unix"] == "0"
    assert interp.virtual_packages["__glibc"] == os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    assert platform.release().startswith(interp.virtual_packages["__linux"])
    site = next(probed.target.prefix.glob("lib/python*/site-packages"))
    assert [Path(p) for p in probed.report.site_packages][:1] == [site]
    assert probed.report.errors == {}


def test_report_round_trips_to_the_probe_document(probed: Probed) -> None:
    assert probed.report.to_dict() == json.loads(probed.raw.stdout)


def test_elapsed_covers_the_imports(probed: Probed) -> None:
    assert probed.report.elapsed >= sum(i.seconds for i in probed.report.imports)


# --- module names derived from files --------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        (
            ["numpy/__init__.py", "numpy.libs/libgfortran.so", "numpy-2.0.dist-info/RECORD"],
            ["numpy"],
        ),
        (["yaml/__init__.py", "_yaml/__init__.py", "PyYAML-6.0.egg-info/PKG-INFO"], ["yaml"]),
        (["_cffi_backend.cpython-311-x86_64-linux-gnu.so"], ["_cffi_backend"]),
        (["six.py", "__pycache__/six.cpython-311.pyc", "distutils-precedence.pth"], ["six"]),
        (["fast.abi3.so", "win.cp311-win_amd64.pyd", "README.txt"], ["fast", "win"]),
        (["google/protobuf/__init__.py", "google/_upb/_message.so"], ["google.protobuf"]),
        (["pkg/__init__.cpython-311-x86_64-linux-gnu.so", "pkg/core.so"], ["pkg"]),
        (["../../bin/tool", "share/doc.txt", "ns/data/x.txt"], []),
    ],
)
def test_module_names(paths: list[str], names: list[str]) -> None:
    assert probe.module_names(paths) == names


@pytest.mark.parametrize(
    "path",
    [
        "lib/python3.11/site-packages/a.py",
        "Lib/site-packages/a.py",
        "lib/python3.13t/site-packages/a.py",
    ],
)
def test_site_packages_paths(path: str) -> None:
    match = probe.SITE_PACKAGES.match(path)
    assert match is not None
    assert match.group(1) == "a.py"


# --- running the probe through a target -----------------------------------------------


def fake_python(prefix: Path, body: str) -> NativeTarget:
    """A prefix whose bin/python is a shell script: a target that misbehaves on purpose."""
    python = prefix / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return NativeTarget(prefix)


def test_run_probe_returns_the_report(probed: Probed) -> None:
    report = run_probe(probed.target, ProbeRequest(packages=(PackageRequest("x"),)))
    assert [(i.module, i.status) for i in report.imports] == [("xmod", "ok"), ("xtool", "ok")]


def test_missing_interpreter_is_a_target_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no Python interpreter"):
        run_probe(NativeTarget(tmp_path), ProbeRequest())


def test_failing_probe_shows_stderr(tmp_path: Path) -> None:
    target = fake_python(tmp_path, "echo kaput >&2; exit 3")
    with pytest.raises(ProbeError, match=r"exited 3; stderr: kaput"):
        run_probe(target, ProbeRequest())


def test_unparsable_output_shows_what_came_back(tmp_path: Path) -> None:
    target = fake_python(tmp_path, "echo garbage; echo oops >&2")
    with pytest.raises(ProbeError, match=r"did not write \(first: 'garbage'\).*stderr: oops"):
        run_probe(target, ProbeRequest())


def test_hung_probe_times_out(tmp_path: Path) -> None:
    target = fake_python(tmp_path, "sleep 30")
    with pytest.raises(ProbeError, match=r"timed out after 0\.5s"):
        run_probe(target, ProbeRequest(), timeout=0.5)


def test_native_target_keeps_the_host_setup_out(
    probed: Probed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("VIRTUAL_ENV", str(tmp_path))
    script = "import json, os, sys; print(json.dumps([sys.path, dict(os.environ)]))"
    result = probed.target.run_python(script, [], timeout=60)
    path, env = json.loads(result.stdout)
    assert str(tmp_path) not in path
    assert "VIRTUAL_ENV" not in env
    assert env["CONDA_PREFIX"] == str(probed.target.prefix)
    assert env["PATH"].split(":")[0] == str(probed.target.prefix / "bin")


def test_a_probe_whose_host_is_already_gone_ends_itself() -> None:
    """The self-guard's race: the host died before PR_SET_PDEATHSIG took effect (here: the
    pid it names is not the probe's parent), so the probe kills its own process group."""
    env = {"PATH": "/usr/bin:/bin", probe.GUARD_VARIABLE: "1"}
    result = run(
        [sys.executable, "-", "{}"],
        input=probe_script(),
        env=env,
        timeout=60,
        die_with_parent=False,
    )
    assert result.returncode == -9, result.describe()
    assert result.stdout == ""


def test_a_guarded_probe_with_its_host_alive_reports() -> None:
    env = {"PATH": "/usr/bin:/bin", probe.GUARD_VARIABLE: str(os.getpid())}
    result = run(
        [sys.executable, "-", "{}"],
        input=probe_script(),
        env=env,
        timeout=60,
        die_with_parent=False,
    )
    assert result.ok, result.describe()
    assert json.loads(result.stdout)["probe_version"] == probe.PROBE_VERSION


def test_every_self_guarded_child_reads_the_same_variable() -> None:
    """The probe and the rattler worker guard themselves (no guard interpreter around
    them); each names the variable command.py sets, without importing it."""
    from envassay import rattler_worker
    from envassay.command import GUARD_VARIABLE
    from envassay.probe import script

    assert rattler_worker.GUARD_VARIABLE == script.GUARD_VARIABLE == GUARD_VARIABLE


# --------------------------------------------------------------------------- containment


def test_a_report_without_this_runs_token_is_refused(tmp_path: Path) -> None:
    """A package that prints a whole report cannot pass it off as the probe's."""
    doc = json.dumps({"probe_version": 2, "imports": []})
    target = fake_python(tmp_path, f"echo '{doc}'")
    with pytest.raises(ProbeError, match="did not write"):
        run_probe(target, ProbeRequest())


def test_a_report_written_twice_is_refused(tmp_path: Path) -> None:
    # The real probe, run twice by one script: two framed reports on the channel.
    wrapper = tmp_path / "twice.py"
    wrapper.write_text(
        "import subprocess, sys\nscript = sys.stdin.read()\nfor _ in range(2):\n"
        "    subprocess.run([sys.executable, '-', *sys.argv[1:]], input=script, text=True)\n"
    )
    target = fake_python(
        tmp_path, f'exec env -u ENVASSAY_GUARD_PARENT {sys.executable} {wrapper} "$@"'
    )
    with pytest.raises(ProbeError, match="written more than once"):
        run_probe(target, ProbeRequest())


def test_a_report_written_after_the_probe_exited_is_refused(tmp_path: Path) -> None:
    """Something the probe left holds its output and writes later: refused, not read."""
    target = fake_python(tmp_path, "(sleep 3; echo late) & exit 0")
    started = time.monotonic()
    with pytest.raises(ProbeError, match="still held the report channel"):
        run_probe(target, ProbeRequest())
    assert time.monotonic() - started < 3  # the host did not wait for it


def test_channel_credentials_are_not_in_the_probes_environment(
    probed: Probed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANNEL_TOKEN", "s3cr3t-token-value")
    monkeypatch.setenv("HARMLESS", "kept")
    redact.expand("https://conda.example/t/${CHANNEL_TOKEN}/ch")  # as a spec's channel is
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    env = json.loads(probed.target.run_python(script, [], timeout=60).stdout)
    assert "CHANNEL_TOKEN" not in env
    assert "s3cr3t-token-value" not in json.dumps(env)
    assert env["HARMLESS"] == "kept"


def test_capture_keeps_head_and_tail_and_says_what_was_cut() -> None:
    capture = Capture(10)
    for chunk in (b"abc", b"defgh", b"123456789", b"XYZ"):
        capture.feed(chunk)
    assert capture.text() == "abcde\n[envassay: 10 bytes of output cut here]\n89XYZ"
    assert capture.cut == 10


def test_a_flooding_command_is_held_to_its_limit(tmp_path: Path) -> None:
    flood = "import sys\nfor _ in range(200): sys.stderr.write('x' * 1048576)\nprint('done')"
    result = run([sys.executable, "-c", flood], timeout=60, limit=1 << 20)
    assert result.stdout == "done\n"
    assert result.stderr_cut == 200 * 1048576 - (1 << 20)
    assert len(result.stderr) < (1 << 20) + 100


def test_a_daemon_a_guarded_command_leaves_is_ended_with_it(tmp_path: Path) -> None:
    """Any command envassay runs (pip, compileall, the GPU probe, conda): what it leaves
    behind, even after a double fork and setsid, ends when it does."""
    pidfile = tmp_path / "daemon.pid"
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        null = os.open(os.devnull, os.O_RDWR)\n"
        "        [os.dup2(null, fd) for fd in (0, 1, 2)]\n"
        f"        open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        f"while not os.path.exists({str(pidfile)!r}): time.sleep(0.01)\n"
    )
    assert run([sys.executable, "-c", daemon], timeout=60).ok
    pid = int(pidfile.read_text())
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    if state != "gone":
        os.kill(pid, 9)
    assert state in ("gone", "Z"), state
