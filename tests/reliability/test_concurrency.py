"""Concurrency: `envassay check` twice at once on the same spec and the same store.

Both must pass, and the env must be created exactly once: the store's append-only
record (created.jsonl, one line per environment it created) has one line for the key,
and the run that lost the race says it reused the env.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from envassay.store import EnvStore
from tests.conftest import Project
from tests.integration.envassay_cli import junit_messages, junit_outcomes
from tests.reliability.harness import Sandbox, kill_tagged, wait_for_no_processes

pytestmark = [pytest.mark.channel, pytest.mark.slow]


def test_two_checks_at_once_create_the_env_once(project: Project, tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "box")
    spec = project.spec("shared", ["python=3.11", "numpy", "pyyaml", "six"])
    env = box.env()
    procs = []
    try:
        for n in (1, 2):
            log = (tmp_path / f"check-{n}.log").open("wb")
            procs.append(
                (
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "envassay",
                            "check",
                            str(spec),
                            "--junitxml",
                            str(tmp_path / f"junit-{n}.xml"),
                        ],
                        cwd=project.root,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                    log,
                )
            )
        started = time.monotonic()
        codes = [proc.wait(timeout=600) for proc, _ in procs]
        seconds = time.monotonic() - started
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        kill_tagged(box.tag)
    outputs = [(tmp_path / f"check-{n}.log").read_text() for n in (1, 2)]
    assert codes == [0, 0], "\n\n".join(outputs)

    store = EnvStore(box.store)
    (entry,) = list(store.entries())
    assert entry.complete
    records = [r for r in store.creations() if r["key"] == entry.key]
    assert len(records) == 1, records  # created once, by one of the two
    assert records[0]["pid"] in {proc.pid for proc, _ in procs}

    said = sorted(junit_messages(tmp_path / f"junit-{n}.xml")["create[native]"] for n in (1, 2))
    assert said[0].startswith("created in"), said
    assert said[1].startswith("reused from the store"), said
    for n in (1, 2):
        outcomes = junit_outcomes(tmp_path / f"junit-{n}.xml")
        assert outcomes["import[numpy]"][0] == "passed", outcomes
    assert not wait_for_no_processes(box.tag, within=2.0)
    print(f"two concurrent checks: {seconds:.1f}s")
