"""Files envassay ships for container images: the Dockerfile, its builder script, hygiene probe."""
