"""Stage 2, lock: the lock format, pip locking, status, solving, diffs and drift."""
