"""Stage 3, create: an env from a spec or its lock, by a backend, in the store."""
