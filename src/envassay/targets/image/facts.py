"""The facts the image checks judge, gathered in the image: a plain ``docker run IMAGE
python -c`` and the root filesystem scan (``assets/imagefacts.py``), side by side; kept
in the store by image id (:func:`_kept_facts_path`) and read back on later checks."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envassay.docker import Engine
from envassay.imagedata import LABEL_PREFIX, ImageFacts, ImageInfo, PlainRun
from envassay.targets import first_found
from envassay.targets.image.plan import _asset, _sha256

_PLAIN_SCRIPT = (
    "import json, os, sys, getpass; "
    "print(json.dumps({'uid': os.getuid(), 'user': getpass.getuser(), "
    "'home': os.path.expanduser('~'), 'prefix': sys.prefix, 'executable': sys.executable}))"
)


def env_prefix(info: ImageInfo) -> str:
    """Where the image's env lives: envassay's label, else CONDA_PREFIX, else ''."""
    return info.labels.get(LABEL_PREFIX) or info.env.get("CONDA_PREFIX", "")


def image_pythons(info: ImageInfo) -> tuple[str, ...]:
    """The interpreters to judge, first found wins: the env's, else the image's ``python``
    on its PATH (what its users run), else ``python3`` (Debian's python3 package installs
    no ``python``; a venv, a conda env or a python image has both)."""
    prefix = env_prefix(info)
    return (f"{prefix}/bin/python",) if prefix else ("python", "python3")


def gather_facts(
    engine: Engine, ref: str, info: ImageInfo, timeout: float = 120, *, keep: Path | None = None
) -> ImageFacts:
    """Run the plain `python -c` and the root scan side by side; both containers are removed.

    With ``keep`` (a directory), the facts of an image whose runs both succeeded are kept
    there under its id, and read back instead of running them again: an image id names
    its filesystem and its config, and the scripts are part of the key. Failures are
    never kept (a broken image, or an engine fault, is judged afresh each time).
    """
    path = _kept_facts_path(keep, info) if keep is not None else None
    if path is not None and (kept := _read_kept_facts(path)) is not None:
        return ImageFacts(ref, info, env_prefix(info), *kept)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        plain_future = pool.submit(_plain_run, engine, ref, timeout)
        scan_future = pool.submit(_scan, engine, ref, info, timeout)
        plain = plain_future.result()
        scan, scan_error = scan_future.result()
    if path is not None and plain.ok and scan is not None:
        _keep_facts(path, plain, scan)
    return ImageFacts(ref, info, env_prefix(info), plain, scan, scan_error)


# Bumped when what is kept changes meaning (PlainRun's fields, how the scan is read).
_KEPT_FACTS_FORMAT = 1


def _scan_request(info: ImageInfo) -> str:
    return json.dumps({"user": info.user, "home": info.env.get("HOME", "")})


def _kept_facts_path(keep: Path, info: ImageInfo) -> Path | None:
    """Where the facts of ``info``'s image are kept: named by the image id, the scripts
    that gather them and their arguments. None for an image without an id."""
    if not info.id:
        return None
    key = {
        "format": _KEPT_FACTS_FORMAT,
        "image": info.id,
        "plain": _PLAIN_SCRIPT,
        "scan": _sha256(_asset("imagefacts.py").encode()),
        "request": _scan_request(info),
        "python": list(image_pythons(info)),
    }
    return keep / f"{_sha256(json.dumps(key, sort_keys=True).encode())[:32]}.json"


def _read_kept_facts(path: Path) -> tuple[PlainRun, dict[str, Any]] | None:
    """The kept (plain run, scan) at ``path``; None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        plain = PlainRun(**data["plain"])
        scan = data["scan"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not plain.ok or not isinstance(scan, dict):
        return None
    return plain, scan


def _keep_facts(path: Path, plain: PlainRun, scan: Mapping[str, Any]) -> None:
    """Write the facts whole (a temporary file renamed over the path); a store that cannot
    be written only means the next check gathers them again."""
    data = json.dumps({"plain": dataclasses.asdict(plain), "scan": dict(scan)})
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(data)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _plain_run(engine: Engine, ref: str, timeout: float) -> PlainRun:
    result = engine.run(ref, ["python", "-c", _PLAIN_SCRIPT], timeout=timeout)
    if not result.ok:
        return PlainRun(False, error=result.describe())
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return PlainRun(False, error=f"unexpected output: {result.stdout[-300:]!r}")
    return PlainRun(
        True,
        uid=int(data["uid"]),
        user=str(data["user"]),
        home=str(data["home"]),
        prefix=str(data["prefix"]),
        executable=str(data["executable"]),
    )


def _scan(
    engine: Engine, ref: str, info: ImageInfo, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """The filesystem scan, as root (to see /root) with the env's python as entrypoint."""
    _, result = first_found(
        lambda python: engine.run(
            ref,
            ["-", _scan_request(info)],
            stdin=_asset("imagefacts.py"),
            user="0",
            entrypoint=[python],
            timeout=timeout,
        ),
        image_pythons(info),
    )
    if not result.ok:
        return None, result.describe()
    try:
        return dict(json.loads(result.stdout)), ""
    except json.JSONDecodeError:
        return None, f"unexpected output: {result.stdout[-300:]!r}"
