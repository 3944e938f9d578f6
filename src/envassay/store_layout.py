"""The layout of the store (``ENVASSAY_HOME``): every path under it, named once.

Nothing else joins a path under the store's root: the env store, the image builds, the
checks' kept facts, the bytecode, wheel and package caches all ask here (a test scans
the sources for hand-made joins). It is paths only (no I/O), at the bottom of the layers,
so that the rattler worker, which sees only the cache folder it is handed, names its
caches here too.

::

    ROOT/envs/KEY                 an env prefix            (store.EnvStore)
    ROOT/owners/KEY.json          who made it, for whom    (store.EnvStore)
    ROOT/leases/KEY               in use while flock'd     (store.EnvStore; images too)
    ROOT/locks/KEY.lock           one builder at a time    (store.build_once)
    ROOT/created.jsonl            every env created        (store.EnvStore)
    ROOT/images.jsonl             every image built        (store.images)
    ROOT/logs/build-*.log         image build logs         (targets/image/build.py)
    ROOT/envassay-context-*       an image's build context, while it builds
    ROOT/cache/...                caches: safe to delete   (CacheLayout)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONTEXT_PREFIX = "envassay-context-"
# A package being unpacked into the package cache (package_fetch.py); renamed when done.
UNPACK_PREFIX = ".envassay-unpack-"
IMAGE_PREFIX = "image-"  # an image's lock and lease: ``image-DIGEST16``


@dataclass(frozen=True)
class CacheLayout:
    """``ROOT/cache``: what is kept only to go faster. Each area may be deleted whole."""

    root: Path

    @property
    def repodata(self) -> Path:
        """rattler's repodata cache (the worker's gateway)."""
        return self.root / "repodata"

    @property
    def pkgs(self) -> Path:
        """rattler's package cache (an env's files are hard links into it)."""
        return self.root / "pkgs"

    @property
    def link_checked(self) -> Path:
        """A package archive's listing, once checked to stay inside a prefix."""
        return self.root / "link-checked"

    @property
    def link_check(self) -> Path:
        """Scratch space for the link check's unpacking."""
        return self.root / "link-check"

    @property
    def pyc(self) -> Path:
        """Compiled bytecode per (package, interpreter)."""
        return self.root / "pyc"

    @property
    def wheels(self) -> Path:
        """envassay's and its dependencies' wheels, repacked for image builds."""
        return self.root / "wheels"

    @property
    def image_facts(self) -> Path:
        """What the image checks found in an image, by image id."""
        return self.root / "image-facts"

    def conda_pkgs(self, tool: str) -> Path:
        """A conda CLI's package cache for runs from credentialed channels."""
        return self.root / f"{tool}-pkgs"

    def areas(self) -> dict[str, Path]:
        """Every area by name (a conda CLI's, for each ``*-pkgs`` folder present)."""
        named = {
            "repodata": self.repodata,
            "pkgs": self.pkgs,
            "link-checked": self.link_checked,
            "link-check": self.link_check,
            "pyc": self.pyc,
            "wheels": self.wheels,
            "image-facts": self.image_facts,
        }
        if self.root.is_dir():
            found = sorted(p for p in self.root.glob("*-pkgs") if p.name not in named)
            named.update((p.name, p) for p in found)
        return named


@dataclass(frozen=True)
class StoreLayout:
    """Every path under the store's root."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> StoreLayout:
        """The layout of the store at ``root`` (made absolute, ``~`` expanded)."""
        return cls(root.expanduser().resolve())

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    def prefix(self, key: str) -> Path:
        return self.envs / key

    @property
    def owners(self) -> Path:
        return self.root / "owners"

    def owner(self, key: str) -> Path:
        return self.owners / f"{key}.json"

    @property
    def leases(self) -> Path:
        return self.root / "leases"

    def lease(self, key: str) -> Path:
        return self.leases / key

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def lock(self, key: str) -> Path:
        return self.locks / f"{key}.lock"

    @property
    def created_log(self) -> Path:
        """The append-only record of every env created."""
        return self.root / "created.jsonl"

    @property
    def images_log(self) -> Path:
        """The append-only record of every image built."""
        return self.root / "images.jsonl"

    @staticmethod
    def image_key(digest: str) -> str:
        """The name an image's lock and lease go by."""
        return f"{IMAGE_PREFIX}{digest[:16]}"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def build_log(self, label: str, digest: str) -> Path:
        """An image build's log (``label``: the image's repository name)."""
        return self.logs / f"build-{label}-{digest[:16]}.log"

    @property
    def contexts(self) -> Path:
        """Where build contexts are made (``envassay-context-*``, removed after the build)."""
        return self.root

    @property
    def cache(self) -> CacheLayout:
        return CacheLayout(self.root / "cache")
