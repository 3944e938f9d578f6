"""What the env sessions of a noxfile pass to pytest: their posargs, envassay's short forms
spelled out (`nox -s envs -- --backend micromamba` -> `--envassay-backend micromamba`;
`-j N`, `--report-md P`, `--report-json P`, `--gpu require|skip|auto` likewise)."""

from __future__ import annotations

from collections.abc import Sequence

SHORT_FORMS = {
    "--backend": "--envassay-backend",
    "-j": "--envassay-jobs",
    "--jobs": "--envassay-jobs",
    "--report-md": "--envassay-report-md",
    "--report-json": "--envassay-report-json",
    "--gpu": "--envassay-gpu",
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
