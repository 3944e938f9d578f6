"""`python -m envassay_testing.demo build-channel`: what `nox -s demo` needs before pytest runs.

Builds (or reuses) the local test channel and links it at demo/channel, and
writes a small wheel into demo/wheels for the demo's offline `pip:` section,
so the specs in demo/envs can name both by relative path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from envassay_testing.channel import build_test_channel
from envassay_testing.wheels import make_wheel


def prepare(demo_dir: Path) -> None:
    """Make demo/channel and demo/wheels."""
    channel = build_test_channel()
    link = demo_dir / "channel"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(channel.path, target_is_directory=True)
    make_wheel(
        demo_dir / "wheels",
        "demo-greeting",
        "1.0",
        files={"demo_greeting.py": "def hello() -> str:\n    return 'hello from pip'\n"},
        requires=["requests>=2"],  # met by the conda package, as health[pip] shows
    )
    print(f"demo channel: {channel.path} (linked at {link})")


def main(argv: list[str]) -> int:
    if argv != ["build-channel"]:
        print("usage: python -m envassay_testing.demo build-channel", file=sys.stderr)
        return 2
    prepare(Path.cwd() / "demo")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
