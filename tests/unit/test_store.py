"""The env store with real processes: atomic completion, reuse, kills, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from envassay.store import MARKER, EnvStore, StoreError, StoreKey

KEY = StoreKey("demo", "ab" * 32, "rattler", "linux-64")

# A creator in its own process, so it can be killed for real.
CREATOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from envassay.store import EnvStore, StoreKey
    def build(prefix: Path) -> dict:
        prefix.mkdir()
        for i in range(int(sys.argv[2])):
            (prefix / f"file{i}").write_text("x")
            time.sleep(0.01)
        return {"files": int(sys.argv[2])}
    key = StoreKey("demo", "ab" * 32, "rattler", "linux-64")
    ensured = EnvStore(Path(sys.argv[1])).ensure(key, build, {})
    print("reused" if ensured.reused else "created", flush=True)
    """
)


def spawn(root: Path, files: int = 5) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CREATOR, str(root), str(files)],
        stdout=subprocess.PIPE,
        text=True,
    )


def build_files(prefix: Path) -> dict[str, Any]:
    prefix.mkdir()
    (prefix / "bin").mkdir()
    return {"built": True}


def test_ensure_creates_then_reuses(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)
    first = store.ensure(KEY, build_files, {"spec": "x.yml"})
    assert not first.reused
    assert (first.prefix / MARKER).is_file()
    assert json.loads((first.prefix / MARKER).read_text())["spec"] == "x.yml"
    second = store.ensure(KEY, lambda p: pytest.fail("must not rebuild"), {})
    assert second.reused and second.prefix == first.prefix
    assert len(store.creations()) == 1


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)

    def explode(prefix: Path) -> dict[str, Any]:
        prefix.mkdir()
        (prefix / "partial").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.ensure(KEY, explode, {})
    assert not store.prefix_for(KEY).exists()
    assert store.lookup(KEY) is None


def test_a_folder_envassay_did_not_make_is_never_used_nor_replaced(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)
    foreign = store.prefix_for(KEY)
    foreign.mkdir(parents=True)
    (foreign / "data").write_text("the user's")
    assert store.lookup(KEY) is None
    assert [(e.complete, e.kind) for e in store.entries()] == [(False, "foreign")]
    with pytest.raises(StoreError, match="not made by envassay"):
        store.ensure(KEY, build_files, {})
    assert (foreign / "data").read_text() == "the user's"
    (entry,) = store.entries()
    with pytest.raises(StoreError):
        store.remove(entry)


def test_a_symlink_at_an_entry_is_never_followed(tmp_path: Path) -> None:
    store = EnvStore(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / MARKER).write_text("{}")  # even one that looks complete
    store.prefix_for(KEY).parent.mkdir(parents=True)
    store.prefix_for(KEY).symlink_to(elsewhere)
    assert store.lookup(KEY) is None
    with pytest.raises(StoreError, match="symlink"):
        store.ensure(KEY, build_files, {})
    assert sorted(p.name for p in elsewhere.iterdir()) == [MARKER]


def test_a_long_name_is_shortened_and_kept_apart() -> None:
    first = StoreKey("x" * 300, "ab" * 32, "rattler", "linux-64")
    second = StoreKey("x" * 299 + "y", "ab" * 32, "rattler", "linux-64")
    assert len(str(first)) < 128 and str(first) != str(second)
    assert str(KEY).startswith("demo-")  # short names are as before


def test_an_env_in_use_is_not_removed(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)
    ensured = store.ensure(KEY, build_files, {})
    (entry,) = store.entries()
    assert not store.remove(entry)  # this process holds the lease
    ensured.lease.release()
    assert store.remove(entry)
    assert list(store.entries()) == []


@pytest.mark.parametrize("delay", [0.05, 0.15, 0.3])
def test_kill_9_mid_create_then_create_again(tmp_path: Path, delay: float) -> None:
    proc = spawn(tmp_path, files=200)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    store = EnvStore(tmp_path)
    assert store.lookup(KEY) is None  # never a half-made env
    again = spawn(tmp_path, files=3)
    out, _ = again.communicate(timeout=60)
    assert out.strip() == "created"
    assert sorted(p.name for p in store.prefix_for(KEY).iterdir() if p.name != MARKER) == [
        "file0",
        "file1",
        "file2",
    ]


def test_concurrent_creators_create_once(tmp_path: Path) -> None:
    procs = [spawn(tmp_path, files=30) for _ in range(3)]
    outputs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outputs == ["created", "reused", "reused"]
    assert len(EnvStore(tmp_path).creations()) == 1


def test_remove_entry(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)
    store.ensure(KEY, build_files, {}).lease.release()
    (entry,) = store.entries()
    assert store.remove(entry)
    assert list(store.entries()) == []
    assert os.path.isdir(tmp_path / "envs")


def test_a_symlink_planted_at_a_lease_or_lock_file_is_refused(tmp_path: Path) -> None:
    store = EnvStore(tmp_path / "store")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for folder, name in (("leases", str(KEY)), ("locks", f"{KEY}.lock")):
        (store.root / folder).mkdir(parents=True, exist_ok=True)
        (store.root / folder / name).symlink_to(victim)
        with pytest.raises(StoreError, match="symbolic links"):
            store.ensure(KEY, build_files, {})
        (store.root / folder / name).unlink()
    assert victim.read_text() == "keep"
    assert store.lookup(KEY) is None
