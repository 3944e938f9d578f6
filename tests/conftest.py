"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from envassay.testing import LocalChannel, build_test_channel


@pytest.fixture(scope="session")
def test_channel() -> LocalChannel:
    """The standard local conda test channel, built once and cached across sessions."""
    return build_test_channel()
