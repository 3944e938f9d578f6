"""nox sessions. Thin: each calls envassay's own functions or pytest with its plugin.

`nox -s envs` and friends run in the interpreter that runs nox (no venv) when
envassay imports there (`pip install -e '.[test]'` beside nox), which keeps warm
runs fast. Where it does not (a fresh clone, nox from pipx), each such session
runs again, by nox, in one shared venv with the project installed, `.nox/envassay`,
made on first use and reused while pyproject.toml and nox's interpreter are
unchanged. `tests` and `lint` build their own venv, as usual.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nox
from nox.command import CommandFailed

nox.options.sessions = ["envs"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).parent
PROJECT_VENV = ROOT / ".nox" / "envassay"
NESTED = "ENVASSAY_NOX_IN_VENV"  # set for the nox run inside PROJECT_VENV: no third level
SessionFunc = Callable[..., None]


def _with_envassay(func: SessionFunc, needs: str = "envassay") -> SessionFunc:
    """Run the session here when ``needs`` imports in nox's interpreter; else run it again,
    by the same nox (a dependency of envassay), in PROJECT_VENV, with the same posargs."""

    @functools.wraps(func)
    def session_func(session: nox.Session, **params: Any) -> None:
        if importlib.util.find_spec(needs) is not None:
            func(session, **params)
            return
        if os.environ.get(NESTED):
            session.error(f"envassay does not import in {sys.executable}; remove {PROJECT_VENV}")
        python = _project_python(session)
        noxfile = str(ROOT / "noxfile.py")
        argv = [python, "-m", "nox", "--noxfile", noxfile, "-s", session.name, "--"]
        session.run(*argv, *session.posargs, env={NESTED: "1"}, external=True)

    return session_func


# The test support (src/envassay_testing) is never installed: only an editable install of
# this clone (PROJECT_VENV's) provides it.
_with_test_support = functools.partial(_with_envassay, needs="envassay_testing")


def _project_python(session: nox.Session) -> str:
    """PROJECT_VENV's interpreter, made (or remade) when its stamp is not today's."""
    bin_dir = PROJECT_VENV / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    stamp = PROJECT_VENV / ".envassay-stamp"
    # What the venv was made from: the project's dependencies and the interpreter.
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    key.update(f"{sys.executable}\n{sys.version}".encode())
    with _locked(PROJECT_VENV.parent / ".envassay.lock"):  # two nox runs at once make it once
        if python.is_file() and stamp.is_file() and stamp.read_text() == key.hexdigest():
            return str(python)
        session.log(f"envassay does not import here: making {PROJECT_VENV} (once)")
        shutil.rmtree(PROJECT_VENV, ignore_errors=True)
        # virtualenv comes with nox and needs no ensurepip (absent on some Debian pythons).
        maker = "virtualenv" if importlib.util.find_spec("virtualenv") else "venv"
        session.run(sys.executable, "-m", maker, str(PROJECT_VENV), silent=True, external=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        session.run(*pip, "-e", f"{ROOT}[test]", external=True)
        stamp.write_text(key.hexdigest())
    return str(python)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _env_names() -> list[str]:
    try:
        from envassay.spec.config import load_config
    except ImportError:  # nox -l before envassay is installed still lists sessions
        return sorted(p.stem for p in ROOT.glob("envs/*.y*ml") if ".conda-lock" not in p.name)
    return [p.stem for p in load_config(ROOT).spec_paths()]


def _spec_path(name: str) -> str:
    from envassay.spec.config import load_config

    for path in load_config(ROOT).spec_paths():
        if path.stem == name:
            return str(path)
    raise ValueError(name)


@nox.session(venv_backend="none")
@nox.parametrize("env", _env_names())
@_with_envassay
def envs(session: nox.Session, env: str) -> None:
    """Create each env natively and run its smoke tests (after --: pytest args, --backend NAME)."""
    _pytest(session, ROOT, _spec_path(env))


@nox.session(venv_backend="none")
@nox.parametrize("env", _env_names())
@_with_envassay
def docker(session: nox.Session, env: str) -> None:
    """Build each env's image (or reuse it by content hash) and run the same checks inside it.

    Builder/runtime images: per env in [tool.envassay.envs.NAME], or pytest args after --
    (`nox -s docker -- --envassay-builder-image REF`).
    """
    _pytest(session, ROOT, "--envassay-target", "docker", _spec_path(env))


def _pytest(
    session: nox.Session, root: Path, *args: str, success_codes: tuple[int, ...] = (0,)
) -> None:
    """pytest as `envassay check` runs it (envassay.run.noxargs.pytest_flags) on ``args`` and
    the session's posargs (envassay's short forms spelled out), in nox's own interpreter:
    no Python and pytest start-up per env session, so a warm `nox -s envs` costs about
    what one `envassay check` over the same specs does."""
    from envassay.run.noxargs import pytest_args, pytest_flags
    from envassay.run.runner import run_pytest

    argv = [*pytest_flags(root), *args, *pytest_args(session.posargs)]
    session.log(f"pytest {' '.join(argv)}")
    code = run_pytest(argv)
    if code not in success_codes:  # reported as a failed command, as session.run does
        raise CommandFailed(f"pytest returned code {code}")


@nox.session(venv_backend="none")
@_with_envassay
def check(session: nox.Session) -> None:
    """Every env in one `envassay check` run (after --: `-j 2`, `--report-md F`, `--target T`).

    pytest arguments go after a second `--` (`nox -s check -- -j 2 -- -x`).
    """
    session.run(sys.executable, "-m", "envassay", "check", *session.posargs)


@nox.session(venv_backend="none")
@_with_envassay
def matrix(session: nox.Session) -> None:
    """Print the CI matrix, a job per env x target x platform (after --: `--format github`).

    Also `--format gitlab|json`, `--changed-since REF`, `--target T`, `--platform P`.
    """
    session.run(sys.executable, "-m", "envassay", "matrix", *session.posargs)


@nox.session(venv_backend="none")
@_with_test_support
def demo(session: nox.Session) -> None:
    """Build the local conda channel, then run the native pipeline on demo/envs."""
    demo_dir = ROOT / "demo"
    session.run(sys.executable, "-m", "envassay_testing.demo", "build-channel")
    _pytest(session, demo_dir, str(demo_dir / "envs" / "good.yml"))
    session.log("demo/envs/broken.yml must fail on exactly its three broken packages:")
    _pytest(session, demo_dir, str(demo_dir / "envs" / "broken.yml"), success_codes=(1,))


@nox.session(venv_backend="none")
@_with_envassay
def lock(session: nox.Session) -> None:
    """Solve each spec per platform into envs/NAME.conda-lock.yml (`-- --check`: only check)."""
    session.run(sys.executable, "-m", "envassay", "lock", *session.posargs)


@nox.session(venv_backend="none")
@_with_envassay
def drift(session: nox.Session) -> None:
    """Solve each locked spec today and show what moved upstream (`-- --fail --markdown F`)."""
    session.run(sys.executable, "-m", "envassay", "drift", *session.posargs)


@nox.session(venv_backend="none")
@_with_envassay
def bench(session: nox.Session) -> None:
    """The benchmarks of docs/benchmarks.md, each printing its ratios (after --: script names).

    `nox -s bench -- warm_check cold_create` runs only those. container_suite runs when a
    Docker engine answers. Slow (minutes) and meant for a quiet machine.
    """
    scripts = ["warm_check", "cold_create", "probe_imports", "scale", "container_suite"]
    scripts.append("handwritten")  # needs a conda: see its --conda
    chosen = session.posargs or scripts
    for name in chosen:
        if name == "container_suite" and not session.posargs and not _docker_answers():
            session.log("container_suite: skipped, no Docker engine answers")
            continue
        # A target not met (container_suite exits 1) must not hide the other figures.
        session.run(sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), success_codes=[0, 1])


def _docker_answers() -> bool:
    from envassay.docker import engine_reason

    return engine_reason() is None


@nox.session
def tests(session: nox.Session) -> None:
    """envassay's own test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy and import-linter (the layers and no cycle: docs/architecture.md)."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")
    session.run("mypy")
    session.run("lint-imports", "--no-cache")
