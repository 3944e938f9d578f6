"""Local base images for container tests, made offline from Debian's archive only.

No registry is reachable where envassay is tested, so `FROM` can only name
images made here. This builds one: ``debootstrap --variant=minbase`` of a
Debian suite, plus ``python3`` and a venv at ``/opt/conda`` (a venv avoids
PEP 668's block on pip, and puts a pip-capable ``python`` first on PATH the way
a miniconda image does), then ``docker import``.

Two caches, keyed by everything that goes into the image: the image itself,
kept in the engine under ``envassay-test/<suite>-python:<key>``, and the
root filesystem tarball under ``<test cache>/baseimage/<key>/rootfs.tar``, so a
fresh engine re-imports in seconds. The tests and ``.ci/run`` share this::

    python -m envassay_testing.baseimage        # prints the image reference
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from envassay.command import run
from envassay.docker import Engine, shared_engine
from envassay.errors import EnvassayError
from envassay.progress import Progress
from envassay_testing.channel import default_cache_dir

# Bump when the recipe changes in a way the key would not show.
RECIPE_VERSION = 1
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
VENV = "/opt/conda"
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
LEGACY_SOURCES = Path("/etc/apt/sources.list")
_TAR_EXCLUDES = (
    "./var/cache/apt/archives/*.deb",
    "./var/cache/apt/*.bin",
    "./var/lib/apt/lists/*",
    "./var/log/*",
    "./tmp/*",
    "./root/.cache",
)


class BaseImageError(EnvassayError):
    """The base image could not be made (no root, no debootstrap, no mirror, a failed step)."""


@dataclass(frozen=True)
class BaseImage:
    """A local base image and how it came to be."""

    ref: str
    how: str  # "engine" (already there), "tarball" (re-imported), "built"
    seconds: float


def recipe() -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "variant": "minbase",
        "packages": list(PACKAGES),
        "venv": VENV,
        "path": PATH,
        "arch": os.uname().machine,
    }


def cache_key() -> str:
    blob = json.dumps(recipe(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def image_ref() -> str:
    return f"envassay-test/{SUITE}-python:{cache_key()}"


def ensure_base_image(
    engine: Engine | None = None,
    cache_dir: Path | None = None,
    progress: Progress = lambda _line: None,
) -> BaseImage:
    """Return the local base image, importing the cached tarball or building it if needed."""
    engine = engine or shared_engine()
    started = time.perf_counter()
    ref = image_ref()
    if engine.image(ref) is not None:
        return BaseImage(ref, "engine", time.perf_counter() - started)
    root = Path(cache_dir or default_cache_dir()).resolve() / "baseimage" / cache_key()
    root.mkdir(parents=True, exist_ok=True)
    tarball = root / "rootfs.tar"
    with FileLock(str(root) + ".lock"):
        if engine.image(ref) is not None:
            return BaseImage(ref, "engine", time.perf_counter() - started)
        how = "tarball"
        if not tarball.is_file():
            progress(f"building the base image rootfs ({SUITE}, minbase + {', '.join(PACKAGES)})")
            _bootstrap(tarball, progress)
            how = "built"
        progress(f"importing {tarball} as {ref}")
        engine.import_rootfs(
            tarball,
            ref,
            changes=[f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'],
        )
    return BaseImage(ref, how, time.perf_counter() - started)


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (never a hard-coded host)."""
    if DEBIAN_SOURCES.is_file():
        for line in DEBIAN_SOURCES.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    if LEGACY_SOURCES.is_file():
        for line in LEGACY_SOURCES.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    raise BaseImageError(
        f"no Debian mirror configured in {DEBIAN_SOURCES} or {LEGACY_SOURCES}",
    )


def _bootstrap(tarball: Path, progress: Progress) -> None:
    if os.geteuid() != 0:
        raise BaseImageError("building the base image needs root (debootstrap and chroot)")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BaseImageError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=tarball.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        steps: list[tuple[str, list[str]]] = [
            (
                "debootstrap",
                [debootstrap, "--variant=minbase", SUITE, str(rootfs), mirror],
            ),
            (
                "apt-get install",
                [
                    "chroot",
                    str(rootfs),
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "-o",
                    "Dpkg::Use-Pty=0",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    *PACKAGES,
                ],
            ),
            ("venv", ["chroot", str(rootfs), "python3", "-m", "venv", VENV]),
            ("apt-get clean", ["chroot", str(rootfs), "apt-get", "clean"]),
        ]
        for name, argv in steps:
            began = time.perf_counter()
            result = run(argv, timeout=900)
            if not result.ok:
                raise BaseImageError(f"base image step `{name}` failed: {result.describe()}")
            progress(f"{name}: {time.perf_counter() - began:.1f}s")
        partial = tarball.with_suffix(".tar.part")
        excludes = [f"--exclude={pattern}" for pattern in _TAR_EXCLUDES]
        packed = run(
            ["tar", "--numeric-owner", "-C", rootfs, *excludes, "-cf", partial, "."],
            timeout=600,
        )
        if not packed.ok:
            raise BaseImageError(f"packing the rootfs failed: {packed.describe()}")
        os.replace(partial, tarball)


def main(argv: list[str]) -> int:
    if argv not in ([], ["ensure"]):
        print("usage: python -m envassay_testing.baseimage [ensure]", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(f"baseimage: {line}", file=sys.stderr, flush=True)

    try:
        image = ensure_base_image(progress=say)
    except EnvassayError as exc:
        print(f"baseimage: error: {exc}", file=sys.stderr)
        return 1
    say(f"{image.ref} ready ({image.how}, {image.seconds:.1f}s)")
    print(image.ref)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
