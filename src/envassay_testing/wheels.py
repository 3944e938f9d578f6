"""Tiny pure-Python wheels made by hand, for `pip:` sections that must install offline."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str],
    requires: Sequence[str] = (),
    entry_points: str = "",
) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` into ``dest``; ``files`` are module paths,
    ``entry_points`` the text of its entry_points.txt (none when empty)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
        + [f"Requires-Dist: {req}\n" for req in requires]
    )
    members = {
        **files,
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: envassay\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/top_level.txt": "".join(
            sorted({p.split("/")[0].removesuffix(".py") + "\n" for p in files})
        ),
    }
    if entry_points:
        members[f"{info}/entry_points.txt"] = entry_points
    record = [
        f"{path},sha256={_digest(data)},{len(data.encode())}" for path, data in members.items()
    ]
    members[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in members.items():
            archive.writestr(path, data)
    return wheel


def _digest(data: str) -> str:
    raw = hashlib.sha256(data.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
