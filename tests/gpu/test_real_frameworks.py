"""Real frameworks from PyPI (CPU builds), in an env envassay creates, probed for real.

jax and jaxlib's CPU wheels (with ml_dtypes, opt_einsum, numpy, scipy) are repackaged
as conda packages (``envassay_testing``) into a channel cached under the test cache;
``envassay create`` makes the env, and the GPU probe's framework code runs in it: a
CPU-only build named as such, no GPU visible, the device work right on the CPU.
Without PyPI these skip, or fail under CI=true.

tensorflow-cpu 2.15.1 likewise (42 wheels, 273 MB to download where the test cache is
empty). Not here: torch (PyPI's Linux torch wheels pull the CUDA runtime wheels, GBs;
the CPU-only build is on PyTorch's own index, which cannot be reached here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

from envassay.command import run
from envassay.docker import Engine
from envassay.probe import gpu_script
from envassay.probe.gpu import GpuRequest, run_gpu_probe
from envassay.targets import DockerTarget, NativeTarget
from envassay_testing.channel import (
    default_cache_dir,
    index_channel,
    make_python_package,
    package_from_wheel,
)

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
# tensorflow-cpu 2.15.1 and what pip resolves it to (42 wheels, 273 MB).
TENSORFLOW_WHEELS = (
    "absl_py==2.5.1", "astunparse==1.6.3", "certifi==2026.10.19.post1", "cffi==2.1.1",
    "charset_normalizer==3.5.3", "cryptography==51.0.1", "flatbuffers==25.12.19",
    "gast==0.7.0", "google_auth==2.63.1", "google_auth_oauthlib==1.5.0",
    "google_pasta==0.2.0", "grpcio==1.85.4", "h5py==3.14.0", "idna==3.21", "keras==2.15.0",
    "libclang==18.1.1", "markdown==3.11.3", "markupsafe==3.0.4", "ml_dtypes==0.3.2",
    "numpy==1.26.4", "oauthlib==4.0.1", "opt_einsum==3.4.0", "packaging==26.4",
    "protobuf==4.25.9", "pyasn1==0.6.5", "pyasn1_modules==0.4.2", "pycparser==3.12",
    "requests==2.34.2", "requests_oauthlib==2.0.0", "setuptools==84.2.1", "six==1.17.0",
    "tensorboard==2.15.2", "tensorboard_data_server==0.7.2", "tensorflow_cpu==2.15.1",
    "tensorflow_estimator==2.15.0", "tensorflow_io_gcs_filesystem==0.37.1",
    "termcolor==3.3.0", "typing_extensions==4.16.0", "urllib3==2.8.0", "werkzeug==3.1.9",
    "wheel==0.48.0", "wrapt==1.14.2",
)  # fmt: skip
JAX_WHEELS = (
    "jax==0.4.23",
    "jaxlib==0.4.23",
    "ml-dtypes==0.3.2",
    "opt-einsum==3.3.0",
    "numpy==1.26.4",
    "scipy==1.11.4",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the real-framework tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def framework_channel(wheels: tuple[str, ...]) -> Path:
    """A local channel of ``wheels`` (PyPI binaries for this CPython) plus ``python``."""
    key = hashlib.sha256(json.dumps([wheels, sys.version]).encode()).hexdigest()[:12]
    root = default_cache_dir()
    final = root / f"frameworks-{key}"
    if (final / "DONE").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"frameworks-{key}.lock"), timeout=1800):
        if (final / "DONE").is_file():
            return final
        downloads = root / "framework-wheels"
        got = run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", PYTHON,
             "--platform", "manylinux2014_x86_64", "--dest", downloads, *wheels],
            timeout=900,
        )  # fmt: skip
        if not got.ok:
            _unavailable(f"cannot download {' '.join(wheels)} from PyPI: {got.describe()}")
        staging = Path(tempfile.mkdtemp(prefix=".partial-frameworks-", dir=root))
        staging.chmod(0o755)
        make_python_package(staging)
        wanted = {w.split("==")[0].lower().replace("-", "_") for w in wheels}
        for wheel in sorted(downloads.glob("*.whl")):
            name, version = wheel.name.split("-")[:2]
            if name.lower() in wanted and f"{name.lower()}=={version}" in {
                w.lower().replace("-", "_") for w in wheels
            }:
                package_from_wheel(staging, wheel)
        index_channel(staging)
        (staging / "DONE").write_text("")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    return final


def jax_spec(root: Path) -> Path:
    channel = framework_channel(JAX_WHEELS)
    spec = root / "jax.yml"
    spec.write_text(
        f"name: jax\nchannels: [{channel.as_uri()}]\n"
        "dependencies: [python=3.11, jax=0.4.23, jaxlib=0.4.23]\n"
    )
    return spec


def created_env(root: Path, spec: Path) -> Path:
    prefix = root / "env"
    env = {**os.environ, "ENVASSAY_HOME": str(root / "store")}
    created = run(
        [sys.executable, "-m", "envassay", "create", spec, "--prefix", prefix],
        env=env,
        cwd=root,
        timeout=900,
    )
    assert created.ok, created.describe()
    return prefix


@pytest.fixture(scope="module")
def tensorflow_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An env with tensorflow-cpu, made by `envassay create` from the framework channel."""
    channel = framework_channel(TENSORFLOW_WHEELS)
    root = tmp_path_factory.mktemp("tensorflow")
    spec = root / "tensorflow.yml"
    spec.write_text(
        f"name: tensorflow\nchannels: [{channel.as_uri()}]\n"
        "dependencies: [python=3.11, tensorflow-cpu=2.15.1]\n"
    )
    return created_env(root, spec)


def test_real_tensorflow_cpu_is_reported_as_a_cpu_build_with_no_gpu(
    tensorflow_env: Path,
) -> None:
    report = run_gpu_probe(
        NativeTarget(tensorflow_env), GpuRequest(frameworks=("tensorflow",), framework_timeout=300)
    )
    facts = report.frameworks["tensorflow"]
    assert facts.status == "ok", facts.error
    assert (facts.version, facts.build, facts.cuda, facts.available, facts.checks) == (
        "2.15.1",
        "cpu",
        None,
        False,
        (),
    )


def test_real_tensorflow_work_is_right_on_the_cpu_in_its_env(tensorflow_env: Path) -> None:
    """The probe's own device code (a matmul placed on /CPU:0)."""
    check = framework_work(tensorflow_env, "tensorflow", "tensorflow_work", "'/CPU:0'")
    assert check["ok"], check


def framework_work(prefix: Path, module: str, work: str, device: str) -> dict[str, object]:
    """Run the probe's ``work`` function on ``device`` in the env at ``prefix``."""
    script = (
        f"import {module}, json, sys\n"
        "code = {'__name__': 'framework_code'}\n"
        "exec(sys.stdin.read(), code)\n"
        f"print(json.dumps(code[{work!r}]({module}, {device})))\n"
    )
    result = run(
        [prefix / "bin" / "python", "-c", script], input=gpu_script.FRAMEWORK_CODE, timeout=300
    )
    assert result.ok, result.describe()
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def jax_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An env with CPU jax, made by `envassay create` from the framework channel."""
    root = tmp_path_factory.mktemp("jax")
    return created_env(root, jax_spec(root))


def test_real_jax_is_reported_as_a_cpu_build_with_no_gpu(jax_env: Path) -> None:
    report = run_gpu_probe(
        NativeTarget(jax_env), GpuRequest(frameworks=("jax",), framework_timeout=300)
    )
    facts = report.frameworks["jax"]
    assert facts.status == "ok", facts.error
    assert facts.version == "0.4.23"
    assert (facts.build, facts.cuda, facts.available, facts.checks) == ("cpu", None, False, ())


def test_real_jax_work_is_right_on_the_cpu_in_its_env(jax_env: Path) -> None:
    """The probe's own device code (jit, device_put, matmul) on the env's CPU device."""
    check = framework_work(jax_env, "jax", "jax_work", "jax.devices('cpu')[0]")
    assert check["ok"], check
    assert "cpu" in check["name"].lower(), check


@pytest.mark.docker
def test_real_jax_in_an_image_is_a_cpu_build_with_no_gpu(
    tmp_path: Path, base_image: str, engine: Engine
) -> None:
    """The same env built into an image by `envassay build`, probed inside it."""
    spec = jax_spec(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.envassay.envs.jax]\nbuilder-image = "{base_image}"\n'
    )
    env = {**os.environ, "ENVASSAY_HOME": str(tmp_path / "store")}
    built = run(
        [sys.executable, "-m", "envassay", "build", spec, "--json"],
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert built.ok, built.describe()
    ref = json.loads(built.stdout)["ref"]
    report = run_gpu_probe(
        DockerTarget(ref, python="/opt/env/bin/python"),
        GpuRequest(frameworks=("jax",), framework_timeout=300),
    )
    facts = report.frameworks["jax"]
    assert facts.status == "ok", facts.error
    assert (facts.version, facts.build, facts.available, facts.checks) == (
        "0.4.23",
        "cpu",
        False,
        (),
    )
