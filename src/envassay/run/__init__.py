"""The run: one env's assay, the session over many, the pytest plugin, reports and
the commands' orchestration."""
