"""The store owns its paths: the layout names every path under ENVASSAY_HOME (a scan of the
sources finds no other module joining one by hand), one build-once rule (real processes
racing for it), the image records, and the inventory `envassay envs` lists and prunes."""

from __future__ import annotations

import ast
import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from envassay.store import EnvStore, StoreLayout
from envassay.store.images import ImageRecord, builds, forget, image_records, record_build
from envassay.store.inventory import (
    build_logs,
    builders_running,
    caches,
    old_logs,
    remove_cache,
    remove_logs,
    tree_size,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "envassay"
LAYOUT = SRC / "store_layout.py"


def layout_names() -> set[str]:
    """The last component of every path the layout names (for a root and cache of its own)."""
    layout = StoreLayout(Path("/R"))
    paths = [
        layout.envs,
        layout.owners,
        layout.leases,
        layout.locks,
        layout.created_log,
        layout.images_log,
        layout.logs,
        layout.cache.root,
        *layout.cache.areas().values(),
    ]
    return {p.name for p in paths}


def _text(node: ast.expr) -> str | None:
    """A string constant, or an f-string with ``{}`` for its fields."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _joined(node: ast.AST) -> list[ast.expr]:
    """The parts a node joins onto a path: ``a / "x"``, ``a.joinpath("x")``, ``join(a, "x")``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return [node.right]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "joinpath":
            return list(node.args)
        if node.func.attr == "join" and len(node.args) > 1:
            return list(node.args[1:])
    return []


def store_like(text: str, names: set[str]) -> bool:
    return (
        text in names
        or text.endswith((".jsonl", "-pkgs"))
        or (text.startswith("build-") and text.endswith(".log"))
        or text.startswith(("image-", "envassay-context-"))
    )


# Joins of a layout name that are not under ENVASSAY_HOME, each with why.
NOT_THE_STORE = {
    # conda's own `cache/` folder inside a conda package cache (its repodata records).
    ("create/backends/conda_cache.py", "cache"),
    # the wheels folder inside an image's build context.
    ("targets/image/context.py", "wheels"),
}


def hand_made_joins() -> list[str]:
    names = layout_names()
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if path == LAYOUT or rel.startswith("testing/"):  # test support: its own cache dir
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for part in _joined(node):
                text = _text(part)
                if (
                    text is not None
                    and store_like(text, names)
                    and (rel, text) not in (NOT_THE_STORE)
                ):
                    found.append(f"{rel}:{node.lineno}: joins {text!r}")
    return found


def test_no_module_but_the_layout_joins_a_path_under_the_store() -> None:
    assert hand_made_joins() == []


def test_the_scan_finds_a_hand_made_join(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same scan over a copy with one store path written by hand, as image.py once did.
    copy = tmp_path / "envassay"
    (copy / "run").mkdir(parents=True)
    (copy / "run" / "bad.py").write_text('def f(root):\n    return root / "logs" / "x.log"\n')
    (copy / "run" / "also.py").write_text('def g(r):\n    return r.joinpath(f"image-{r}.lock")\n')
    monkeypatch.setattr(sys.modules[__name__], "SRC", copy)
    assert hand_made_joins() == [
        "run/also.py:2: joins 'image-{}.lock'",
        "run/bad.py:2: joins 'logs'",
    ]


def test_the_store_root_is_only_read_to_make_the_store() -> None:
    """`Config.store_path()` is handed straight to the store (or an image build, which asks
    the layout); ENVASSAY_HOME is read only where the root is resolved."""
    allowed = {"EnvStore", "ensure_image", "at"}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for arg in node.args:
                    if _calls(arg, "store_path"):
                        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
                        name = node.func.id if isinstance(node.func, ast.Name) else name
                        assert name in allowed, f"{rel}:{node.lineno}: store_path() to {name}"
            if isinstance(node, ast.Attribute) and _calls(node.value, "store_path"):
                raise AssertionError(f"{rel}:{node.lineno}: a path made from store_path()")
            if isinstance(node, ast.BinOp) and _calls(node.left, "store_path"):
                raise AssertionError(f"{rel}:{node.lineno}: a path joined to store_path()")
        strings = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and "\n" not in n.value
        ]
        if any(s == "ENVASSAY_HOME" for s in strings):
            assert rel == "spec/config.py", f"{rel} reads ENVASSAY_HOME"


def _calls(node: ast.AST, method: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
    )


def test_the_layout_keeps_the_paths_stores_already_have() -> None:
    # Existing stores keep working: the layout names what earlier versions wrote by hand.
    layout = StoreLayout(Path("/R"))
    assert layout.prefix("k") == Path("/R/envs/k")
    assert layout.owner("k") == Path("/R/owners/k.json")
    assert layout.lease("k") == Path("/R/leases/k")
    assert layout.lock("k") == Path("/R/locks/k.lock")
    assert layout.lock(StoreLayout.image_key("ab" * 32)) == Path(
        "/R/locks/image-" + "ab" * 8 + ".lock"
    )
    assert layout.build_log("good", "cd" * 32) == Path("/R/logs/build-good-" + "cd" * 8 + ".log")
    assert (layout.created_log, layout.images_log) == (
        Path("/R/created.jsonl"),
        Path("/R/images.jsonl"),
    )
    cache = layout.cache
    assert cache.root == Path("/R/cache")
    assert (cache.pkgs, cache.repodata, cache.pyc) == tuple(
        Path("/R/cache") / n for n in ("pkgs", "repodata", "pyc")
    )
    assert cache.wheels == Path("/R/cache/wheels")
    assert cache.image_facts == Path("/R/cache/image-facts")
    assert cache.conda_pkgs("mamba") == Path("/R/cache/mamba-pkgs")


# --------------------------------------------------------------------------- build once

RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from envassay.store import build_once
    out = Path(sys.argv[1])
    def build():
        with open(out.with_suffix(".builds"), "a") as log:
            log.write("built\\n")
        time.sleep(0.5)  # long enough for the others to queue on the lock
        out.write_text("done")
        return "built"
    print(build_once(out.with_suffix(".lock"), lambda: "found" if out.exists() else None, build))
    """
)


def test_build_once_builds_once_across_processes(tmp_path: Path) -> None:
    target = tmp_path / "artefact"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(target)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    said = sorted(p.communicate(timeout=120)[0].strip() for p in racers)
    assert all(p.returncode == 0 for p in racers)
    assert said == ["built", "found", "found", "found"]
    assert (tmp_path / "artefact.builds").read_text() == "built\n"


def test_build_once_takes_no_lock_when_the_artefact_is_there(tmp_path: Path) -> None:
    from envassay.store import build_once

    lock = tmp_path / "locks" / "x.lock"
    assert build_once(lock, lambda: "there", lambda: "built") == "there"
    assert not lock.parent.exists()


# --------------------------------------------------------------------------- images


def record(ref: str, project: str = "/p", id_: str = "sha256:" + "1" * 64) -> ImageRecord:
    return ImageRecord(ref, id_, f"{project}/envs/x.yml", project, 1.5, time.time())


def test_image_records_append_read_latest_and_forget(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path)
    record_build(layout, record("envassay/a:1"))
    record_build(layout, record("envassay/b:2"))
    with layout.images_log.open("a") as log:  # an older record (no id, no project), a torn line
        log.write(json.dumps({"ref": "envassay/c:3", "spec": "/q/x.yml", "seconds": 2, "at": 1}))
        log.write('\n{"ref": "envassay/d')
    record_build(layout, record("envassay/a:1", id_="sha256:" + "2" * 64))
    assert len(builds(layout)) == 4
    latest = {r.ref: r for r in image_records(layout)}
    assert sorted(latest) == ["envassay/a:1", "envassay/b:2", "envassay/c:3"]
    assert latest["envassay/a:1"].id == "sha256:" + "2" * 64
    assert latest["envassay/c:3"].project == "" and latest["envassay/c:3"].id == ""
    forget(layout, {"envassay/a:1"})
    assert [r.ref for r in image_records(layout)] == ["envassay/b:2", "envassay/c:3"]


def test_a_symlinked_image_record_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"ref": "envassay/x:1"}) + "\n")
    layout = StoreLayout(tmp_path / "store")
    layout.root.mkdir()
    layout.images_log.symlink_to(elsewhere)
    assert image_records(layout) == []
    forget(layout, {"envassay/x:1"})
    assert elsewhere.read_text() == json.dumps({"ref": "envassay/x:1"}) + "\n"


# --------------------------------------------------------------------------- inventory


def test_sizes_do_not_follow_symlinks(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "blob").write_bytes(b"x" * 100_000)
    area = tmp_path / "area"
    area.mkdir()
    (area / "f").write_bytes(b"y" * 1000)
    (area / "link").symlink_to(big)
    assert 1000 <= tree_size(area) < 100_000
    assert tree_size(tmp_path / "nothing") == 0


def test_logs_pruned_by_age_and_never_through_a_symlink(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path / "store")
    layout.logs.mkdir(parents=True)
    old, new = layout.build_log("a", "1" * 16), layout.build_log("b", "2" * 16)
    for log in (old, new):
        log.write_text("log")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    victim = tmp_path / "victim.log"
    victim.write_text("keep")
    os.utime(victim, (time.time() - 9 * 86400,) * 2)
    (layout.logs / "build-c-3333333333333333.log").symlink_to(victim)
    (layout.logs / "notes.txt").write_text("not a build log")
    assert [i.name for i in build_logs(layout)] == [old.name, new.name]
    assert remove_logs(old_logs(layout, 2)) == 1
    assert not old.exists() and new.exists() and victim.read_text() == "keep"
    assert remove_logs(old_logs(layout, 0)) == 1
    assert (layout.logs / "notes.txt").exists()


def test_caches_listed_and_removed_a_symlinked_one_refused(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path / "store")
    cache = layout.cache
    (cache.pkgs / "pkg").mkdir(parents=True)
    (cache.pkgs / "pkg" / "file").write_text("x" * 5000)
    cache.conda_pkgs("conda").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    cache.pyc.symlink_to(outside)
    listed = {i.name: i for i in caches(layout)}
    assert sorted(listed) == ["conda-pkgs", "pkgs", "pyc"]
    assert listed["pkgs"].size >= 5000
    assert remove_cache(layout, listed["pkgs"]) and not cache.pkgs.exists()
    assert not remove_cache(layout, listed["pyc"])
    assert (outside / "keep").read_text() == "keep"
    assert [p.name for p in cache.root.iterdir() if p.name.startswith(".trash-")] == []


def test_a_builder_holding_its_lock_is_seen(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path)
    layout.locks.mkdir()
    lock = layout.lock("image-" + "1" * 16)
    lock.write_text("")
    assert builders_running(layout) == []
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from filelock import FileLock\n"
            "with FileLock(sys.argv[1]):\n    print('held', flush=True); sys.stdin.read()",
            str(lock),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert builders_running(layout) == ["image-" + "1" * 16]
    finally:
        holder.communicate("", timeout=60)
    assert builders_running(layout) == []


def test_an_exclusive_hold_fails_while_a_lease_is_held(tmp_path: Path) -> None:
    store = EnvStore(tmp_path)
    key = StoreLayout.image_key("ab" * 32)
    lease = store.lease(key)
    with store.exclusive(key) as free:
        assert not free
    lease.release()
    with store.exclusive(key) as free:
        assert free
        fd = os.open(store.layout.lease(key), os.O_RDONLY)
        try:  # a check's shared lease now waits: nobody uses what is being removed
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_contexts_of_killed_builds_removed_once_old(tmp_path: Path) -> None:
    from envassay.store.inventory import remove_stale_contexts

    layout = StoreLayout(tmp_path / "store")
    old, young = layout.contexts / "envassay-context-old", layout.contexts / "envassay-context-new"
    for context in (old, young):
        (context / "env").mkdir(parents=True)
    os.utime(old, (time.time() - 7200,) * 2)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.utime(outside, (time.time() - 7200,) * 2)
    (layout.contexts / "envassay-context-link").symlink_to(outside)
    unpacking = layout.cache.pkgs / ".envassay-unpack-abc"  # a create killed mid-unpack
    (unpacking / "info").mkdir(parents=True)
    os.utime(unpacking, (time.time() - 7200,) * 2)
    assert remove_stale_contexts(layout) == 2
    assert not old.exists() and young.is_dir() and outside.is_dir()
    assert not unpacking.exists()


def test_a_cut_short_creation_record_costs_only_itself(tmp_path: Path) -> None:
    from envassay.store import StoreKey

    store = EnvStore(tmp_path)
    store.layout.created_log.write_text('{"key": "cut-sh')  # a kill mid-write
    key = StoreKey("demo", "ab" * 32, "rattler", "linux-64")
    store.ensure(key, lambda prefix: prefix.mkdir() or {}, {}).lease.release()
    assert [c["key"] for c in store.creations()] == [str(key)]
