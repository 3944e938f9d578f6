"""The local test channel: real packages, solved and installed by py-rattler, run for real."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import rattler
from rattler import Gateway, Subdir, VirtualPackage

from envassay.command import CommandResult, run
from envassay_testing import (
    LocalChannel,
    build_test_channel,
    conda_requirement,
    file_url,
    index_channel,
    make_noarch_python_package,
    new_channel,
    package_from_wheel,
)
from envassay_testing.wheels import make_wheel

PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
ENV_SPECS = [
    "python",
    "numpy",
    "pyyaml",
    "beautifulsoup4",
    "pip",
    "brokenraise",
    "brokensegv",
    "brokenhang",
    "nopython",
    "needsmissing",
]


def solve(
    sources: Sequence[str], specs: Sequence[str], cache: Path
) -> list[rattler.RepoDataRecord]:
    """Solve ``specs`` against ``sources`` with a fresh gateway on ``cache``."""
    return asyncio.run(
        rattler.solve(
            sources=list(sources),
            specs=list(specs),
            platforms=[Subdir.current(), Subdir("noarch")],
            virtual_packages=VirtualPackage.detect(),
            gateway=Gateway(cache_dir=cache / "repodata"),
        )
    )


def install(records: list[rattler.RepoDataRecord], prefix: Path, cache: Path) -> None:
    asyncio.run(
        rattler.install(
            records,
            target_prefix=str(prefix.resolve()),
            cache_dir=cache / "pkgs",
            show_progress=False,
            execute_link_scripts=False,
        )
    )


def run_in_env(prefix: Path, *args: str, timeout: float = 60) -> CommandResult:
    """Run a program from the env's bin/ without this process's Python settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return run([str(prefix / "bin" / args[0]), *args[1:]], env=env, timeout=timeout)


def versions(records: Sequence[rattler.RepoDataRecord]) -> dict[str, str]:
    return {r.name.normalized: str(r.version) for r in records}


@pytest.fixture(scope="module")
def rattler_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rattler-cache")


@pytest.fixture(scope="module")
def env_prefix(
    test_channel: LocalChannel, rattler_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    prefix = tmp_path_factory.mktemp("envs") / "main"
    install(solve([test_channel.url], ENV_SPECS, rattler_cache), prefix, rattler_cache)
    return prefix


@pytest.mark.channel
def test_channel_layout(test_channel: LocalChannel) -> None:
    assert test_channel.url == test_channel.path.as_uri()
    assert test_channel.python_version == ".".join(map(str, sys.version_info[:3]))
    names = set()
    for subdir in ("noarch", "linux-64"):
        repodata = json.loads((test_channel.path / subdir / "repodata.json").read_text())
        names |= {p["name"] for p in repodata["packages"].values()}
    assert {"python", "pip", "numpy", "pyyaml", "beautifulsoup4", "datatools", "oldpkg"} <= names
    assert not (test_channel.path / ".tmp").exists()


@pytest.mark.channel
def test_env_python_numpy_yaml_bs4(env_prefix: Path) -> None:
    code = (
        "import sys, numpy, yaml, bs4\n"
        "print(sys.prefix); print(sys.base_prefix); print(numpy.arange(10).sum())\n"
        "print(yaml.safe_load('a: [1, 2]'))\n"
        "print(bs4.BeautifulSoup('<p>hi</p>', 'html.parser').p.text)\n"
        "import sysconfig; print(sysconfig.get_paths()['purelib']); print(repr(sys.path))\n"
    )
    result = run_in_env(env_prefix, "python", "-c", code)
    assert result.ok, result.describe()
    prefix, base, total, loaded, text, purelib, path = result.stdout.splitlines()
    assert prefix == base == str(env_prefix.resolve())
    assert purelib == f"{prefix}/lib/{PY}/site-packages"  # sysconfig data was relocated
    assert (total, loaded, text) == ("45", "{'a': [1, 2]}", "hi")
    host = sys.base_prefix
    assert not prefix.startswith(host)
    assert not [p for p in eval(path) if p.startswith(host)]


@pytest.mark.channel
def test_env_entry_points(env_prefix: Path) -> None:
    pip = run_in_env(env_prefix, "pip", "--version")
    assert pip.ok, pip.describe()
    assert str(env_prefix.resolve() / "lib" / PY / "site-packages") in pip.stdout
    # f2py comes from numpy's console_scripts, written into the linux-64 package.
    f2py = run_in_env(env_prefix, "f2py", "-v")
    assert f2py.ok, f2py.describe()
    assert f2py.stdout.strip() == "1.26.4"


@pytest.mark.channel
def test_env_dist_info_is_conda_installed(env_prefix: Path) -> None:
    code = (
        "import importlib.metadata as m\n"
        "for d in ('beautifulsoup4', 'numpy', 'brokenraise', 'needsmissing'):\n"
        "    dist = m.distribution(d)\n"
        "    print(d, dist.version, dist.read_text('INSTALLER').strip(), dist.requires)\n"
    )
    result = run_in_env(env_prefix, "python", "-c", code)
    assert result.ok, result.describe()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("beautifulsoup4 4.12.3 conda ['soupsieve>1.2'")
    assert lines[1].startswith("numpy 1.26.4 conda")
    assert lines[2] == "brokenraise 1.0 conda None"
    assert lines[3] == "needsmissing 1.0 conda ['notinstalled-dist>=1']"
    check = run_in_env(env_prefix, "python", "-m", "pip", "check")
    assert check.returncode == 1
    assert "needsmissing 1.0 requires notinstalled-dist" in check.stdout


@pytest.mark.channel
def test_broken_packages_fail_as_designed(env_prefix: Path) -> None:
    raised = run_in_env(env_prefix, "python", "-c", "import brokenraise")
    assert raised.returncode == 1
    assert "ImportError: brokenraise is broken on purpose" in raised.stderr
    segv = run_in_env(env_prefix, "python", "-c", "import brokensegv")
    assert segv.returncode == -11
    hang = run_in_env(env_prefix, "python", "-c", "import brokenhang", timeout=2)
    assert hang.timed_out
    assert (env_prefix / "share" / "nopython" / "README").is_file()


@pytest.mark.channel
def test_solver_sees_versions_and_metapackage(test_channel: LocalChannel, tmp_path: Path) -> None:
    assert versions(solve([test_channel.url], ["oldpkg"], tmp_path))["oldpkg"] == "2.0"
    assert versions(solve([test_channel.url], ["oldpkg <2"], tmp_path))["oldpkg"] == "1.0"
    meta = versions(solve([test_channel.url], ["datatools", "python"], tmp_path))
    assert {"numpy", "pyyaml", "python"} <= set(meta)
    reqs = versions(solve([test_channel.url], ["requests"], tmp_path))
    assert {"urllib3", "idna", "certifi", "charset-normalizer"} <= set(reqs)


def publish_drifty(channel: Path, version: str) -> None:
    files = {"drifty/__init__.py": f"def main() -> None:\n    print('drifty {version}')\n"}
    entry_points = ["drifty = drifty:main"]
    make_noarch_python_package(channel, "drifty", version, files=files, entry_points=entry_points)
    index_channel(channel)


@pytest.mark.channel
def test_separate_channel_publishes_a_newer_version(
    test_channel: LocalChannel, rattler_cache: Path, tmp_path: Path
) -> None:
    drift = new_channel(tmp_path / "drift")
    publish_drifty(drift, "1.0")
    sources = [test_channel.url, file_url(drift)]
    assert versions(solve(sources, ["drifty"], tmp_path))["drifty"] == "1.0"
    publish_drifty(drift, "1.1")
    # A fresh Gateway on the same cache dir sees the re-indexed channel.
    records = solve(sources, ["python", "drifty"], tmp_path)
    assert versions(records)["drifty"] == "1.1"
    install(records, tmp_path / "env", rattler_cache)
    result = run_in_env(tmp_path / "env", "drifty")
    assert (result.returncode, result.stdout) == (0, "drifty 1.1\n"), result.describe()


@pytest.mark.channel
def test_a_console_script_with_extras_is_converted_without_them(
    test_channel: LocalChannel, rattler_cache: Path, tmp_path: Path
) -> None:
    # As google-auth-oauthlib's `google-oauthlib-tool = ...:main [tool]`: rattler refuses
    # an entry point with extras in link.json, and the launcher could not import it.
    files = {"greeter.py": "def main() -> None:\n    print('hello')\n"}
    points = "[console_scripts]\ngreet = greeter:main [tool]\n"
    wheel = make_wheel(tmp_path / "wheels", "greeter", "1.0", files=files, entry_points=points)
    channel = new_channel(tmp_path / "extras")
    package = package_from_wheel(channel, wheel)
    index_channel(channel)
    with tarfile.open(package) as archive:
        link = json.loads(archive.extractfile("info/link.json").read())  # type: ignore[union-attr]
    assert link["noarch"]["entry_points"] == ["greet = greeter:main"]
    records = solve([test_channel.url, file_url(channel)], ["python", "greeter"], tmp_path)
    install(records, tmp_path / "env", rattler_cache)
    result = run_in_env(tmp_path / "env", "greet")
    assert (result.returncode, result.stdout) == (0, "hello\n"), result.describe()


@pytest.mark.channel
def test_second_build_is_cached(test_channel: LocalChannel) -> None:
    start = time.perf_counter()
    again = build_test_channel()
    assert time.perf_counter() - start < 1.0
    assert again == test_channel


@pytest.mark.parametrize(
    ("requirement", "spec"),
    [
        ("urllib3<3,>=1.21.1", "urllib3 <3,>=1.21.1"),
        ("Typing_Extensions>=4", "typing-extensions >=4"),
        ("PySocks!=1.5.7,>=1.5.6; extra == 'socks'", None),
        ("importlib-metadata; python_version < '3.8'", None),
        ("six", "six"),
    ],
)
def test_conda_requirement(requirement: str, spec: str | None) -> None:
    assert conda_requirement(requirement) == spec
