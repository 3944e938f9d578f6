"""nox sessions. Thin: each calls envassay's own functions or pytest with its plugin.

`nox -s envs` and friends run in the interpreter that runs nox (no venv): it
must have envassay installed (`pip install -e '.[test]'`), which keeps warm
runs fast. `tests` and `lint` build their own venv, as usual.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox
from nox.command import CommandFailed

nox.options.sessions = ["envs"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).parent


def _env_names() -> list[str]:
    try:
        from envassay.config import load_config
    except ImportError:  # nox -l before envassay is installed still lists sessions
        return sorted(p.stem for p in ROOT.glob("envs/*.y*ml") if ".conda-lock" not in p.name)
    return [p.stem for p in load_config(ROOT).spec_paths()]


def _spec_path(name: str) -> str:
    from envassay.config import load_config

    for path in load_config(ROOT).spec_paths():
        if path.stem == name:
            return str(path)
    raise ValueError(name)


@nox.session(venv_backend="none")
@nox.parametrize("env", _env_names())
def envs(session: nox.Session, env: str) -> None:
    """Create each env natively and run its smoke tests (after --: pytest args, --backend NAME)."""
    _pytest(session, ROOT, _spec_path(env))


@nox.session(venv_backend="none")
@nox.parametrize("env", _env_names())
def docker(session: nox.Session, env: str) -> None:
    """Build each env's image (or reuse it by content hash) and run the same checks inside it.

    Builder/runtime images: per env in [tool.envassay.envs.NAME], or pytest args after --
    (`nox -s docker -- --envassay-builder-image REF`).
    """
    _pytest(session, ROOT, "--envassay-target", "docker", _spec_path(env))


def _pytest(
    session: nox.Session, root: Path, *args: str, success_codes: tuple[int, ...] = (0,)
) -> None:
    """pytest as `envassay check` runs it (envassay.noxargs.pytest_flags) on ``args`` and
    the session's posargs (envassay's short forms spelled out), in nox's own interpreter:
    no Python and pytest start-up per env session, so a warm `nox -s envs` costs about
    what one `envassay check` over the same specs does."""
    from envassay.noxargs import pytest_args, pytest_flags
    from envassay.runner import run_pytest

    argv = [*pytest_flags(root), *args, *pytest_args(session.posargs)]
    session.log(f"pytest {' '.join(argv)}")
    code = run_pytest(argv)
    if code not in success_codes:  # reported as a failed command, as session.run does
        raise CommandFailed(f"pytest returned code {code}")


@nox.session(venv_backend="none")
def check(session: nox.Session) -> None:
    """Every env in one `envassay check` run (after --: `-j 2`, `--report-md F`, `--target T`).

    pytest arguments go after a second `--` (`nox -s check -- -j 2 -- -x`).
    """
    session.run(sys.executable, "-m", "envassay", "check", *session.posargs)


@nox.session(venv_backend="none")
def matrix(session: nox.Session) -> None:
    """Print the CI matrix, a job per env x target x platform (after --: `--format github`).

    Also `--format gitlab|json`, `--changed-since REF`, `--target T`, `--platform P`.
    """
    session.run(sys.executable, "-m", "envassay", "matrix", *session.posargs)


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """Build the local conda channel, then run the native pipeline on demo/envs."""
    demo_dir = ROOT / "demo"
    session.run(sys.executable, "-m", "envassay.testing.demo", "build-channel")
    _pytest(session, demo_dir, str(demo_dir / "envs" / "good.yml"))
    session.log("demo/envs/broken.yml must fail on exactly its three broken packages:")
    _pytest(session, demo_dir, str(demo_dir / "envs" / "broken.yml"), success_codes=(1,))


@nox.session(venv_backend="none")
def lock(session: nox.Session) -> None:
    """Solve each spec per platform into envs/NAME.conda-lock.yml (`-- --check`: only check)."""
    session.run(sys.executable, "-m", "envassay", "lock", *session.posargs)


@nox.session(venv_backend="none")
def drift(session: nox.Session) -> None:
    """Solve each locked spec today and show what moved upstream (`-- --fail --markdown F`)."""
    session.run(sys.executable, "-m", "envassay", "drift", *session.posargs)


@nox.session(venv_backend="none")
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
    """ruff and mypy."""
    session.install("-e", ".[test]")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")
    session.run("mypy")
