"""What the env sessions of a noxfile pass to pytest: their posargs, envassay's short forms
spelled out (`nox -s envs -- --backend micromamba` -> `--envassay-backend micromamba`;
`-j N`, `--report-md P`, `--report-json P`, `--gpu require|skip|auto` likewise)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from envassay.run.options import RUN_OPTIONS

# Set while envassay runs pytest, so only the plugins named with -p load: some installed
# plugins cost seconds at start-up or at session end (hypothesis: 2.7 s measured here),
# which would dominate a warm run; a user who needs one adds it back with `-p NAME`.
AUTOLOAD = "PYTEST_DISABLE_PLUGIN_AUTOLOAD"

# `nox -s envs -- --backend X` and the like: `envassay check`'s flags as the plugin's.
SHORT_FORMS = {
    flag: option.plugin_flag
    for option in RUN_OPTIONS
    if option.short_form
    for flag in option.cli_flags
}


def pytest_args(posargs: Sequence[str]) -> list[str]:
    """``posargs`` with ``--backend NAME`` / ``--backend=NAME`` (and the other short forms)
    as the plugin's options;
    everything else (and anything after a bare ``--``) is passed through unchanged."""
    result: list[str] = []
    args = list(posargs)
    while args:
        arg = args.pop(0)
        if arg == "--":
            return [*result, arg, *args]
        if arg.startswith("-j") and arg[2:].isdigit():  # -j2
            arg = f"-j={arg[2:]}"
        flag, equals, value = arg.partition("=")
        if flag in SHORT_FORMS:
            result.append(SHORT_FORMS[flag])
            if equals:
                result.append(value)
            continue
        result.append(arg)
    return result


def pytest_flags(root: Path) -> list[str]:
    """What every envassay run of pytest passes first (`envassay check` and the noxfile's
    env sessions alike, so that both judge and cost the same).

    The project's own pytest settings are for its test suite, not for these runs. The
    unraisableexception and threadexception plugins watch test code for exceptions that
    nobody catches; there is none here, and the former's five gc.collect() passes at the
    end cost 0.1-0.2 s a run.
    """
    return [
        *("-p", "envassay.pytest_plugin", "-p", "no:cacheprovider"),
        # An unforeseen error in one spec's collection must not hide the other envs.
        "--continue-on-collection-errors",
        *("-p", "no:unraisableexception", "-p", "no:threadexception"),
        *("-c", os.devnull, "--rootdir", str(root)),
    ]
