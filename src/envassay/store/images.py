"""The store's record of the images envassay built (``images.jsonl``, append-only).

A line is written when a build finishes: the tag, the image id the engine gave it, the
spec and project it was built for, how long it took. `envassay envs` lists them and
`envs prune --images` removes from the engine only images recorded here (and still
carrying the same id and envassay's labels): never one envassay did not build.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envassay.store import journal
from envassay.store.envs import StoreError
from envassay.store_layout import StoreLayout


@dataclass(frozen=True)
class ImageRecord:
    """One build as recorded (``id`` and ``project`` are empty in older records)."""

    ref: str
    id: str
    spec: str
    project: str
    seconds: float
    at: float

    @classmethod
    def built(
        cls, ref: str, image_id: str, spec: Path, project: Path | None, seconds: float
    ) -> ImageRecord:
        """The record of a build that just finished."""
        where = str(project) if project is not None else ""
        return cls(ref, image_id, str(spec), where, round(seconds, 3), time.time())

    @classmethod
    def from_line(cls, data: dict[str, Any]) -> ImageRecord | None:
        ref = data.get("ref")
        if not isinstance(ref, str) or not ref:
            return None
        return cls(
            ref=ref,
            id=str(data.get("id") or ""),
            spec=str(data.get("spec") or ""),
            project=str(data.get("project") or ""),
            seconds=float(data.get("seconds") or 0.0),
            at=float(data.get("at") or 0.0),
        )


def record_build(layout: StoreLayout, record: ImageRecord) -> None:
    """Append one build (a record cut short before it costs only itself)."""
    try:
        journal.append(layout.images_log, record.__dict__)
    except OSError as exc:
        raise StoreError(
            f"cannot record the image build: {exc.strerror}",
            where=layout.images_log,
            hint="remove it if it is a symlink; else set ENVASSAY_HOME to a writable folder",
        ) from None


def builds(layout: StoreLayout) -> list[dict[str, Any]]:
    """Every image build the store recorded (reuses record nothing), as written."""
    return journal.read(layout.images_log)


def image_records(layout: StoreLayout) -> list[ImageRecord]:
    """The latest record of each tag (a tag rebuilt after a prune is recorded again)."""
    latest: dict[str, ImageRecord] = {}
    for data in builds(layout):
        if (record := ImageRecord.from_line(data)) is not None:
            latest[record.ref] = record
    return sorted(latest.values(), key=lambda r: r.ref)


def forget(layout: StoreLayout, refs: set[str]) -> None:
    """Drop the records of ``refs`` (their images were removed), rewriting the file whole."""
    if not refs or not layout.images_log.is_file() or layout.images_log.is_symlink():
        return
    kept = [d for d in builds(layout) if d.get("ref") not in refs]
    tmp = layout.images_log.with_name(f"images.jsonl.{os.getpid()}.{time.time_ns()}.tmp")
    tmp.write_text("".join(json.dumps(d) + "\n" for d in kept), encoding="utf-8")
    os.replace(tmp, layout.images_log)
