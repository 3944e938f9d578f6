"""What a conda CLI linked, checked after the fact: every recorded path stays in the prefix.

conda, mamba and micromamba extract and link in one transaction that envassay cannot
step into, so their packages cannot be checked before they are linked, as the rattler
backend's are (:func:`envassay.rattler_ops.check_link_paths`). conda 26.7.1 writes a
``paths.json`` entry with ``..`` components outside the prefix (measured here). So
after the tool ran, each ``conda-meta`` record's paths (and the symlinks they are) are
resolved as :mod:`envassay.linkcheck` does: an escape fails the create, naming the
package and the path, and the env is not kept. The write itself has happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from envassay import linkcheck
from envassay.errors import CreateError


def check_linked(prefix: Path, tool: str) -> None:
    """CreateError when a package ``tool`` linked into ``prefix`` wrote outside it."""
    try:
        linkcheck.check(prefix, list(_recorded(prefix)))
    except linkcheck.Escape as escape:
        raise CreateError(
            f"unsafe package linked by {tool}: {escape.package} wrote {escape.path!r} "
            f"{escape.why}; the env is not kept (use the rattler backend, which checks "
            "before linking, or the docker target, for untrusted specs)"
        ) from None


def _recorded(prefix: Path) -> Iterator[linkcheck.Entry]:
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict):
            continue
        paths = data.get("files") or [
            p.get("_path") for p in (data.get("paths_data") or {}).get("paths", [])
        ]
        for path in paths:
            if not isinstance(path, str) or not path:
                continue
            place = os.path.join(prefix, path)
            link = os.readlink(place) if os.path.islink(place) else None
            yield linkcheck.Entry(meta.stem, path, link)
