"""conda's package cache for envassay's runs from credentialed channels: inside the store,
and cleaned of credentials after each create.

conda records each package's URL as it fetched it, credentials included, in its package
cache (``urls.txt``, ``<pkg>/info/repodata_record.json``) and its repodata cache
(``cache/*.json``); a cache shared with the user's own conda runs would keep a private
channel's secret there. So a create whose channels carry credentials gets
``CONDA_PKGS_DIRS`` in envassay's store, and those records are rewritten with clean URLs
(no userinfo, no ``/t/TOKEN/``) when the tool is done, as is the env's own
``conda-meta``. Channels without credentials keep the tool's configured cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from envassay import redact
from envassay.store_layout import CacheLayout

PKGS_VARIABLE = "CONDA_PKGS_DIRS"


def private_pkgs_dir(cache_dir: Path, tool: str, channels: Sequence[str]) -> Path | None:
    """The store's package cache for ``tool`` when a channel carries credentials, else None."""
    if not any(redact.has_credentials(url) for url in channels):
        return None
    return CacheLayout(cache_dir).conda_pkgs(tool)


def _records(pkgs_dir: Path) -> Iterator[Path]:
    """The files of a conda package cache that record URLs (not the packages' payload)."""
    yield from (pkgs_dir / name for name in ("urls.txt", "urls"))
    yield from pkgs_dir.glob("*/info/repodata_record.json")
    cache = pkgs_dir / "cache"
    if cache.is_dir():
        yield from (p for p in cache.rglob("*") if p.is_file())


def scrub(pkgs_dir: Path) -> int:
    """Rewrite every URL record under ``pkgs_dir`` without credentials; how many changed."""
    return sum(_scrub_file(path) for path in _records(pkgs_dir))


def scrub_prefix(prefix: Path) -> int:
    """The env's ``conda-meta`` records (``*.json``, ``history``) without credentials."""
    meta = prefix / "conda-meta"
    return sum(_scrub_file(path) for path in [*meta.glob("*.json"), meta / "history"])


def _scrub_file(path: Path) -> bool:
    with contextlib.suppress(OSError):
        if not path.is_file() or path.is_symlink():
            return False
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = redact.mask(redact.strip_credentials(text))
        if cleaned != text:
            tmp = path.with_name(path.name + ".envassay-tmp")
            tmp.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
            tmp.replace(path)
            return True
    return False
