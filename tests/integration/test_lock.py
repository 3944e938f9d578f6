"""Locks end to end: real solves against local channels, creates from locks, the three drifts."""

from __future__ import annotations

import functools
import json
import platform
import shutil
import sys
import threading
from collections.abc import Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from envassay.command import CommandResult, run
from envassay.lock.format import lock_path_for, parse_lock, read_lock
from envassay_testing import (
    index_channel,
    make_generic_package,
    make_noarch_python_package,
    new_channel,
)
from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay, pip_install

pytestmark = pytest.mark.channel

# Runs the real CLI in a fresh interpreter that records, through audit hooks, every
# process it starts, and reports which modules it loaded: proof that no solve ran.
AUDITED = """
import json, sys
started = []
EVENTS = {"subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn", "os.system", "os.fork"}
sys.addaudithook(lambda event, args: started.append(event) if event in EVENTS else None)
from envassay.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "rattler" or m.startswith(
    ("rattler.", "envassay.rattler_ops", "envassay.create.backends")))
print("AUDIT " + json.dumps({"started": started, "loaded": loaded}), file=sys.stderr)
sys.exit(code)
"""


def audited(*args: str | Path, env: Mapping[str, str], cwd: Path) -> tuple[CommandResult, dict]:
    result = run([sys.executable, "-c", AUDITED, *map(str, args)], env=env, cwd=cwd, timeout=120)
    line = next(x for x in result.stderr.splitlines() if x.startswith("AUDIT "))
    return result, json.loads(line.removeprefix("AUDIT "))


def lock(project: Project, env: dict[str, str], *args: str | Path) -> CommandResult:
    result = envassay("lock", *args, env=env, cwd=project.root)
    assert result.ok, result.describe()
    return result


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    directory = tmp_path / "wheels"
    make_wheel(
        directory, "pinned-tool", "1.0", files={"pinned_tool.py": ""}, requires=["dep-tool>=1"]
    )
    make_wheel(directory, "pinned-tool", "2.0", files={"pinned_tool.py": ""})
    make_wheel(directory, "dep-tool", "1.5", files={"dep_tool.py": ""})
    return directory


def test_lock_then_create_from_lock_then_match(
    project: Project, envassay_env: dict[str, str], wheels: Path
) -> None:
    spec = project.spec(
        "locked",
        ["python=3.11", "oldpkg=1.0", "pyyaml"],
        pip=["--no-index", f"--find-links {wheels}", "pinned-tool<2"],
    )
    out = lock(project, envassay_env, spec).stdout
    assert "linux-64: 4 conda + 2 pip" in out
    lock_file = read_lock(lock_path_for(spec))
    conda = {p.name: p for p in lock_file.packages_for("linux-64", "conda")}
    assert set(conda) == {"python", "oldpkg", "pyyaml", "pip"}
    assert conda["oldpkg"].version == "1.0" and conda["oldpkg"].build == "py_0"
    assert all(p.md5 and p.sha256 for p in conda.values())
    pip = {p.name: p for p in lock_file.packages_for("linux-64", "pip")}
    assert {n: p.version for n, p in pip.items()} == {"pinned-tool": "1.0", "dep-tool": "1.5"}
    assert dict(pip["pinned-tool"].dependencies) == {"dep-tool": ">=1"}
    assert all(p.sha256 for p in pip.values())

    code, items, output = check(project, envassay_env, spec)
    assert code == 0, output
    assert "creating from locked.conda-lock.yml (linux-64): no solve" in output
    assert "solving" not in output
    assert items["lock[fresh]"][0] == "passed"
    assert items["lock[match]"][0] == "passed", items["lock[match]"]
    assert items["pin[pinned-tool<2]"][0] == "passed"
    # A second lock with nothing changed re-solves nothing.
    again = lock(project, envassay_env, spec)
    assert "is fresh; not re-solved" in again.stdout and "[rattler]" not in again.stderr


def test_lock_check_finds_a_stale_lock_without_solving(
    project: Project, envassay_env: dict[str, str]
) -> None:
    spec = project.spec("checked", ["python=3.11", "oldpkg=1.0"])
    other = project.spec("other", ["python=3.11", "six"])
    lock(project, envassay_env)  # every configured spec
    fresh, audit = audited("lock", "--check", env=envassay_env, cwd=project.root)
    assert fresh.returncode == 0, fresh.describe()
    assert "2 lock(s) fresh" in fresh.stdout
    assert audit == {"started": [], "loaded": []}  # no process, not even rattler imported

    # A comment changes the bytes, not the meaning: still fresh.
    spec.write_text("# pinned for the demo\n" + spec.read_text())
    assert audited("lock", "--check", env=envassay_env, cwd=project.root)[0].returncode == 0

    spec.write_text(spec.read_text().replace("oldpkg=1.0", "oldpkg=2.0"))
    stale, audit = audited("lock", "--check", env=envassay_env, cwd=project.root)
    assert stale.returncode == 1, stale.describe()
    assert "envs/checked.yml: lock is stale: the spec changed" in stale.stdout
    assert "other.yml" not in stale.stdout
    assert "1 of 2 lock(s) stale or missing" in stale.stdout
    assert audit["started"] == []  # no worker, no solver, nothing spawned
    assert not [m for m in audit["loaded"] if not m.startswith("rattler")]  # no rattler_ops

    code, items, output = check(project, envassay_env, spec)
    assert code == 1, output
    assert items["lock[fresh]"][0] == "failure"
    assert "checked.conda-lock.yml is stale: the spec changed" in items["lock[fresh]"][1]
    assert "lock is stale" in items["lock[match]"][1]  # skipped: the env came from the spec
    assert items["pin[oldpkg=2.0]"][0] == "passed"

    other.unlink()
    lock_path_for(other).unlink()
    no_lock = project.spec("nolock", ["python=3.11"])
    missing = envassay("lock", "--check", env=envassay_env, cwd=project.root)
    assert (
        missing.returncode == 1
        and f"{no_lock.relative_to(project.root)}: no lock" in missing.stdout
    )


def test_drift_reports_exactly_the_package_that_moved_upstream(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    upstream = new_channel(tmp_path / "upstream")
    make_noarch_python_package(
        upstream, "driftpkg", "1.0", files={"driftpkg/__init__.py": "V = 1\n"}
    )
    index_channel(upstream)
    # The new channel first: strict channel priority takes driftpkg from it alone.
    spec = project.spec(
        "drifting", ["python=3.11", "driftpkg"], channels=[upstream.as_uri(), project.channel.url]
    )
    lock(project, envassay_env, spec)
    quiet = envassay("drift", spec, "--fail", env=envassay_env, cwd=project.root)
    assert quiet.returncode == 0 and "nothing moved upstream" in quiet.stdout, quiet.describe()

    make_noarch_python_package(
        upstream, "driftpkg", "1.1", files={"driftpkg/__init__.py": "V = 2\n"}
    )
    index_channel(upstream)
    markdown = tmp_path / "drift.md"
    moved = envassay("drift", spec, "--markdown", markdown, env=envassay_env, cwd=project.root)
    assert moved.returncode == 0, moved.describe()  # informational by default
    assert "upstream moved: 1 changed" in moved.stdout
    rows = [line.split() for line in moved.stdout.splitlines() if line.startswith("  driftpkg")]
    assert rows == [["driftpkg", "conda", "1.0", "py_0", "1.1", "py_0"]]
    table = [line for line in markdown.read_text().splitlines() if line.startswith("| ")]
    assert table == ["| package | locked | today |", "| driftpkg | 1.0 py_0 | 1.1 py_0 |"]
    failing = envassay("drift", spec, "--fail", env=envassay_env, cwd=project.root)
    assert failing.returncode == 1, failing.describe()
    # The lock itself did not move: creating from it still gives 1.0.
    assert [p.version for p in read_lock(lock_path_for(spec)).packages if p.name == "driftpkg"] == [
        "1.0"
    ]


def test_mutated_env_fails_lock_match_with_a_diff(
    project: Project, envassay_env: dict[str, str], wheels: Path
) -> None:
    spec = project.spec(
        "mutant",
        ["python=3.11", "oldpkg=1.0", "six"],
        pip=["--no-index", f"--find-links {wheels}", "pinned-tool<2"],
    )
    lock(project, envassay_env, spec)
    code, items, output = check(project, envassay_env, spec)
    assert code == 0, output
    created = envassay("create", spec, env=envassay_env, cwd=project.root)
    prefix = Path(created.stdout.strip().rsplit(": ", 1)[1])
    # By hand, after creation: one conda package removed, a pip one upgraded.
    six_record = next((prefix / "conda-meta").glob("six-*.json"))
    for path in json.loads(six_record.read_text())["files"]:
        (prefix / path).unlink(missing_ok=True)
    six_record.unlink()
    upgrade = pip_install(prefix, "-q", "--no-index", "--find-links", wheels, "pinned-tool==2.0")
    assert upgrade.ok, upgrade.describe()
    code, items, output = check(project, envassay_env, spec)
    assert code == 1, output
    outcome, message = items["lock[match]"]
    assert outcome == "failure"
    assert "the env differs from mutant.conda-lock.yml (linux-64): 1 removed, 1 changed" in message
    rows = {line.split()[0]: line.split() for line in message.splitlines()[2:]}
    assert rows["six"] == ["six", "conda", "1.16.0", "py_0", "(not", "installed)"]
    assert rows["pinned-tool"] == ["pinned-tool", "pip", "1.0", "2.0"]
    assert set(rows) == {"six", "pinned-tool"}


def test_multi_platform_lock_round_trips(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    channel = new_channel(tmp_path / "multi")
    make_generic_package(channel, "tinydata", "1.0", files={"share/tinydata/README": "data\n"})
    make_generic_package(
        channel, "tinytool", "1.0", subdir="linux-64", depends=["tinydata", "__glibc >=2.17"]
    )
    # Only installable where the osx virtual package is at least 11: proves the override.
    make_generic_package(
        channel, "tinytool", "1.0", subdir="osx-arm64", depends=["tinydata", "__osx >=11.0"]
    )
    index_channel(channel)
    spec = project.spec(
        "multi",
        ["tinytool"],
        channels=[channel.as_uri()],
        extra="platforms: [linux-64, osx-arm64]\n",
    )
    first = lock(project, envassay_env, spec)
    assert "linux-64: 2 conda, osx-arm64: 2 conda" in first.stdout
    path = lock_path_for(spec)
    text = path.read_text()
    parsed = read_lock(path)
    assert parsed.platforms == ("linux-64", "osx-arm64")
    by_platform = {
        p: {(x.name, x.subdir) for x in parsed.packages_for(p)} for p in parsed.platforms
    }
    assert by_platform == {
        "linux-64": {("tinytool", "linux-64"), ("tinydata", "noarch")},
        "osx-arm64": {("tinytool", "osx-arm64"), ("tinydata", "noarch")},
    }
    assert "__osx=11.0=0" in parsed.metadata.custom["envassay.virtual-packages.osx-arm64"]
    # Read back identically, written back byte for byte, and a re-solve is deterministic.
    assert parse_lock(yaml.safe_load(text), path) == parsed
    assert text.endswith(parsed.to_yaml())
    lock(project, envassay_env, spec, "--force")
    assert path.read_text() == text


def test_bad_locks_are_exit_2_with_one_line(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    spec = project.spec("bad", ["python=3.11", "oldpkg=1.0"])
    lock(project, envassay_env, spec)
    path = lock_path_for(spec)
    good = path.read_text()
    cases = {
        "version: 1\nmetadata: [unclosed\n": "not valid YAML",
        good.replace("\nversion: 1\n", "\nversion: 2\n"): "lock format version 2 is not supported",
    }
    for text, expected in cases.items():
        path.write_text(text)
        for command in (("check", spec), ("lock", "--check", spec), ("create", spec)):
            result = envassay(*command, env=envassay_env, cwd=project.root)
            output = result.stdout + result.stderr
            assert result.returncode == 2, (command, output)
            assert expected in output and "Traceback" not in output
            errors = [line for line in output.splitlines() if expected in line]
            assert errors and str(path.name) in errors[0]
    path.write_text(good)

    # A fresh lock without this machine's platform: nothing to create from.
    osx_only = good.replace("linux-64", "osx-arm64")
    path.write_text(osx_only)
    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    assert "no packages for platform linux-64 (the lock has osx-arm64)" in result.stderr
    assert "--platform linux-64" in result.stderr


def test_tampered_package_fails_its_hash_and_installs_nothing(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    channel = new_channel(tmp_path / "copied")
    make_noarch_python_package(
        channel, "tamperme", "1.0", files={"tamperme/__init__.py": "OK = True\n"}
    )
    index_channel(channel)
    spec = project.spec(
        "tamper", ["python=3.11", "tamperme"], channels=[channel.as_uri(), project.channel.url]
    )
    lock(project, envassay_env, spec)
    archive = channel / "noarch" / "tamperme-1.0-py_0.tar.bz2"
    # Same name, same size class, a valid package: only its hash gives it away.
    shutil.move(archive, tmp_path / "original.tar.bz2")
    make_noarch_python_package(
        channel, "tamperme", "1.0", files={"tamperme/__init__.py": "OK = False\n"}
    )
    store = Path(envassay_env["ENVASSAY_HOME"]) / "envs"
    before = set(store.iterdir()) if store.is_dir() else set()

    result = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert result.returncode == 2, result.describe()
    error = [line for line in result.stderr.splitlines() if line.startswith("envassay: error:")]
    assert len(error) == 1
    assert "tamperme-1.0-py_0.tar.bz2: sha256 mismatch: the lock says" in error[0]
    assert "nothing was installed" in error[0]
    after = set(store.iterdir()) if store.is_dir() else set()
    assert after == before  # no env, not even a half-made one
    elsewhere = tmp_path / "explicit-prefix"
    at_prefix = envassay("create", spec, "--prefix", elsewhere, env=envassay_env, cwd=project.root)
    assert at_prefix.returncode == 2 and "sha256 mismatch" in at_prefix.stderr
    assert not elsewhere.exists()
    code, _items, output = check(project, envassay_env, spec)
    assert code == 2 and "sha256 mismatch" in output


def test_pip_section_locked_for_another_platform(
    project: Project, envassay_env: dict[str, str], tmp_path: Path, wheels: Path
) -> None:
    channel = new_channel(tmp_path / "foreign")
    # A stand-in python for osx-arm64: enough for the conda solve, and its version
    # is what pip resolves the osx-arm64 pip: part for.
    make_generic_package(channel, "python", "3.11.7", subdir="osx-arm64", depends=["__osx >=11.0"])
    index_channel(channel)
    generic = make_wheel(wheels, "linonly", "1.0", files={"linonly.py": ""})
    generic.rename(wheels / f"linonly-1.0-py3-none-manylinux2014_{platform.machine()}.whl")
    channels = [channel.as_uri(), project.channel.url]
    pip = ["--no-index", f"--find-links {wheels}", "pinned-tool<2", "linonly"]
    extra = "  - pip:\n" + "".join(f'    - "{line}"\n' for line in pip)
    extra += "platforms: [linux-64, osx-arm64]\n"
    spec = project.spec("foreign", ["python=3.11"], channels=channels, extra=extra)

    first = lock(project, envassay_env, spec)
    warning = [x for x in first.stderr.splitlines() if x.startswith("envassay: warning:")]
    assert len(warning) == 1, first.stderr
    assert "the pip: section is not locked for osx-arm64" in warning[0]
    assert "linonly" in warning[0]
    parsed = read_lock(lock_path_for(spec))
    assert not parsed.pip_resolved("osx-arm64") and parsed.pip_resolved("linux-64")
    assert parsed.metadata.custom["envassay.pip.osx-arm64"].startswith("unresolved: ")
    native = {p.name: p.version for p in parsed.packages_for("linux-64", "pip")}
    assert native == {"pinned-tool": "1.0", "dep-tool": "1.5", "linonly": "1.0"}
    assert parsed.packages_for("osx-arm64", "pip") == []

    spec.write_text(spec.read_text().replace('    - "linonly"\n', ""))
    second = lock(project, envassay_env, spec)
    assert "envassay: warning" not in second.stderr
    parsed = read_lock(lock_path_for(spec))
    foreign = {p.name: p.version for p in parsed.packages_for("osx-arm64", "pip")}
    assert foreign == {"pinned-tool": "1.0", "dep-tool": "1.5"}
    assert "wheels only for macosx_11_0_arm64" in parsed.metadata.custom["envassay.pip.osx-arm64"]
    assert all(p.sha256 for p in parsed.packages_for("osx-arm64", "pip"))

    # On this machine pip resolves as the env's own pip would: failing here is an error.
    spec.write_text(spec.read_text().replace('"pinned-tool<2"', '"no-such-dist"'))
    failed = envassay("lock", spec, env=envassay_env, cwd=project.root)
    assert failed.returncode == 2, failed.describe()
    assert "the pip: section cannot be locked for linux-64" in failed.stderr
    assert "no-such-dist" in failed.stderr


def test_tampered_remote_package_is_caught_by_the_download_check(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    """A channel served over HTTP (a local server): rattler checks what it downloads."""
    root = tmp_path / "served"
    channel = new_channel(root / "channel")
    make_noarch_python_package(
        channel, "remotepkg", "1.0", files={"remotepkg/__init__.py": "A=1\n"}
    )
    index_channel(channel)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/channel"
        spec = project.spec(
            "remote", ["python=3.11", "remotepkg"], channels=[url, project.channel.url]
        )
        lock(project, envassay_env, spec)
        assert f"url: {url}/noarch/remotepkg-1.0-py_0.tar.bz2" in lock_path_for(spec).read_text()
        (channel / "noarch" / "remotepkg-1.0-py_0.tar.bz2").unlink()
        make_noarch_python_package(
            channel, "remotepkg", "1.0", files={"remotepkg/__init__.py": "A=2\n"}
        )
        target = tmp_path / "remote-prefix"
        result = envassay("create", spec, "--prefix", target, env=envassay_env, cwd=project.root)
        server.shutdown()
    assert result.returncode == 2, result.describe()
    assert "failed its hash check; nothing was installed" in result.stderr
    assert "hash mismatch" in result.stderr and "remotepkg-1.0-py_0.tar.bz2" in result.stderr
    assert not target.exists()
