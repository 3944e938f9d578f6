"""The embedded backend: py-rattler solves and links, in a worker process we control."""

from __future__ import annotations

from envassay import rattler_protocol as protocol
from envassay.create.backends.base import CreateRequest, CreateResult
from envassay.create.backends.bytecode import compile_bytecode
from envassay.create.backends.pip_stage import install_locked_pip, install_pip_section
from envassay.errors import SolveError
from envassay.lock.format import LockedEnv
from envassay.progress import Progress
from envassay.rattler_client import run_worker
from envassay.spec.resolve import FLEXIBLE_HINT


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
        if request.locked is not None:
            return self._create_locked(request, request.locked, progress, notes)
        job = protocol.CreateRequest(
            channels=list(request.channels),
            specs=list(spec.solve_specs),
            prefix=str(request.prefix),
            cache_dir=str(request.cache_dir),
            platform=request.platform,
            priority=request.priority,
        )
        try:
            outcome = run_worker(job, progress)
        except SolveError as exc:
            if request.priority == "flexible" and len(request.channels) > 1:
                exc.hint = FLEXIBLE_HINT
                exc.args = (exc.render(),)
            raise
        compile_bytecode(request.prefix, progress, request.cache_dir)
        pip_seconds = install_pip_section(spec, request.prefix, progress)
        return CreateResult(
            records=[r.as_dict() for r in outcome.records],
            solve_seconds=outcome.solve_seconds,
            link_seconds=outcome.link_seconds,
            pip_seconds=pip_seconds,
            notes=notes,
        )

    def _create_locked(
        self, request: CreateRequest, locked: LockedEnv, progress: Progress, notes: list[str]
    ) -> CreateResult:
        """Link the lock's records for this platform, then pip-install its pinned entries."""
        spec = request.spec
        progress(f"creating from {locked.lock_path.name} ({locked.platform}): no solve")
        job = protocol.InstallRequest(
            records=[
                protocol.Package(
                    name=p.name,
                    version=p.version,
                    build=p.build,
                    channel=p.channel,
                    url=p.url,
                    subdir=p.subdir,
                    depends=list(p.depends),
                    md5=p.md5,
                    sha256=p.sha256,
                    filename=p.filename,
                )
                for p in locked.conda
            ],
            specs=list(spec.solve_specs),
            channels=list(request.channels),  # their credentials, for the downloads
            prefix=str(request.prefix),
            cache_dir=str(request.cache_dir),
        )
        outcome = run_worker(job, progress)
        compile_bytecode(request.prefix, progress, request.cache_dir)
        if locked.pip_resolved:
            pip_seconds = install_locked_pip(spec, locked.pip, request.prefix, progress)
        else:
            notes.append(
                f"the lock's pip: part could not be resolved for {locked.platform}; "
                "installed the pip: section from the spec instead"
            )
            progress(notes[-1])
            pip_seconds = install_pip_section(spec, request.prefix, progress)
        return CreateResult(
            records=[r.as_dict() for r in outcome.records],
            solve_seconds=0.0,
            link_seconds=outcome.link_seconds,
            pip_seconds=pip_seconds,
            notes=notes,
        )
