"""Run reports: what every env on every target gave -> Markdown, JSON and a terminal table.

Pure functions over plain data. The pytest plugin gathers one :class:`TargetRun`
per (spec, target) — the check results of the items that ran, the probe's
import results, or the error that stopped the target — and hands them here.

The JSON document's schema is documented in ``docs/report-schema.md`` and
``docs/report.schema.json``; ``REPORT_VERSION`` changes when a field changes
meaning or goes away (adding fields does not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envassay.checks import CheckResult
from envassay.cleantext import visible
from envassay.probe.model import ImportResult

REPORT_VERSION = 1
SLOWEST_IMPORTS = 10
OUTCOMES = ("passed", "failed", "skipped")
# What a failed check of each kind expected, when its message does not say it.
_EXPECTED = {
    "create": "the env is created",
    "probe": "the probe runs in the target",
    "import": "every module of the package imports",
    "health": "every requirement is met",
    "gpu": "the GPU stack works",
    "image": "image hygiene holds",
}
_EXPECTED_LOCK = {
    "fresh": "the lock says what the spec says",
    "match": "installed exactly as locked",
}
_EXPECTED_FOUND = re.compile(r"^expected (?P<expected>.+?); found (?P<found>.+)$", re.DOTALL)
_CELL_LIMIT = 400


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0  # targets that produced no checks at all (a collection error)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed,
            self.failed + other.failed,
            self.skipped + other.skipped,
            self.errors + other.errors,
        )

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def to_dict(self) -> dict[str, int]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class TargetRun:
    """One env on one target: the verdicts of the items that ran, or the error that
    stopped it before any item existed."""

    env: str
    spec: str
    target: str
    platform: str | None = None
    results: tuple[CheckResult, ...] = ()
    imports: tuple[ImportResult, ...] = ()
    error: str | None = None
    seconds: float | None = None  # create + probe + judging
    # The interpreter and prefix the probe judged (Interpreter.describe()), once probed.
    interpreter: str | None = None

    @property
    def counts(self) -> Counts:
        by = {o: sum(1 for r in self.results if r.outcome == o) for o in OUTCOMES}
        return Counts(by["passed"], by["failed"], by["skipped"], 1 if self.error else 0)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome == "failed"]


def total(runs: Iterable[TargetRun]) -> Counts:
    result = Counts()
    for run in runs:
        result = result + run.counts
    return result


# --- facts drawn from results -------------------------------------------------------------


def expected_found(result: CheckResult) -> tuple[str, str]:
    """A failed (or skipped) check as (what was expected, what was found)."""
    message = result.message.strip()
    match = _EXPECTED_FOUND.match(message)
    if match:
        return match["expected"].strip(), match["found"].strip()
    if result.kind == "pin":
        return result.param, message
    if result.kind == "lock":
        expected = _EXPECTED_LOCK.get(result.param, "the lock holds")
        return expected, message.split("\n", 1)[0]  # lock[match]: the table is in "drift"
    return _EXPECTED.get(result.kind, "the check passes"), message


def drift_rows(result: CheckResult) -> list[tuple[str, str, str, str]]:
    """lock[match]'s differences as (package, manager, locked, installed) rows."""
    rows = []
    for change in result.details.get("changes", ()):
        manager, name, locked, installed = (str(cell) for cell in change)
        rows.append((name, manager, locked, installed))
    return rows


def drifted(run: TargetRun) -> list[CheckResult]:
    """The failed lock[match] items of one run (at most one)."""
    return [r for r in run.failures if r.kind == "lock" and r.param == "match"]


def gpu_results(run: TargetRun) -> list[CheckResult]:
    return [r for r in run.results if r.kind == "gpu"]


def slowest_imports(run: TargetRun, limit: int = SLOWEST_IMPORTS) -> list[ImportResult]:
    """The ``limit`` slowest module imports of one run, slowest first."""
    return sorted(run.imports, key=lambda i: (-i.seconds, i.module))[:limit]


# --- Markdown ----------------------------------------------------------------------------


def render_markdown(runs: Sequence[TargetRun], *, title: str = "envassay report") -> str:
    """The summary people read: counts, failures (expected vs found), drift, GPU, imports."""
    overall = total(runs)
    verdict = "all checks passed" if overall.ok else "checks FAILED"
    lines = [
        f"## {title}: {verdict}",
        "",
        f"{len(runs)} env target(s): {_counts_words(overall)}.",
        "",
        "| env | target | platform | result | passed | failed | skipped | time |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for run in runs:
        counts = run.counts
        state = "error" if run.error else ("pass" if counts.ok else "FAIL")
        seconds = f"{run.seconds:.1f}s" if run.seconds is not None else ""
        lines.append(
            f"| {_cell(run.env)} | {run.target} | {_cell(run.platform or '')} | {state} "
            f"| {counts.passed} | {counts.failed} | {counts.skipped} | {seconds} |"
        )
    judged = [run for run in runs if run.interpreter]
    if judged:
        lines += ["", "### Interpreters judged", ""]
        lines += [f"- {_cell(r.env)} ({r.target}): {_cell(r.interpreter or '')}" for r in judged]
    errors = [run for run in runs if run.error]
    if errors:
        lines += ["", "### Errors", "", "| env | target | error |", "|---|---|---|"]
        lines += [f"| {_cell(r.env)} | {r.target} | {_cell(r.error or '')} |" for r in errors]
    failures = [(run, result) for run in runs for result in run.failures]
    if failures:
        lines += [
            "",
            "### Failures",
            "",
            "| env | target | check | expected | found |",
            "|---|---|---|---|---|",
        ]
        for run, result in failures:
            expected, found = expected_found(result)
            lines.append(
                f"| {_cell(run.env)} | {run.target} | `{_code(result.name)}` "
                f"| {_cell(expected)} | {_cell(found)} |"
            )
    for run in runs:
        for result in drifted(run):
            lines += [
                "",
                f"### Drift: {_cell(run.env)} · {run.target} (installed ≠ lock)",
                "",
                "| package | manager | locked | installed |",
                "|---|---|---|---|",
            ]
            lines += [f"| {' | '.join(_cell(c) for c in row)} |" for row in drift_rows(result)]
    gpu = [(run, result) for run in runs for result in gpu_results(run)]
    if gpu:
        lines += ["", "### GPU", "", "| env | target | check | result | facts |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {_cell(run.env)} | {run.target} | `{_code(r.name)}` | {r.outcome} "
            f"| {_cell(r.message)} |"
            for run, r in gpu
        ]
    skips = [(run, result) for run in runs for result in run.results if result.outcome == "skipped"]
    if skips:
        lines += [
            "",
            f"<details><summary>Skipped ({len(skips)})</summary>",
            "",
            "| env | target | check | reason |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(run.env)} | {run.target} | `{_code(r.name)}` | {_cell(r.message)} |"
            for run, r in skips
        ]
        lines += ["", "</details>"]
    timed = [run for run in runs if run.imports]
    if timed:
        lines += ["", f"### Slowest imports (top {SLOWEST_IMPORTS} per env and target)"]
        for run in timed:
            lines += [
                "",
                f"<details><summary>{_cell(run.env)} · {run.target}: "
                f"{len(run.imports)} module(s), "
                f"{sum(i.seconds for i in run.imports):.2f}s in all</summary>",
                "",
                "| module | package | seconds | status |",
                "|---|---|---:|---|",
            ]
            lines += [
                f"| `{_code(i.module)}` | {_cell(i.package)} | {i.seconds:.3f} | {i.status} |"
                for i in slowest_imports(run)
            ]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _counts_words(counts: Counts) -> str:
    words = f"{counts.passed} passed, {counts.failed} failed, {counts.skipped} skipped"
    return words + (f", {counts.errors} error(s)" if counts.errors else "")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, bounded."""
    text = visible(text.strip())
    if len(text) > _CELL_LIMIT:
        text = text[: _CELL_LIMIT - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _code(text: str) -> str:
    return visible(text).replace("`", "'").replace("|", "\\|")


# --- JSON ---------------------------------------------------------------------------------


def to_json(runs: Sequence[TargetRun], *, envassay_version: str, created: str) -> dict[str, Any]:
    """The machine-readable report (schema: docs/report-schema.md, version REPORT_VERSION)."""
    overall = total(runs)
    return {
        "report_version": REPORT_VERSION,
        "envassay_version": envassay_version,
        "created": created,
        "ok": overall.ok,
        "summary": overall.to_dict(),
        "runs": [_run_json(run) for run in runs],
    }


def _run_json(run: TargetRun) -> dict[str, Any]:
    checks = []
    for result in run.results:
        expected, found = expected_found(result) if result.outcome == "failed" else (None, None)
        checks.append(
            {
                "name": result.name,
                "kind": result.kind,
                "param": result.param,
                "outcome": result.outcome,
                "message": result.message,
                "expected": expected,
                "found": found,
                "details": _plain(result.details),
            }
        )
    return {
        "env": run.env,
        "spec": run.spec,
        "target": run.target,
        "platform": run.platform,
        "interpreter": run.interpreter,
        "ok": run.counts.ok,
        "summary": run.counts.to_dict(),
        "seconds": None if run.seconds is None else round(run.seconds, 3),
        "error": run.error,
        "checks": checks,
        "drift": [
            {"package": p, "manager": m, "locked": locked, "installed": installed}
            for result in drifted(run)
            for p, m, locked, installed in drift_rows(result)
        ],
        "imports": [
            {
                "module": i.module,
                "package": i.package,
                "status": i.status,
                "seconds": round(i.seconds, 6),
            }
            for i in slowest_imports(run, limit=len(run.imports))
        ],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def dumps(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- terminal -----------------------------------------------------------------------------


def terminal_table(runs: Sequence[TargetRun]) -> list[str]:
    """A fixed-width table for the end of a run: one row per env and target."""
    header = ("env", "target", "platform", "passed", "failed", "skipped", "time", "result")
    rows = [header]
    for run in runs:
        counts = run.counts
        result = "ERROR" if run.error else ("ok" if counts.ok else "FAILED")
        seconds = f"{run.seconds:.1f}s" if run.seconds is not None else "-"
        rows.append(
            (
                visible(run.env),  # names come from specs: no escape reaches the terminal
                visible(run.target),
                run.platform or "-",
                str(counts.passed),
                str(counts.failed),
                str(counts.skipped),
                seconds,
                result,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = {3, 4, 5, 6}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    # Which interpreter and prefix each run judged, below the table.
    lines += [
        f"{run.env} {run.target}: judged {run.interpreter}" for run in runs if run.interpreter
    ]
    return lines
