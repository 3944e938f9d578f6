"""The embedded backend: py-rattler solves and links, in a worker process we control."""

from __future__ import annotations

import json
import sys
from typing import Any

from envassay import command
from envassay.backends.base import CreateRequest, CreateResult, Progress
from envassay.backends.pip_stage import install_pip_section
from envassay.errors import CreateError, SolveError, UserError


class RattlerBackend:
    """Needs nothing but `pip install envassay`."""

    name = "rattler"

    def create(self, request: CreateRequest, progress: Progress) -> CreateResult:
        spec = request.spec
        notes = []
        if spec.has_pip_section and not spec.declares_pip:
            notes.append(
                "added `pip` to the conda dependencies for the pip: section, as conda does"
            )
            progress(notes[-1])
        payload = {
            "channels": list(request.channels),
            "specs": spec.solve_specs,
            "prefix": str(request.prefix),
            "cache_dir": str(request.cache_dir),
            "platform": request.platform,
        }
        result = command.stream(
            [sys.executable, "-m", "envassay.backends.rattler_worker"],
            input=json.dumps(payload),
            on_stderr_line=progress,
        )
        outcome = _parse(result)
        pip_seconds = install_pip_section(spec, request.prefix, progress)
        return CreateResult(
            records=outcome["records"],
            solve_seconds=outcome["solve_seconds"],
            link_seconds=outcome["link_seconds"],
            pip_seconds=pip_seconds,
            notes=notes,
        )


def _parse(result: command.CommandResult) -> dict[str, Any]:
    try:
        outcome = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CreateError(f"the rattler worker died: {result.describe()}") from None
    if outcome.get("ok"):
        return dict(outcome)
    kind, message = outcome.get("kind"), str(outcome.get("message"))
    if kind == "solve":
        raise SolveError(f"cannot solve: {message}")
    if kind == "channel":
        raise UserError(
            message,
            hint="point at a mirror in ~/.rattler/config.toml [mirrors] or use a file:// channel",
        )
    if kind == "config":
        raise UserError(message)
    raise CreateError(f"rattler failed: {message}")
