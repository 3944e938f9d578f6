"""pytest plugin: turns envassay's checks into pytest items (filled in by the smoke-suite work)."""
