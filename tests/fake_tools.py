"""Stand-ins for the conda, mamba and micromamba executables, for machines that have none.

No conda-family binary can be installed where envassay's tests run, and no conda
channel can be reached. So a test puts a stand-in on PATH under the tool's name
(``fake_micromamba`` is an executable called ``micromamba``, and so on): a small
Python script that records every call (argv, working directory, environment) to
a JSON-lines file, answers ``--version`` with the text the real tool prints, and
then either

- creates the prefix for real by handing the work to envassay's rattler backend
  against the local test channel: the env file the tool was given is solved and
  linked, a conda-lock file is installed without a solve (and its pip entries,
  as micromamba does), an ``@EXPLICIT`` file is linked as listed (no pip, as
  conda does); so the store, the probe and the checks run end to end through
  the CLI-backend code path; or
- prints a real tool's recorded failure output (:data:`RECORDED_FAILURES`,
  each with the issue it was copied from) and exits as the tool did.

What the real tools do is exercised by ``tests/integration/test_real_tools.py``
where they are installed (the backends workflow).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

# `TOOL --version` as each prints it.
VERSION_OUTPUT = {
    "conda": "conda 24.7.1\n",
    "mamba1": "mamba 1.5.8\nconda 24.3.0\n",
    "mamba2": "2.0.5\n",
    "micromamba": "2.0.5\n",
    "micromamba1": "1.5.8\n",
}


@dataclass(frozen=True)
class Recorded:
    """A real tool's failing run, copied from a public issue (``source``).

    Host names of channels and package indexes in the originals are replaced by
    ``<channel-host>``; ``[...]`` marks lines left out.
    """

    source: str
    stdout: str
    stderr: str
    exit_code: int = 1


RECORDED_FAILURES: dict[str, Recorded] = {
    # micromamba 2.1.0, `micromamba create -f env.yml`: a package missing from the channels.
    "micromamba2-missing": Recorded(
        source="mamba-org/mamba#3888",
        stdout=(
            "conda-forge/linux-64                                        Using cache\n"
            "conda-forge/noarch                                          Using cache\n"
        ),
        stderr=(
            "error    libmamba Could not solve for environment specs\n"
            "    The following package could not be installed\n"
            "    └─ python =3.12.9 * does not exist (perhaps a typo or a missing channel).\n"
            "critical libmamba Could not solve for environment specs\n"
        ),
    ),
    # micromamba 1.x's older message for the same thing.
    "micromamba1-nothing-provides": Recorded(
        source="jupyterhub/repo2docker#1171",
        stdout="",
        stderr=(
            "error    libmamba Could not solve for environment specs\n"
            "Encountered problems while solving:\n"
            "  - nothing provides requested mamba 0.25.1**\n"
        ),
    ),
    # conda with its libmamba solver: a conflict.
    "conda-libmamba-unsatisfiable": Recorded(
        source="conda/conda#12912",
        stdout=(
            "Channels:\n"
            " - onedata\n"
            " - defaults\n"
            "Platform: linux-64\n"
            "Collecting package metadata (repodata.json): done\n"
            "Solving environment: failed\n"
        ),
        stderr=(
            "\n"
            "LibMambaUnsatisfiableError: Encountered problems while solving:\n"
            "  - nothing provides boost 1.78.0.* needed by oneclient-21.02.2-py39\n"
            "\n"
            "Could not solve for environment specs\n"
            "The following packages are incompatible\n"
            "└─ oneclient   is uninstallable because there are no viable options\n"
            "   ├─ oneclient [20.02.16.1|20.02.17|...|21.02.2] would require\n"
            "   │  └─ boost 1.78.0.* , which does not exist (perhaps a missing channel);\n"
        ),
    ),
    # `conda env create -f environment.yaml`: pinned builds the channels do not have.
    "conda-packages-not-found": Recorded(
        source="ali-vilab/MangaNinjia#5",
        stdout=(
            "Channels:\n"
            " - defaults\n"
            " - pytorch\n"
            " - conda-forge\n"
            "Platform: win-64\n"
            "Collecting package metadata (repodata.json): done\n"
            "Solving environment: failed\n"
        ),
        stderr=(
            "\n"
            "PackagesNotFoundError: The following packages are not available from current "
            "channels:\n"
            "\n"
            "  - python==3.10.14=h955ad1f_1\n"
            "  - pip==24.2=py310h06a4308_0\n"
            "\n"
            "Current channels:\n"
            "\n"
            "  - https://<channel-host>/pkgs/main\n"
            "  [...]\n"
        ),
    ),
    # `conda env create`: the pip: section cannot be resolved.
    "conda-pip-failed": Recorded(
        source="conda/conda#10251",
        stdout="",
        stderr=(
            "Pip subprocess error:\n"
            "ERROR: Could not find a version that satisfies the requirement cupcake==12.4.0 "
            "(from -r /mnt/SRV018/users/ahhammv1/7test/workflow/condaenv.7bfgnkj5.requireme"
            "[...]\n"
        ),
    ),
    # conda cannot reach a channel.
    "conda-http-error": Recorded(
        source="astroconda/astroconda#77",
        stdout="",
        stderr=(
            "CondaHTTPError: HTTP 000 CONNECTION FAILED for url "
            "<http://<channel-host>/public/osx-64/repodata.json>\n"
            "Elapsed: -\n"
            "An HTTP error occurred when trying to retrieve this URL.\n"
            "HTTP errors are often intermittent, and a simple retry will get you on your way.\n"
        ),
    ),
    # micromamba 2.0.5 cannot write where it must: not a solver failure.
    "micromamba2-permission": Recorded(
        source="mamba-org/mamba#3848",
        stdout="",
        stderr=(
            "critical libmamba filesystem error: status: Permission denied "
            "[/tmp/envroot/envs/test132]\n"
            "info     libmamba ****************** Backtrace End ********************\n"
        ),
    ),
}


SCRIPT = """#!{python}
# {name}: a stand-in for the real executable, written by envassay's tests (tests/fake_tools.py).
import json, sys
from pathlib import Path
config = json.loads(Path(__file__).with_name(Path(__file__).name + ".json").read_text())
sys.path.insert(0, config["repo_root"])
from tests.fake_tools import run_stand_in
sys.exit(run_stand_in(config, sys.argv))
"""


@dataclass(frozen=True)
class FakeTool:
    """A stand-in installed as ``path``; its calls are in ``log``."""

    name: str
    path: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def creates(self) -> list[dict[str, Any]]:
        """The calls that were not `--version`."""
        return [c for c in self.calls() if c["argv"][1:] != ["--version"]]


def install_fake_tool(
    bin_dir: Path,
    name: str,
    *,
    version: str | None = None,
    failure: Recorded | None = None,
    cache_dir: Path | None = None,
    hang: bool = False,
) -> FakeTool:
    """Write the stand-in ``bin_dir/name`` (executable) and its settings beside it.

    ``hang``: a create sleeps instead of creating (to be killed by the test).
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    log = bin_dir / f"{name}.calls.jsonl"
    config = {
        "name": name,
        "repo_root": str(REPO_ROOT),
        "version_output": VERSION_OUTPUT[version or name],
        "failure": asdict(failure) if failure else None,
        "cache_dir": str(cache_dir or bin_dir / "cache"),
        "log": str(log),
        "hang": hang,
    }
    path.with_name(name + ".json").write_text(json.dumps(config))
    path.write_text(SCRIPT.format(python=sys.executable, name=name))
    path.chmod(0o755)
    return FakeTool(name, path, log)


# ---------------------------------------------------------------- inside the stand-in


def run_stand_in(config: dict[str, Any], argv: Sequence[str]) -> int:
    """The stand-in's main: record the call, then answer as the real tool would."""
    args = list(argv[1:])
    # The files it was given are temporary: keep what they said.
    inputs = {f: Path(f).read_text() for f in _values(args, "-f", "--file") if Path(f).is_file()}
    with open(config["log"], "a", encoding="utf-8") as log:
        call = {
            "argv": list(argv),
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "inputs": inputs,
            "pid": os.getpid(),
        }
        log.write(json.dumps(call) + "\n")
    if args == ["--version"]:
        sys.stdout.write(config["version_output"])
        return 0
    if failure := config.get("failure"):
        sys.stdout.write(failure["stdout"])
        sys.stderr.write(failure["stderr"])
        return int(failure["exit_code"])
    if config.get("hang"):
        time.sleep(600)
    from envassay.errors import EnvassayError

    try:
        _create(args, Path(config["cache_dir"]))
    except EnvassayError as exc:
        print(f"stand-in {config['name']}: {exc}", file=sys.stderr)
        return 1
    print("Transaction finished")
    return 0


def _create(args: list[str], cache: Path) -> None:
    prefix = Path(_values(args, "-p", "--prefix")[-1])
    source = Path(_values(args, "-f", "--file")[-1])
    if source.name.endswith(("-lock.yml", "-lock.yaml")):
        _create_from_lock(source, prefix, cache)
    elif "@EXPLICIT" in source.read_text():
        _create_from_explicit(source, prefix, cache)
    else:
        _create_from_env_file(source, _values(args, "-c", "--channel"), prefix, cache)


def _values(args: Sequence[str], *names: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in names]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _create_from_env_file(source: Path, channels: list[str], prefix: Path, cache: Path) -> None:
    """Solve and link the env file as given, pip: section included (as the tools do)."""
    from envassay.create.backends.base import CreateRequest
    from envassay.create.backends.rattler import RattlerBackend
    from envassay.spec.environment import load_spec

    data = yaml.safe_load(source.read_text())
    in_file = [c for c in data.get("channels") or [] if c != "nodefaults"]
    with tempfile.TemporaryDirectory(prefix="fake-tool-") as tmp:
        copy = Path(tmp) / "environment.yml"
        merged = list(dict.fromkeys(channels + in_file))  # -c first, as micromamba does
        copy.write_text(yaml.safe_dump({**data, "channels": merged}))
        spec = load_spec(copy)
        request = CreateRequest(spec, prefix, spec.channels, cache)
        RattlerBackend().create(request, _progress)


def _create_from_lock(source: Path, prefix: Path, cache: Path) -> None:
    """Install a conda-lock file's packages for this platform, pip entries too, no solve."""
    from envassay.create.backends.base import CreateRequest
    from envassay.create.backends.rattler import RattlerBackend
    from envassay.lock.format import LockedEnv, read_lock
    from envassay.spec.environment import load_spec
    from envassay.spec.platforms import current_platform

    lock = read_lock(source)
    platform = current_platform()
    spec = load_spec(source.parent / lock.metadata.sources[0])
    locked = LockedEnv(
        lock_path=source,
        platform=platform,
        conda=lock.packages_for(platform, "conda"),
        pip=lock.packages_for(platform, "pip"),
        pip_resolved=True,  # micromamba installs the lock's pip entries, nothing else
        digest=lock.digest(platform),
    )
    request = CreateRequest(spec, prefix, lock.metadata.channels, cache, locked=locked)
    RattlerBackend().create(request, _progress)


def _create_from_explicit(source: Path, prefix: Path, cache: Path) -> None:
    """Link the listed archives (md5 checked), nothing else: conda's explicit install."""
    from envassay.rattler_client import run_worker
    from envassay.rattler_protocol import InstallRequest, Package

    records = []
    for line in source.read_text().splitlines():
        if not line.strip() or line.startswith(("#", "@")):
            continue
        url, _, md5 = line.strip().partition("#")
        channel, subdir, filename = url.rsplit("/", 2)
        stem = filename.removesuffix(".conda").removesuffix(".tar.bz2")
        name, version, build = stem.rsplit("-", 2)
        records.append(
            Package(
                name=name,
                version=version,
                build=build,
                channel=channel,
                url=url,
                subdir=subdir,
                depends=[],
                md5=md5 or None,
                sha256=None,
                filename=filename,
            )
        )
    request = InstallRequest(
        records=records,
        specs=[r.name for r in records],
        channels=[],
        prefix=str(prefix),
        cache_dir=str(cache),
    )
    run_worker(request, _progress)
