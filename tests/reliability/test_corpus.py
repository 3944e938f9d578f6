"""The bad-input corpus (tests/corpus/): every malformed or hostile spec, config and lock,
through the real CLI.

Each file's first lines say what must happen: ``# expect: FRAGMENT`` (in the error
line), optionally ``# at: LINE[:COL]`` (the error names ``FILE:LINE[:COL]``) and, for
specs, ``# run: spec create lock`` (the commands to try; default ``spec create``).

Every run must end with exit 2 and one line ``envassay: error: FILE...: ...`` naming the
file, no traceback, within bounded time and memory, and write nothing outside its
temporary sandbox: HOME, XDG dirs, TMPDIR and the store point into it, the process runs
under an audit hook that records writes anywhere else, and the project directory is
compared before and after (nothing may change there either).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.harness import Bounded, Sandbox, run_envassay_audited, tree

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
SECONDS = 30.0  # each run; a healthy one takes well under 2 s
MEMORY_MB = 2048  # address space (RLIMIT_AS) of each run
RSS_MB = 400  # peak resident memory of each run
OK_SPEC = "channels: [./channel]\ndependencies: [numpy]\n"


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str
    at: str | None
    commands: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def read_case(path: Path, default: tuple[str, ...]) -> Case:
    head = path.read_bytes().split(b"\n")[:4]
    fields: dict[str, str] = {}
    for raw in head:
        line = raw.decode("utf-8", "replace")
        if match := re.match(r"# (expect|at|run): (.*)$", line):
            fields[match.group(1)] = match.group(2).strip()
    assert "expect" in fields, f"{path}: no `# expect:` line"
    commands = tuple(fields["run"].split()) if "run" in fields else default
    return Case(path, fields["expect"], fields.get("at"), commands)


def cases(kind: str, pattern: str, default: tuple[str, ...]) -> list[Case]:
    return [read_case(p, default) for p in sorted((CORPUS / kind).glob(pattern))]


SPEC_CASES = cases("specs", "*.yml", ("spec",))
CONFIG_CASES = cases("config", "*.toml", ("lock", "check"))
LOCK_CASES = cases("locks", "*.conda-lock.yml", ("lock", "create"))


def test_the_corpus_is_big_enough() -> None:
    assert len(SPEC_CASES) + len(CONFIG_CASES) + len(LOCK_CASES) >= 30
    assert len(SPEC_CASES) >= 30


def sandbox_for(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path)
    (box.project / "envs" / "channel").mkdir()  # ./channel of OK_SPEC (empty; never solved)
    return box


def argv(command: str, spec: str) -> list[str]:
    return {
        "spec": ["spec", spec],
        "create": ["create", spec],
        "lock": ["lock", "--check", spec],
        "check": ["check", spec],
    }[command]


def assert_one_line_error(
    result: Bounded, *, file: str, expect: str, at: str | None, command: str
) -> None:
    detail = result.describe()
    assert not result.timed_out, detail
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stdout + result.stderr, detail
    assert result.seconds < SECONDS, detail
    assert result.max_rss_mb < RSS_MB, detail
    errors = [line for line in result.stderr.splitlines() if line.startswith("envassay: error:")]
    assert len(errors) == 1, detail
    line = errors[0]
    if command != "create":  # create may print progress first (e.g. an unreachable channel)
        assert result.stderr.strip() == line, detail
    assert expect in line, detail
    assert file in line, detail
    if at is not None:
        assert f"{file}:{at}" in line, detail
    assert not result.audit or all(a.startswith("subprocess") for a in result.audit), detail


@pytest.mark.parametrize("case", SPEC_CASES, ids=lambda c: c.id)
def test_bad_spec(case: Case, tmp_path: Path) -> None:
    box = sandbox_for(tmp_path)
    spec = box.project / "envs" / case.path.name
    shutil.copyfile(case.path, spec)
    before = tree(box.project)
    rel = f"envs/{case.path.name}"
    for command in case.commands:
        result = run_envassay_audited(box, argv(command, rel), timeout=SECONDS, memory_mb=MEMORY_MB)
        assert_one_line_error(result, file=rel, expect=case.expect, at=case.at, command=command)
        if command != "create" or "channel-unreachable" not in case.path.name:
            assert not any(a.startswith("subprocess") for a in result.audit), result.describe()
    assert tree(box.project) == before
    assert not any(box.home.iterdir()), list(box.home.rglob("*"))


@pytest.mark.parametrize("case", CONFIG_CASES, ids=lambda c: c.id)
def test_bad_config(case: Case, tmp_path: Path) -> None:
    box = sandbox_for(tmp_path)
    (box.project / "envs" / "ok.yml").write_text(OK_SPEC)
    shutil.copyfile(case.path, box.project / "pyproject.toml")
    before = tree(box.project)
    for command in case.commands:
        result = run_envassay_audited(
            box, argv(command, "envs/ok.yml"), timeout=SECONDS, memory_mb=MEMORY_MB
        )
        assert_one_line_error(
            result, file="pyproject.toml", expect=case.expect, at=case.at, command=command
        )
        assert not any(a.startswith("subprocess") for a in result.audit), result.describe()
    assert tree(box.project) == before
    assert not box.store.exists()


@pytest.mark.parametrize("case", LOCK_CASES, ids=lambda c: c.id)
def test_bad_lock(case: Case, tmp_path: Path) -> None:
    box = sandbox_for(tmp_path)
    (box.project / "envs" / "ok.yml").write_text(OK_SPEC)
    shutil.copyfile(case.path, box.project / "envs" / "ok.conda-lock.yml")
    before = tree(box.project)
    for command in case.commands:
        result = run_envassay_audited(
            box, argv(command, "envs/ok.yml"), timeout=SECONDS, memory_mb=MEMORY_MB
        )
        assert_one_line_error(
            result,
            file="envs/ok.conda-lock.yml",
            expect=case.expect,
            at=case.at,
            command=command,
        )
        assert not any(a.startswith("subprocess") for a in result.audit), result.describe()
    assert tree(box.project) == before
    assert not box.store.exists()


# Hostile inputs that are not committed files: made in the sandbox by the test.
def _huge(path: Path) -> None:
    with path.open("wb") as handle:  # 50 MB of a valid-looking spec
        handle.write(b"dependencies:\n")
        line = b"  - numpy\n"
        handle.write(line * (50 * 1024 * 1024 // len(line)))


def _nested(path: Path) -> None:  # overflowed libyaml's recursive composer (a segfault)
    path.write_text("dependencies: " + "[" * 100_000 + "\n")


def _many_values(path: Path) -> None:  # under the size limit, over the value limit
    path.write_text("dependencies:\n" + "- a\n" * 1_250_000)  # 5 MB


def _device(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


GENERATED = {
    "huge-50mb.yml": (_huge, "files larger than 5242880 bytes are refused", None),
    # Where the error points depends on the libyaml: its own scanner may stop first.
    "nested-100k.yml": (_nested, "nested deeper than 64 levels", None),
    "million-values.yml": (_many_values, "more than 100000 values", None),
    "dev-zero.yml": (_device, "is not a regular file", None),
    "fifo.yml": (_fifo, "is not a regular file", None),
    "directory.yml": (_directory, "is a directory", None),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_hostile_spec(name: str, tmp_path: Path) -> None:
    make, expect, at = GENERATED[name]
    box = sandbox_for(tmp_path)
    make(box.project / "envs" / name)
    rel = f"envs/{name}"
    for command in ("spec", "create", "lock"):
        result = run_envassay_audited(box, argv(command, rel), timeout=SECONDS, memory_mb=MEMORY_MB)
        if command == "lock" and name in ("dev-zero.yml", "fifo.yml", "directory.yml"):
            # `lock --check` takes only regular files as specs: "spec not found", exit 2.
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.describe()
            assert rel in result.stderr and not result.timed_out, result.describe()
            continue
        assert_one_line_error(result, file=rel, expect=expect, at=at, command=command)
