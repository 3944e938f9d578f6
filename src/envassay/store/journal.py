"""The store's append-only records (``created.jsonl``, ``images.jsonl``): one JSON object a
line, appended by concurrent writers, read back whatever a crash left.

One short O_APPEND write per line keeps writers from interleaving. A last line cut short
(a full disk, a kill) is ended before the next is written, so it costs only itself; the
reader skips it. Neither side goes through a symlink.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envassay import redact


def append(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` (masked: no secret reaches the store). OSError as the OS says."""
    line = redact.mask(json.dumps(record, default=str)) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short: not this one's
            line = "\n" + line
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    """Every whole record; none when the file is missing or a symlink."""
    if path.is_symlink() or not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found
