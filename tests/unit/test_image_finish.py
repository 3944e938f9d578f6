"""What the image build does besides the create, without an engine: the one-stage or
two-stage choice (direct_build), and finish.py (one walk: readable by all, bytecode where
a module has none valid), run for real on a prefix laid out as a create leaves it."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from envassay.spec.config import Config
from envassay.spec.environment import load_spec
from envassay.targets.image import ImageOptions, ImagePlan, direct_build, plan_image

FINISH = Path(__file__).resolve().parents[2] / "src" / "envassay" / "assets" / "finish.py"


def _plan(tmp_path: Path, options: ImageOptions) -> ImagePlan:
    spec = tmp_path / "envs" / "demo.yml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text("name: demo\nchannels: [https://example.invalid/c]\ndependencies: [python]\n")
    return plan_image(load_spec(spec), Config(root=tmp_path), options, "linux-64")


@pytest.mark.parametrize(
    ("options", "secrets", "buildkit", "direct"),
    [
        (ImageOptions("b", "r", "conda"), False, "1", True),
        (ImageOptions("b", "r", "conda"), False, "0", False),  # classic: two stages
        (ImageOptions("b", "r", "conda"), True, "1", False),  # history would hold them
        (ImageOptions("b", "r", "mamba"), False, "1", False),
        (ImageOptions("b", "r", "micromamba"), False, "1", False),
        (ImageOptions("b", "b", "envassay"), False, "1", True),
        (ImageOptions("b", "r", "envassay"), False, "1", True),
    ],
)
def test_one_stage_build_where_it_applies(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    options: ImageOptions,
    secrets: bool,
    buildkit: str,
    direct: bool,
) -> None:
    from envassay.docker import buildkit_cli

    monkeypatch.setenv("ENVASSAY_BUILDKIT", buildkit)
    if buildkit == "1" and buildkit_cli() is None:
        pytest.skip("no docker CLI with BuildKit here")
    assert direct_build(_plan(tmp_path, options), secrets=secrets) is direct


def _prefix(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    prefix = tmp_path / "env"
    site = prefix / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    files = {name: site / f"{name}.py" for name in ("fresh", "none", "stale", "hashed", "bad")}
    for name, path in files.items():
        path.write_text(f"VALUE = {name!r}\n" if name != "bad" else "print 'python 2'\n")
    py_compile.compile(str(files["fresh"]))
    py_compile.compile(str(files["stale"]))
    os.utime(files["stale"], (1, 1))  # the source changed after its pyc was written
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    py_compile.compile(str(files["hashed"]), invalidation_mode=mode)
    meta = prefix / "conda-meta"
    meta.mkdir()
    (meta / "pkg.json").write_text("{}")
    (meta / "pkg.json").chmod(0o600)  # as rattler writes it
    (prefix / "bin").mkdir()
    (prefix / "bin" / "tool").write_text("#!/bin/sh\n")
    (prefix / "bin" / "tool").chmod(0o700)
    (prefix / "private").mkdir(mode=0o700)
    files["meta"], files["tool"], files["private"] = (
        meta / "pkg.json",
        prefix / "bin" / "tool",
        prefix / "private",
    )
    return prefix, files


def test_finish_makes_the_env_readable_and_compiles_only_what_lacks_bytecode(
    tmp_path: Path,
) -> None:
    prefix, files = _prefix(tmp_path)
    pycs = {
        n: Path(importlib.util.cache_from_source(str(p))) for n, p in files.items() if n != "meta"
    }
    before = {n: p.read_bytes() for n, p in pycs.items() if p.is_file()}
    out = subprocess.run(
        [sys.executable, "-I", str(FINISH), str(prefix)], capture_output=True, text=True, check=True
    ).stdout
    # none and stale written (bad cannot compile: quiet, as compileall -q); fresh and the
    # hash-based pyc kept as they were.
    assert "bytecode written for 2 of 3 module(s)" in out, out
    assert pycs["none"].is_file() and not pycs["bad"].exists()
    assert pycs["fresh"].read_bytes() == before["fresh"]
    assert pycs["hashed"].read_bytes() == before["hashed"]
    assert pycs["stale"].read_bytes() != before["stale"]
    import_check = [sys.executable, "-c", "import sys; sys.path[:0] = [sys.argv[1]]; import stale"]
    subprocess.run([*import_check, str(files["stale"].parent)], check=True)
    # a+rX: read for all everywhere; x for all on directories and executables only.
    assert stat.S_IMODE(files["meta"].stat().st_mode) == 0o644
    assert stat.S_IMODE(files["tool"].stat().st_mode) == 0o755
    assert stat.S_IMODE(files["private"].stat().st_mode) == 0o755
    assert stat.S_IMODE(files["fresh"].stat().st_mode) & 0o444 == 0o444
    # A second run finds nothing left to do.
    again = subprocess.run(
        [sys.executable, "-I", str(FINISH), str(prefix)], capture_output=True, text=True, check=True
    ).stdout
    assert "bytecode written for 0 of 1 module(s)" in again, again
