"""What the benchmark scripts share: a project of specs on the local test channel, timing
(best of N), the load average, peak memory, and `envassay` run as a user runs it.

Not a benchmark itself. Each script prints its ratios from one run; absolute times are
this machine's only.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import envassay_testing  # noqa: F401
except ImportError:  # a checkout not installed editable (envassay_testing is never installed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from envassay.command import CommandResult, run

# Five small-to-medium envs over the local test channel (python, numpy, pyyaml and pure
# wheels); all healthy, so a warm run is all passes.
FIVE_ENVS: dict[str, list[str]] = {
    "arrays": ["python=3.11", "numpy", "pyyaml"],
    "web": ["python=3.11", "requests", "idna", "urllib3", "certifi", "charset-normalizer"],
    "soup": ["python=3.11", "beautifulsoup4", "soupsieve", "six"],
    "tools": ["python=3.11", "pip", "wheel", "packaging", "attrs", "typing-extensions"],
    "mixed": ["python=3.11", "numpy", "requests", "attrs", "packaging", "pyyaml", "datatools"],
}


def load() -> str:
    """The load average, to print with every figure: the machine may be shared."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min), {os.cpu_count()} CPU(s)"


def write_project(
    root: Path, envs: Mapping[str, Sequence[str]], channels: Sequence[str], settings: str = ""
) -> list[Path]:
    """``root/pyproject.toml`` and ``root/envs/NAME.yml`` per env; return the spec paths."""
    (root / "envs").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f"[tool.envassay]\n{settings}")
    paths = []
    for name, deps in envs.items():
        lines = [f"name: {name}", f"channels: [{', '.join(channels)}]", "dependencies:"]
        lines += [f'  - "{dep}"' for dep in deps]
        path = root / "envs" / f"{name}.yml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


@dataclass
class Envassay:
    """`python -m envassay ...` in a project, with its own store, as a user runs it."""

    root: Path
    store: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
        env["ENVASSAY_HOME"] = str(self.store)
        return env

    def __call__(self, *args: str | Path, ok: tuple[int, ...] = (0,)) -> CommandResult:
        result = run(
            [sys.executable, "-m", "envassay", *args], env=self.env(), cwd=self.root, timeout=3600
        )
        if result.returncode not in ok:
            sys.exit(f"`envassay {' '.join(map(str, args))}` failed: {result.describe()}")
        return result

    def drop_envs(self) -> None:
        """Forget every created env, keeping the package and repodata caches."""
        shutil.rmtree(self.store / "envs", ignore_errors=True)

    def prefixes(self) -> dict[str, Path]:
        """Env name -> prefix of every complete env in the store."""
        listed = json.loads(self("envs", "list", "--json").stdout)
        return {e["name"]: Path(e["prefix"]) for e in listed if e.get("complete")}

    def report(self, *args: str | Path) -> dict[str, Any]:
        """`envassay check ARGS --report-json F`: the JSON report."""
        out = self.root / "bench-report.json"
        self("check", *args, "--report-json", out)
        return dict(json.loads(out.read_text()))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def best_of(ways: Mapping[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` wall time of each way, round-robin, so that a busy spell on a
    shared machine does not land on one way only."""
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeat):
        for label, way in ways.items():
            best[label] = min(best[label], timed(way))
    return best


def child_peak_mb() -> float:
    """The largest resident set of any child process waited for so far, in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def python_ok(python: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
    result = run([python, *args], env=dict(env) if env else None, timeout=600)
    if not result.ok:
        sys.exit(result.describe())


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary directory for one benchmark run: removed at the end, or kept (and said
    so) with the scripts' --keep."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
