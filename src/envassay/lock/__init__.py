"""Stage 2, lock: the lock format (format), pip locking (pip), status (status), solving
(solve), diffs (diff) and drift (drift). Locks and the three kinds of drift:

- **stale lock** (spec <-> lock): the spec's content hash is not the lock's (for a
  lock envassay did not write: the lock does not solve the spec,
  ``status.unsolved_reasons``), its channels changed, or a configured platform is
  missing. Found without solving; when the spec's bytes are the ones the lock was made
  from, without importing rattler at all (``status.lock_status``).
- **installed != lock** (lock <-> env): the probe's conda records and pip
  distributions against the lock's entries for the platform
  (``envassay.checks.lock.check_lock_match``).
- **upstream moved** (lock <-> today's solve): the spec solved again today against
  its channels, diffed with the lock (``drift.drift``).

Solving for a lock happens in the rattler worker (op ``solve``), one call per
spec for all its platforms. The current platform is solved with this machine's
virtual packages (as `create` solves it); other platforms with conda-lock's
defaults (``envassay.spec.platforms.virtual_packages_for``), ``CONDA_OVERRIDE_*``
applying. ``__cuda`` comes from the spec, never from this machine's GPU: a spec that
wants CUDA gets ``__cuda`` (``CONDA_OVERRIDE_CUDA`` or ``DEFAULT_CUDA``), one that does
not gets none, so a lock does not depend on who ran it.
"""
