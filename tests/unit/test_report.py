"""report.py as pure functions: runs -> Markdown, JSON (against its schema), terminal table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envassay.checks import failed, passed, skipped
from envassay.probe.model import ImportResult
from envassay.run.report import (
    REPORT_VERSION,
    TargetRun,
    expected_found,
    render_markdown,
    terminal_table,
    to_json,
    total,
)
from envassay.run.session import AssaySession

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


def imports(count: int) -> tuple[ImportResult, ...]:
    return tuple(
        ImportResult(f"mod{i}", f"pkg{i}", "ok", None, None, seconds=i / 100) for i in range(count)
    )


def runs() -> list[TargetRun]:
    good = TargetRun(
        env="good",
        spec="envs/good.yml",
        target="native",
        platform="linux-64",
        results=(
            passed("create", "native", "created"),
            passed("import", "numpy", "imported numpy"),
            skipped("import", "openssl", "openssl is not a Python package"),
            passed("gpu", "driver", "CUDA driver 12.4, 1 device(s): NVIDIA H200"),
        ),
        imports=imports(12),
        seconds=12.5,
    )
    bad = TargetRun(
        env="bad",
        spec="envs/bad.yml",
        target="docker",
        platform="linux-64",
        results=(
            passed("create", "docker", "built"),
            failed("import", "brokenraise", "import brokenraise failed: ImportError: on purpose"),
            failed("pin", "tool<2", "expected tool<2; found tool 2.0"),
            failed(
                "lock",
                "match",
                "the env differs from bad.conda-lock.yml (linux-64): 1 changed\n  table...",
                changes=[("conda", "numpy", "numpy 1.26.4 h1", "numpy 2.0.0 h2")],
            ),
            failed("health", "pip", "a 1 requires b|c, which is not installed"),
        ),
        imports=(ImportResult("brokenraise", "brokenraise", "error", "ImportError", None, 0.0),),
        seconds=3.25,
    )
    broken_spec = TargetRun(
        env="worse", spec="envs/worse.yml", target="native", error="invalid conda MatchSpec 'x>=>1'"
    )
    return [good, bad, broken_spec]


def test_counts() -> None:
    good, bad, worse = runs()
    assert (good.counts.passed, good.counts.failed, good.counts.skipped) == (3, 0, 1)
    assert (bad.counts.passed, bad.counts.failed) == (1, 4)
    assert worse.counts.errors == 1 and not worse.counts.ok
    assert total(runs()).to_dict() == {"passed": 4, "failed": 4, "skipped": 1, "errors": 1}


def test_expected_found() -> None:
    assert expected_found(failed("pin", "tool<2", "expected tool<2; found tool 2.0")) == (
        "tool<2",
        "tool 2.0",
    )
    assert expected_found(failed("import", "x", "import x failed: boom")) == (
        "every module of the package imports",
        "import x failed: boom",
    )
    lock = failed("lock", "match", "the env differs: 1 changed\n  package manager ...")
    assert expected_found(lock) == ("installed exactly as locked", "the env differs: 1 changed")


def test_markdown_has_counts_failures_drift_gpu_and_slowest_imports() -> None:
    text = render_markdown(runs())
    assert text.startswith("## envassay report: checks FAILED\n")
    assert "3 env target(s): 4 passed, 4 failed, 1 skipped, 1 error(s)." in text
    assert "| good | native | linux-64 | pass | 3 | 0 | 1 | 12.5s |" in text
    assert "| bad | docker | linux-64 | FAIL | 1 | 4 | 0 | 3.2s |" in text
    assert "| worse | native |  | error | 0 | 0 | 0 |  |" in text
    # Failures: expected vs found, one row each; pipes escaped so the table holds.
    assert "| bad | docker | `pin[tool<2]` | tool&lt;2 | tool 2.0 |" in text
    assert (
        "| bad | docker | `import[brokenraise]` | every module of the package imports "
        "| import brokenraise failed: ImportError: on purpose |" in text
    )
    assert "a 1 requires b\\|c, which is not installed" in text
    assert "| worse | native | invalid conda MatchSpec 'x&gt;=&gt;1' |" in text
    # Drift: the lock[match] table.
    assert "### Drift: bad · docker (installed ≠ lock)" in text
    assert "| numpy | conda | numpy 1.26.4 h1 | numpy 2.0.0 h2 |" in text
    # GPU facts.
    gpu_row = "| good | native | `gpu[driver]` | passed | CUDA driver 12.4, 1 device(s): NVIDIA"
    assert gpu_row in text
    # Slowest imports: the top 10 of 12, slowest first.
    section = text.split("<summary>good · native: 12 module(s)", 1)[1].split("</details>")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `mod")]
    assert [r.split("`")[1] for r in rows] == [f"mod{i}" for i in range(11, 1, -1)]
    assert "Skipped (1)" in text and "openssl is not a Python package" in text


def test_markdown_all_passed() -> None:
    good = runs()[0]
    text = render_markdown([good])
    assert text.startswith("## envassay report: all checks passed")
    assert "### Failures" not in text and "### Drift" not in text


def test_json_report_matches_its_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    document = to_json(runs(), envassay_version="0.1.0", created="2026-01-01T00:00:00+00:00")
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["report_version"] == REPORT_VERSION
    assert document["ok"] is False
    bad = document["runs"][1]
    pin = next(c for c in bad["checks"] if c["name"] == "pin[tool<2]")
    assert (pin["outcome"], pin["expected"], pin["found"]) == ("failed", "tool<2", "tool 2.0")
    assert bad["drift"] == [
        {
            "package": "numpy",
            "manager": "conda",
            "locked": "numpy 1.26.4 h1",
            "installed": "numpy 2.0.0 h2",
        }
    ]
    assert document["runs"][0]["imports"][0] == {
        "module": "mod11",
        "package": "pkg11",
        "status": "ok",
        "seconds": 0.11,
    }
    assert document["runs"][2]["error"] == "invalid conda MatchSpec 'x>=>1'"
    json.dumps(document)  # plain JSON throughout


def test_terminal_table() -> None:
    lines = terminal_table(runs())
    assert lines[0].split() == [
        "env",
        "target",
        "platform",
        "passed",
        "failed",
        "skipped",
        "time",
        "result",
    ]
    assert lines[1].split() == ["good", "native", "linux-64", "3", "0", "1", "12.5s", "ok"]
    assert lines[2].split() == ["bad", "docker", "linux-64", "1", "4", "0", "3.2s", "FAILED"]
    assert lines[3].split() == ["worse", "native", "-", "0", "0", "0", "-", "ERROR"]
    # Aligned: text columns start together, number columns end together.
    assert lines[1].index("linux-64") == lines[0].index("platform")
    assert lines[1].index("12.5s") + 5 == lines[2].index("3.2s") + 4 == lines[0].index("time") + 4


def test_session_writes_reports_and_step_summary(tmp_path: Path) -> None:
    session = AssaySession(root=tmp_path)
    spec = tmp_path / "envs" / "bad.yml"
    session.record_result(spec, "native", "bad", failed("pin", "a<2", "expected a<2; found a 2"))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    written = session.write_reports(
        tmp_path / "out" / "r.md",
        tmp_path / "out" / "r.json",
        environ={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert len(written) == 3
    markdown = (tmp_path / "out" / "r.md").read_text()
    assert "| bad | native | `pin[a<2]` | a&lt;2 | a 2 |" in markdown
    assert summary.read_text() == "earlier step\n" + markdown + "\n"  # appended
    document = json.loads((tmp_path / "out" / "r.json").read_text())
    assert document["runs"][0]["spec"] == "envs/bad.yml"


def test_session_writes_nothing_when_no_target_ran(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    written = AssaySession().write_reports(
        tmp_path / "r.md", None, environ={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert written == [] and not summary.exists() and not (tmp_path / "r.md").exists()
