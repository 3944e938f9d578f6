"""BuildKit's `--progress=plain` output as envassay reads it: recorded from dockerd 20.10.24
with Debian's docker 20.10 CLI (a RUN that fails with exit 2, a base image that cannot be
pulled). The real builds are in tests/integration/test_docker.py."""

from __future__ import annotations

from envassay.docker import ImageBuildError, _PlainProgress, is_phase

FAILED_RUN = """\
#1 [internal] load build definition from Dockerfile
#1 sha256:6e952d2bca49377efd091536f475311dc63679c708e5edb2297cd6035c258e3a
#1 transferring dockerfile: 193B done
#1 DONE 0.0s

#3 [internal] load metadata for docker.io/envassay-test/bookworm-python:d4a21c7e94734b88
#3 DONE 0.0s

#4 [1/2] FROM docker.io/envassay-test/bookworm-python:d4a21c7e94734b88
#4 CACHED

#5 [2/2] RUN echo one && echo 'envassay-create: error: x failed (exit 2): cause here' >&2 && exit 2
#5 sha256:3d5952aec678dc5be71356cdaa86546774b9703400fd164772d9aab347844643
#5 0.149 one
#5 0.149 envassay-create: error: x failed (exit 2): cause here
#5 ERROR: executor failed running [/bin/sh -c echo one && exit 2]: exit code: 2
------
 > [2/2] RUN echo one && echo 'envassay-create: error: x failed (exit 2): cause here' >&2 && exit 2:
------
executor failed running [/bin/sh -c echo one && exit 2]: exit code: 2
"""

NO_BASE = """\
#2 [internal] load metadata for docker.io/envassay-test.invalid/x:1
#2 ERROR: failed to do request: Head "https://envassay-test.invalid/v2/x/manifests/1": \
dial tcp: lookup envassay-test.invalid: no such host
------
 > [internal] load metadata for docker.io/envassay-test.invalid/x:1:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request
"""


def read(text: str) -> tuple[_PlainProgress, list[str]]:
    parsed = _PlainProgress()
    kept = [line for raw in text.splitlines() if (line := parsed.feed(raw)) is not None]
    return parsed, kept


def test_a_failed_run_gives_its_step_output_and_exit_code() -> None:
    parsed, kept = read(FAILED_RUN)
    assert (
        "one" in kept and "done in 0.0s: [internal] load build definition from Dockerfile" in kept
    )
    assert not [line for line in kept if line.startswith(("#", "sha256:"))]
    step, lines, error = parsed.failure(1)
    assert step.startswith("[2/2] RUN echo one")
    assert lines == ["one", "envassay-create: error: x failed (exit 2): cause here"]
    failure = ImageBuildError("m", step=step, output="\n".join(lines), error=error)
    assert failure.exit_code == 2 and not failure.base_image
    assert failure.cause == "x failed (exit 2): cause here"
    assert is_phase(step) and is_phase("[builder 3/3] RUN sh create.sh")
    assert not is_phase("one") and not is_phase("done in 0.0s: [2/2] RUN x")


def test_a_base_image_that_cannot_be_had_is_a_from_step() -> None:
    parsed, _ = read(NO_BASE)
    step, lines, error = parsed.failure(1)
    assert step == "[internal] FROM docker.io/envassay-test.invalid/x:1"
    failure = ImageBuildError("m", step=step, output="\n".join(lines), error=error)
    assert failure.base_image and failure.exit_code is None
    assert "no such host" in failure.cause


def test_classic_builder_lines() -> None:
    failure = ImageBuildError(
        "m",
        step="Step 6/17 : RUN sh /envassay-ctx/create.sh",
        output=" ---> Running in 5ea694485b9a\nenvassay-create: error: conda env create failed",
        error="The command '/bin/sh -c sh create.sh' returned a non-zero code: 2",
    )
    assert failure.exit_code == 2 and not failure.base_image
    assert failure.cause == "conda env create failed"
    assert is_phase("Step 6/17 : RUN sh create.sh") and not is_phase("Step 1/17 : ARG X=1")
