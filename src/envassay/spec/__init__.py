"""Stage 1, parse: environment.yml (environment), `[tool.envassay]` (config), platform rules
and what a spec means under the config."""
