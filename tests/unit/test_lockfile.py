"""Lock files: conda-lock's unified format v1, validation, staleness, diffs, virtual packages."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from envassay.checks.lock import check_lock_fresh, check_lock_match
from envassay.errors import UserError
from envassay.lock.diff import Entry, diff_entries, render_table
from envassay.lock.drift import Drift, render_drift_markdown
from envassay.lock.format import (
    META_HASH,
    META_HASH_TEXT,
    META_PIP_PREFIX,
    META_PRIORITY,
    LockedPackage,
    LockError,
    LockFile,
    LockMetadata,
    lock_path_for,
    parse_lock,
    read_lock,
    split_depends,
)
from envassay.lock.pip import _packages, wheel_tags
from envassay.lock.status import LockStatus, lock_status
from envassay.probe.model import CondaRecord, Distribution, ProbeReport
from envassay.spec.config import Config, EnvSettings, parse_config
from envassay.spec.environment import load_spec, read_spec_header
from envassay.spec.platforms import validate_platforms, virtual_packages_for
from envassay.spec.resolve import cuda_version, resolve_channels

CHANNEL = "file:///srv/channel"

# conda-lock's v1 JSON schema (conda-lock-v1.schema.json): every object is
# additionalProperties: false, so these are all the keys a reader accepts.
V1_TOP = {"version", "metadata", "package"}
V1_META = {
    "content_hash",
    "channels",
    "platforms",
    "sources",
    "time_metadata",
    "git_metadata",
    "inputs_metadata",
    "custom_metadata",
}
V1_META_REQUIRED = {"content_hash", "channels", "platforms", "sources"}
V1_PACKAGE = {
    "name",
    "version",
    "manager",
    "platform",
    "dependencies",
    "url",
    "hash",
    "source",
    "build",
    "category",
    "optional",
}
V1_PACKAGE_REQUIRED = {"name", "version", "manager", "platform", "url", "hash", "optional"}


def conda(name: str, version: str, platform: str, subdir: str = "", **kw: Any) -> LockedPackage:
    subdir = subdir or platform
    data = f"{name}-{version}-{platform}".encode()
    return LockedPackage(
        name=name,
        version=version,
        manager="conda",
        platform=platform,
        url=f"{CHANNEL}/{subdir}/{name}-{version}-h0_0.tar.bz2",
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        **kw,
    )


def pip(name: str, version: str, platform: str, **kw: Any) -> LockedPackage:
    return LockedPackage(
        name=name,
        version=version,
        manager="pip",
        platform=platform,
        url=f"file:///wheels/{name}-{version}-py3-none-any.whl",
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        **kw,
    )


def sample_lock(
    content_hash: str = "a" * 64, platforms: tuple[str, ...] = ("linux-64", "osx-arm64")
) -> LockFile:
    packages = []
    for platform in platforms:
        packages += [
            conda("python", "3.11.7", platform, dependencies={"__glibc": ">=2.17"}),
            conda("tinydata", "1.0", platform, subdir="noarch"),
            conda(
                "tinytool",
                "1.0",
                platform,
                dependencies={"tinydata": "*", "python": ">=3.11,<3.12.0a0"},
            ),
            pip("pinned-tool", "1.0", platform, dependencies={"dep-tool": ">=1"}),
        ]
    packages.append(pip("direct-tool", "0.1", platforms[0], source="file:///wheels/direct.whl"))
    custom = {META_HASH: META_HASH_TEXT, META_PIP_PREFIX + platforms[0]: "resolved with pip"}
    metadata = LockMetadata(
        content_hash={p: content_hash for p in platforms},
        channels=(CHANNEL, "conda-forge"),
        platforms=platforms,
        sources=("env.yml",),
        inputs={"env.yml": {"md5": "0" * 32, "sha256": "1" * 64}},
        custom=custom,
    )
    return LockFile(metadata, tuple(packages))


# ---------------------------------------------------------------------- format


def test_round_trip_is_identical() -> None:
    lock = sample_lock()
    text = lock.to_yaml(["a header"])
    again = parse_lock(yaml.safe_load(text), "mem")
    assert again.metadata == lock.metadata
    assert sorted(again.packages, key=repr) == sorted(lock.packages, key=repr)
    assert again.to_yaml(["a header"]) == text
    assert text.startswith("# a header\nversion: 1\n")


def test_written_lock_fits_conda_lock_v1_schema() -> None:
    doc = yaml.safe_load(sample_lock().to_yaml())
    assert set(doc) <= V1_TOP and doc["version"] == 1
    assert V1_META_REQUIRED <= set(doc["metadata"]) <= V1_META
    for channel in doc["metadata"]["channels"]:
        assert set(channel) == {"url", "used_env_vars"}
    assert all(isinstance(v, str) for v in doc["metadata"]["custom_metadata"].values())
    for package in doc["package"]:
        assert V1_PACKAGE_REQUIRED <= set(package) <= V1_PACKAGE
        assert set(package["hash"]) <= {"md5", "sha256"}
        if package["manager"] == "conda":
            assert package["hash"]["md5"]  # conda-lock's validator insists on md5 for conda
        assert all(isinstance(v, str) for v in package["dependencies"].values())
    # conda-lock's order: (manager, name, platform)
    keys = [(p["manager"], p["name"], p["platform"]) for p in doc["package"]]
    assert keys == sorted(keys)


def test_conda_fields_derived_from_the_url() -> None:
    package = conda(
        "tinytool", "1.0", "osx-arm64", dependencies={"tinydata": "*", "python": ">=3.11"}
    )
    assert package.build == "h0_0"
    assert package.subdir == "osx-arm64"
    assert package.channel == CHANNEL
    assert package.filename == "tinytool-1.0-h0_0.tar.bz2"
    assert package.depends == ["tinydata", "python >=3.11"]
    dotted = LockedPackage(
        "a-b",
        "1.0.post1",
        "conda",
        "linux-64",
        f"{CHANNEL}/noarch/a-b-1.0.post1-py_2.conda",
        md5="0" * 32,
    )
    assert dotted.build == "py_2"


def test_split_depends() -> None:
    deps = [
        "python >=3.11,<3.12.0a0",
        "numpy",
        "python_abi 3.11.* *_cp311",
        "__glibc >=2.17",
        "__glibc <3",
    ]
    assert split_depends(deps) == {
        "python": ">=3.11,<3.12.0a0",
        "numpy": "*",
        "python_abi": "3.11.* *_cp311",
        "__glibc": ">=2.17,<3",
    }


def test_digest_follows_content_not_order() -> None:
    lock = sample_lock()
    reordered = LockFile(lock.metadata, tuple(reversed(lock.packages)))
    assert reordered.digest("linux-64") == lock.digest("linux-64")
    assert lock.digest("linux-64") != lock.digest("osx-arm64")
    bumped = tuple(
        LockedPackage(**{**p.__dict__, "version": "1.1"}) if p.name == "tinytool" else p
        for p in lock.packages
    )
    assert LockFile(lock.metadata, bumped).digest("linux-64") != lock.digest("linux-64")


def test_packages_for_and_pip_notes() -> None:
    lock = sample_lock()
    assert {p.name for p in lock.packages_for("linux-64", "pip")} == {"pinned-tool", "direct-tool"}
    assert {p.name for p in lock.packages_for("osx-arm64", "conda")} == {
        "python",
        "tinydata",
        "tinytool",
    }
    assert lock.pip_resolved("linux-64") and lock.pip_resolved("osx-arm64")
    unresolved = LockMetadata(
        **{
            **lock.metadata.__dict__,
            "custom": {META_PIP_PREFIX + "osx-arm64": "unresolved: no wheels"},
        }
    )
    assert not LockFile(unresolved, lock.packages).pip_resolved("osx-arm64")


def test_conda_lock_written_file_is_read(tmp_path: Path) -> None:
    """A file as conda-lock writes it: a build key, time metadata, '' dependencies."""
    text = """\
version: 1
metadata:
  content_hash: {linux-64: abc}
  channels: [{url: conda-forge, used_env_vars: []}]
  platforms: [linux-64]
  sources: [environment.yml]
  time_metadata: {created_at: '2024-01-01T00:00:00Z'}
package:
- name: six
  version: 1.16.0
  manager: conda
  platform: linux-64
  dependencies: {python: ''}
  url: https://example.invalid/conda-forge/noarch/six-1.16.0-pyh6c4a22f_0.tar.bz2
  hash:
    md5: e5f25f8dbc060e9a8d912e432202afc2
    sha256: a85c38227b446f42c5b90d9b642f2c0567880c15d72492d8da074a59c8f91dd6
  category: main
  optional: false
  build: pyh6c4a22f_0
"""
    path = tmp_path / "x.conda-lock.yml"
    path.write_text(text)
    lock = read_lock(path)
    (six,) = lock.packages
    assert (six.build, six.subdir, six.depends) == ("pyh6c4a22f_0", "noarch", ["python"])
    assert "time_metadata" in lock.to_dict()["metadata"]  # kept when written back


META = "metadata: {content_hash: {linux-64: a}, channels: [], platforms: [linux-64], sources: []}"


def one_package(**fields: str) -> str:
    entry = {
        "name": "x",
        "version": "'1'",
        "manager": "conda",
        "platform": "linux-64",
        "url": "u",
        "hash": "{md5: '%s'}" % ("0" * 32),
        "optional": "false",
        **fields,
    }
    return (
        f"version: 1\n{META}\npackage:\n- {{{', '.join(f'{k}: {v}' for k, v in entry.items())}}}\n"
    )


BAD_LOCKS = {
    "not_yaml": ("version: 1\nmetadata: [unclosed\n", "not valid YAML"),
    "other_version": (
        "version: 2\nmetadata: {}\npackage: []\n",
        "lock format version 2 is not supported",
    ),
    "no_version": ("metadata: {}\npackage: []\n", "no `version:`"),
    "float_version": (
        one_package(version="1.0"),
        "package[0] (x).version: expected a non-empty string, got float 1.0",
    ),
    "no_hash": (one_package(hash="{}"), "a conda package needs an md5 or a sha256"),
    "bad_digest": (one_package(hash="{md5: xyz}"), "'xyz' is not a hex md5 digest"),
    "platform_not_listed": (
        one_package(manager="pip", platform="win-64"),
        "platform(s) ['win-64'] not listed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LOCKS))
def test_bad_lock_is_one_line_user_error(tmp_path: Path, case: str) -> None:
    text, expected = BAD_LOCKS[case]
    path = tmp_path / "env.conda-lock.yml"
    path.write_text(text)
    with pytest.raises(LockError) as info:
        read_lock(path)
    assert isinstance(info.value, UserError)  # exit 2
    rendered = info.value.render()
    assert expected in rendered and "\n" not in rendered
    assert str(path) in rendered


# ---------------------------------------------------------------------- staleness


def write_spec(directory: Path, body: str) -> Path:
    path = directory / "env.yml"
    path.write_text(body)
    return path


def locked_for(
    spec_path: Path,
    platforms: tuple[str, ...] = ("linux-64",),
    channels: tuple[str, ...] | None = None,
    custom: dict[str, str] | None = None,
) -> Path:
    """Write a lock the way `envassay lock` records a spec (hash, inputs), without solving."""
    spec = load_spec(spec_path)
    config = Config(root=spec_path.parent)  # effective channels: URLs, as `envassay lock` writes
    raw = spec_path.read_bytes()
    metadata = LockMetadata(
        content_hash={p: spec.content_hash for p in platforms},
        channels=channels if channels is not None else resolve_channels(spec, config),
        platforms=platforms,
        sources=(spec_path.name,),
        inputs={
            spec_path.name: {
                "md5": hashlib.md5(raw).hexdigest(),
                "sha256": hashlib.sha256(raw).hexdigest(),
            }
        },
        custom={META_HASH: META_HASH_TEXT, **(custom or {})},
    )
    path = lock_path_for(spec_path)
    LockFile(metadata, tuple(conda("python", "3.11.7", p) for p in platforms)).write(path)
    return path


SPEC = "name: env\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=1.24\n"


def test_lock_status_fresh_stale_missing(tmp_path: Path) -> None:
    config = Config(root=tmp_path)
    spec_path = write_spec(tmp_path, SPEC)
    assert lock_status(spec_path, config).state == "missing"
    locked_for(spec_path)
    assert lock_status(spec_path, config).state == "fresh"
    # Comments and order do not change the meaning: still fresh (by content hash).
    spec_path.write_text(
        "# reordered\n"
        + SPEC.replace("  - python=3.11\n  - numpy>=1.24\n", "  - numpy>=1.24\n  - python=3.11\n")
    )
    assert lock_status(spec_path, config).fresh
    spec_path.write_text(SPEC.replace("numpy>=1.24", "numpy>=1.26"))
    status = lock_status(spec_path, config)
    assert status.state == "stale" and "the spec changed" in status.reasons[0]


def test_lock_status_channels_and_platforms(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, SPEC.replace("channels: [conda-forge]\n", ""))
    defaults = parse_config({"default-channels": ["file:///ch/a/"]}, root=tmp_path)
    locked_for(spec_path, channels=("file:///ch/a",))  # effective: no trailing slash
    assert lock_status(spec_path, defaults).fresh
    moved = parse_config({"default-channels": ["file:///ch/b", "file:///ch/a"]}, root=tmp_path)
    status = lock_status(spec_path, moved)
    assert not status.fresh
    assert "channels are now ['file:///ch/b', 'file:///ch/a']" in status.reasons[0]
    table = {"default-channels": ["file:///ch/a"], "platforms": ["linux-64", "osx-arm64"]}
    more = parse_config(table, root=tmp_path)
    status = lock_status(spec_path, more)
    assert not status.fresh and "['osx-arm64'] are configured but not locked" in status.reasons[0]


def test_lock_status_follows_channel_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ch").mkdir()
    spec_path = write_spec(tmp_path, SPEC.replace("[conda-forge]", f"[{tmp_path.as_uri()}/ch]"))
    config = Config(root=tmp_path)
    locked_for(spec_path, custom={META_PRIORITY: "flexible"})
    monkeypatch.delenv("CONDA_CHANNEL_PRIORITY", raising=False)
    assert lock_status(spec_path, config).fresh
    monkeypatch.setenv("CONDA_CHANNEL_PRIORITY", "strict")
    status = lock_status(spec_path, config)
    assert not status.fresh and "channel_priority is now strict" in status.reasons[0]


def test_spec_header_reads_without_matchspecs(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, SPEC + "  - pip:\n    - -r reqs.txt\nplatforms: [linux-64]\n")
    (tmp_path / "reqs.txt").write_text("six\n")
    header = read_spec_header(spec_path)
    assert (header.name, header.channels, header.platforms) == (
        "env",
        ("conda-forge",),
        ("linux-64",),
    )
    assert header.requirement_files
    assert header.sha256 == hashlib.sha256(spec_path.read_bytes()).hexdigest()


def test_requirements_file_change_makes_lock_stale(tmp_path: Path) -> None:
    """The spec's bytes are unchanged, but a `-r` file it names changed: not fresh."""
    spec_path = write_spec(tmp_path, SPEC + "  - pip:\n    - -r reqs.txt\n")
    (tmp_path / "reqs.txt").write_text("six\n")
    locked_for(spec_path)
    config = Config(root=tmp_path)
    assert lock_status(spec_path, config).fresh
    (tmp_path / "reqs.txt").write_text("six==1.16.0\n")
    assert lock_status(spec_path, config).state == "stale"


def test_lock_fresh_item() -> None:
    spec, lock = Path("envs/a.yml"), Path("envs/a.conda-lock.yml")
    missing = check_lock_fresh(LockStatus(spec, lock, "missing"))
    assert missing.outcome == "skipped" and "envassay lock envs/a.yml" in missing.message
    stale = check_lock_fresh(LockStatus(spec, lock, "stale", ("the spec changed",)))
    assert stale.outcome == "failed" and stale.name == "lock[fresh]"
    assert "a.conda-lock.yml is stale: the spec changed" in stale.message
    assert check_lock_fresh(LockStatus(spec, lock, "fresh", (), sample_lock())).outcome == "passed"


# ---------------------------------------------------------------------- diffs


def report(
    records: list[tuple[str, str, str, str]], dists: list[tuple[str, str, str]]
) -> ProbeReport:
    return ProbeReport(
        probe_version=2,
        interpreter=None,
        site_packages=(),
        conda_records=tuple(
            CondaRecord(n, v, b, c, (), None, None, None, ()) for n, v, b, c in records
        ),
        distributions=tuple(Distribution(n, v, (), (), i, "/sp") for n, v, i in dists),
        packages={},
        imports=(),
        warnings=(),
        elapsed=0.1,
    )


def test_lock_match_passes_then_shows_a_diff_table() -> None:
    lock = sample_lock()
    status = LockStatus(Path("env.yml"), Path("env.conda-lock.yml"), "fresh", (), lock)
    same = report(
        [
            ("python", "3.11.7", "h0_0", CHANNEL + "/"),  # rattler writes a trailing slash
            ("tinydata", "1.0", "h0_0", CHANNEL),
            ("tinytool", "1.0", "h0_0", CHANNEL),
        ],
        [
            ("pinned-tool", "1.0", "pip"),
            ("direct_tool", "0.1", "pip"),  # names compared normalised
            ("tinytool", "1.0", "conda"),  # conda's own dist-info is not a pip entry
            ("TinyData", "1.0", "pip"),  # an older conda package whose INSTALLER says pip
        ],
    )
    result = check_lock_match(status, "linux-64", same)
    assert result.outcome == "passed", result.message
    drifted = report(
        [
            ("python", "3.11.7", "h0_1", CHANNEL),
            ("tinytool", "1.0", "h0_0", "file:///elsewhere"),
            ("extra", "2.0", "h0_0", CHANNEL),
        ],
        [
            ("pinned-tool", "2.0", "pip"),
            ("direct-tool", "0.1", None),
            ("tinytool", "1.1", "pip"),  # pip replaced the conda package's files
        ],
    )
    result = check_lock_match(status, "linux-64", drifted)
    assert result.outcome == "failed"
    head, *table = result.message.splitlines()
    assert "2 added, 1 removed, 3 changed" in head
    rows = {(line.split()[0], line.split()[1]): line.split() for line in table[1:]}
    assert rows["python", "conda"] == ["python", "conda", "3.11.7", "h0_0", "3.11.7", "h0_1"]
    assert rows["tinydata", "conda"][-2:] == ["(not", "installed)"]
    assert rows["extra", "conda"][2:4] == ["(not", "locked)"]
    assert rows["pinned-tool", "pip"] == ["pinned-tool", "pip", "1.0", "2.0"]
    assert rows["tinytool", "pip"] == ["tinytool", "pip", "(not", "locked)", "1.1"]
    assert f"({CHANNEL})" in " ".join(
        rows["tinytool", "conda"]
    ) and "(file:///elsewhere)" in " ".join(rows["tinytool", "conda"])


def test_lock_match_skips_without_a_usable_lock() -> None:
    empty = report([], [])
    assert (
        check_lock_match(LockStatus(Path("a"), Path("b"), "missing"), "linux-64", empty).outcome
        == "skipped"
    )
    assert (
        check_lock_match(
            LockStatus(Path("a"), Path("b"), "stale", ("x",), sample_lock()), "linux-64", empty
        ).outcome
        == "skipped"
    )


def test_drift_markdown_has_a_table_per_env() -> None:
    changes = diff_entries(
        [Entry("conda", "driftpkg", "1.0", "py_0"), Entry("conda", "same", "1", "0")],
        [
            Entry("conda", "driftpkg", "1.1", "py_0"),
            Entry("conda", "same", "1", "0"),
            Entry("pip", "newdist", "3"),
        ],
    )
    assert [(c.name, c.kind) for c in changes] == [("driftpkg", "changed"), ("newdist", "added")]
    text = render_table(changes, "locked", "today")
    assert "driftpkg  conda    1.0 py_0      1.1 py_0" in text
    markdown = render_drift_markdown(
        [
            Drift(Path("envs/a.yml"), Path("envs/a.conda-lock.yml"), {"linux-64": changes}),
            Drift(Path("envs/b.yml"), Path("envs/b.conda-lock.yml"), {"linux-64": []}),
        ]
    )
    assert "1 of 2 environment(s) moved upstream" in markdown
    assert "| package | locked | today |" in markdown
    assert "| driftpkg | 1.0 py_0 | 1.1 py_0 |" in markdown
    assert "| newdist (pip) | (not locked) | 3 |" in markdown
    assert "### `envs/b.yml` (linux-64)\n\nNothing moved." in markdown


# ---------------------------------------------------------------------- virtual packages, pip


def test_virtual_packages_for_other_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CONDA_OVERRIDE_GLIBC",
        "CONDA_OVERRIDE_OSX",
        "CONDA_OVERRIDE_CUDA",
        "CONDA_OVERRIDE_ARCHSPEC",
        "CONDA_OVERRIDE_LINUX",
    ):
        monkeypatch.delenv(name, raising=False)
    assert virtual_packages_for("osx-arm64", None) == [
        ["__unix", "0", "0"],
        ["__osx", "11.0", "0"],
        ["__archspec", "1", "arm64"],
    ]
    assert ["__glibc", "2.17", "0"] in virtual_packages_for("linux-64", None)
    assert virtual_packages_for("win-64", "12.0") == [
        ["__win", "0", "0"],
        ["__cuda", "12.0", "0"],
        ["__archspec", "1", "x86_64"],
    ]
    assert not any(v[0] == "__cuda" for v in virtual_packages_for("osx-64", "12.0"))
    monkeypatch.setenv("CONDA_OVERRIDE_GLIBC", "2.28")
    assert ["__glibc", "2.28", "0"] in virtual_packages_for("linux-aarch64", None)


def test_cuda_comes_from_the_spec_not_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    cpu = load_spec(write_spec(tmp_path, SPEC))
    assert cuda_version(cpu, EnvSettings()) is None
    assert cuda_version(cpu, EnvSettings(gpu="required")) == "12.0"
    gpu = load_spec(write_spec(tmp_path, SPEC + '  - "pytorch=2.1=*cuda*"\n'))
    assert cuda_version(gpu, EnvSettings()) == "12.0"
    assert cuda_version(gpu, EnvSettings(gpu="none")) is None
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "11.8")
    assert cuda_version(cpu, EnvSettings()) == "11.8"
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")
    assert cuda_version(gpu, EnvSettings()) is None


def test_wheel_tags() -> None:
    assert wheel_tags("osx-arm64", [["__osx", "11.0", "0"]]) == ["macosx_11_0_arm64"]
    assert wheel_tags("win-64", []) == ["win_amd64"]
    linux = wheel_tags("linux-64", [["__glibc", "2.28", "0"]])
    assert linux[0] == "manylinux_2_28_x86_64" and linux[-2:] == [
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ]
    assert wheel_tags("zos-z", []) == []


def test_pip_report_becomes_lock_entries() -> None:
    document = {
        "environment": {"sys_platform": "linux", "python_version": "3.11"},
        "install": [
            {
                "metadata": {
                    "name": "Pinned_Tool",
                    "version": "1.0",
                    "requires_dist": ["dep-tool>=1", "winonly; sys_platform == 'win32'"],
                },
                "download_info": {
                    "url": "file:///w/pinned_tool-1.0-py3-none-any.whl",
                    "archive_info": {"hash": "sha256=" + "a" * 64},
                },
                "is_direct": False,
            },
            {
                "metadata": {"name": "local-tool", "version": "0.1"},
                "download_info": {
                    "url": "file:///w/local_tool-0.1-py3-none-any.whl",
                    "archive_info": {"hashes": {"sha256": "b" * 64}},
                },
                "is_direct": True,
            },
            {
                "metadata": {"name": "PyYAML", "version": "6.0.1"},
                "download_info": {"url": "file:///w/y.whl"},
            },
        ],
    }
    packages, left_out = _packages(document, "linux-64", {"pyyaml": "6.0.1", "python": "3.11.9"})
    assert left_out == ["pyyaml"]
    first, second = packages
    assert (first.name, first.version, first.sha256, dict(first.dependencies)) == (
        "pinned-tool",
        "1.0",
        "a" * 64,
        {"dep-tool": ">=1"},
    )
    assert first.source is None and second.source == "file:///w/local_tool-0.1-py3-none-any.whl"


@pytest.mark.parametrize(
    ("conda_version", "lines", "locked"),
    [
        ("6.0.1", ["pyyaml==6.0.2"], True),  # pip installs its own over conda's
        ("6.0.1", ["pyyaml>=6"], False),  # pip keeps conda's
        ("6.0.1", ["tool"], True),  # tool's Requires-Dist wants a newer one
        ("6.0.2", ["tool"], False),
        ("not a version", ["pyyaml"], True),
    ],
)
def test_pip_lock_sees_conda_packages_as_installed(
    conda_version: str, lines: list[str], locked: bool
) -> None:
    """As create's pip: a conda distribution that satisfies every requirement on it is
    kept (not locked), one that does not is replaced by pip's (locked)."""
    from envassay.lock.pip import _packages, _requirements

    document = {
        "install": [
            {
                "metadata": {"name": "tool", "version": "1.0", "requires_dist": ["PyYAML>=6.0.2"]},
                "download_info": {"url": "file:///w/tool.whl"},
            },
            {
                "metadata": {"name": "PyYAML", "version": "6.0.2"},
                "download_info": {"url": "file:///w/y.whl"},
            },
        ]
    }
    if lines != ["tool"]:
        document["install"] = document["install"][1:]
    wanted = _requirements(lines, document)
    packages, left_out = _packages(document, "linux-64", {"pyyaml": conda_version}, wanted)
    assert ("pyyaml" in {p.name for p in packages}) is locked
    assert (left_out == ["pyyaml"]) is not locked


def test_unknown_platform_is_a_user_error() -> None:
    assert validate_platforms(["osx-arm64", "linux-64", "osx-arm64"]) == ("osx-arm64", "linux-64")
    with pytest.raises(UserError, match=r"unknown platform\(s\) \['macos'\]"):
        validate_platforms(["macos"])


def test_pip_lock_reads_a_hashed_line_as_its_requirement(tmp_path: Path) -> None:
    """`pyyaml==6.0.2 --hash=...` still holds conda's 6.0.1 to 6.0.2: pip replaces it."""
    from envassay.lock.pip import _requirement_texts

    path = tmp_path / "env.yml"
    path.write_text(
        'dependencies:\n  - pip\n  - pip:\n    - "pyyaml==6.0.2 --hash=sha256:'
        + "a" * 64
        + '"\n    - --no-index\n'
    )
    assert _requirement_texts(load_spec(path)) == ["pyyaml==6.0.2"]
