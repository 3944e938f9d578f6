"""`-j N|auto`: how many env targets run at once."""

from __future__ import annotations

import argparse
import os

import pytest

from envassay.cli import build_parser
from envassay.run.session import parse_jobs


def test_auto_is_the_cpus_this_process_may_use() -> None:
    assert parse_jobs("auto") == len(os.sched_getaffinity(0)) >= 1
    assert parse_jobs(" AUTO ") == parse_jobs("auto")


@pytest.mark.parametrize("text", ["1", "2", "16"])
def test_a_number(text: str) -> None:
    assert parse_jobs(text) == int(text)


@pytest.mark.parametrize("text", ["0", "-1", "x", "", "1.5"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="whole number >= 1 or auto"):
        parse_jobs(text)


def test_check_and_the_pytest_option_take_auto() -> None:
    args = build_parser().parse_args(["check", "-j", "auto"])
    assert args.jobs == parse_jobs("auto")
    from envassay import pytest_plugin

    assert pytest_plugin.parse_jobs is parse_jobs  # --envassay-jobs uses the same reading
