"""What running the suite inside a container costs, against its floor and the usual way.

For one env of ~20 packages from the local test channel, with its image already built
(and its native env already created), median of N runs, the suites and the bare run
taken in turn within each round (so a change in the machine's load hits them alike):

  container suite   `envassay check --target docker SPEC`: probe + checks + image checks
                    in the image (reused, no build; its image facts kept from the first
                    check: one container, the probe's)
  first check       the same with the kept image facts removed first: the facts are
                    gathered again (the plain `python -c` and the root scan, two more
                    containers beside the probe's), as on the first check of an image
  native suite      `envassay check SPEC` on the same env, natively (reused)
  bare run          one `docker run --rm --network none IMAGE true`
  floor             native suite + bare run: what "the same suite, in a container" must pay
  per-package runs  one `docker run --rm --network none IMAGE python -c "import X"` per
                    package (jupyter/docker-stacks' way), all of them

Target: container suite <= 1.5 x floor (issue #9, target 4).

    python benchmarks/container_suite.py [--repeat 5] [--keep]

Needs a Docker engine, root (for the debootstrap base image, cached) and the local test
channel (built from PyPI wheels, cached).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

try:
    import envassay_testing  # noqa: F401
except ImportError:  # a checkout not installed editable (envassay_testing is never installed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from envassay.command import CommandResult, run
from envassay.docker import shared_engine
from envassay.probe import PackageRequest, ProbeRequest, run_probe
from envassay.targets import DockerTarget
from envassay_testing.baseimage import ensure_base_image
from envassay_testing.channel import build_test_channel, default_cache_dir

# Every healthy package the test channel offers (its broken ones are left out). Not
# setuptools: imported after pip in one interpreter, its distutils shim asserts (a probe
# artefact that `python -c "import setuptools"` does not show; natively too).
PACKAGES = [
    "python=3.11",
    "numpy",
    "pyyaml",
    "pip",
    "wheel",
    "packaging",
    "six",
    "idna",
    "beautifulsoup4",
    "soupsieve",
    "attrs",
    "typing-extensions",
    "certifi",
    "charset-normalizer",
    "requests",
    "urllib3",
    "datatools",
    "nopython",
    "oldpkg",
]


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def must(result: CommandResult) -> CommandResult:
    if not result.ok:
        raise SystemExit(f"benchmark step failed: {result.describe()}")
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args(argv)

    engine = shared_engine()
    started = time.perf_counter()
    base = ensure_base_image(engine)
    print(f"base image     {base.ref} ({base.how}, {time.perf_counter() - started:.1f}s)")
    channel = build_test_channel()
    store = default_cache_dir() / "bench-store"
    root = Path(tempfile.mkdtemp(prefix="envassay-bench-"))
    (root / "envs").mkdir()
    spec = root / "envs" / "bench.yml"
    lines = ["name: bench", f"channels: [{channel.url}]", "dependencies:"]
    spec.write_text("\n".join([*lines, *(f'  - "{p}"' for p in PACKAGES)]) + "\n")
    (root / "pyproject.toml").write_text(
        f'[tool.envassay]\n[tool.envassay.envs.bench]\nbuilder-image = "{base.ref}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["ENVASSAY_HOME"] = str(store)
    envassay = [sys.executable, "-m", "envassay"]

    def container_suite() -> CommandResult:
        return must(run([*envassay, "check", "--target", "docker", spec], env=env, cwd=root))

    def native_suite() -> CommandResult:
        return must(run([*envassay, "check", spec], env=env, cwd=root))

    def first_check() -> CommandResult:
        shutil.rmtree(store / "cache" / "image-facts", ignore_errors=True)
        return container_suite()

    # Cold: build the image (or find it) and create the native env, untimed by the medians.
    began = time.perf_counter()
    built = must(run([*envassay, "build", spec, "--json"], env=env, cwd=root))
    info = json.loads(built.stdout)
    ref = info["ref"]
    how = "reused" if info["reused"] else "built"
    print(f"image          {ref} ({how} in {time.perf_counter() - began:.1f}s)")
    container_suite()
    native_suite()

    report = run_probe(
        DockerTarget(ref, python="/opt/env/bin/python"),
        ProbeRequest(packages=tuple(PackageRequest(p.split("=")[0]) for p in PACKAGES)),
    )
    imports = {
        name: res.modules
        for name, res in report.packages.items()
        if res.status == "python" and res.modules
    }

    def bare_run() -> CommandResult:
        return must(run(["docker", "run", "--rm", "--network", "none", ref, "true"]))

    def per_package() -> None:
        for modules in imports.values():
            code = f"import {', '.join(modules)}"
            must(run(["docker", "run", "--rm", "--network", "none", ref, "python", "-c", code]))

    rounds = [container_suite, first_check, native_suite, bare_run]
    times: dict[Callable[[], object], list[float]] = {action: [] for action in rounds}
    for _ in range(args.repeat):
        for action in rounds:
            times[action].append(median_seconds(action, 1))
    container, first, native, bare = (statistics.median(times[a]) for a in rounds)
    per_pkg = median_seconds(per_package, max(1, args.repeat // 2))
    floor = native + bare

    print(f"packages       {len(PACKAGES)} declared, {len(imports)} with Python modules")
    print(f"container suite  {container:6.2f}s")
    print(f"first check      {first:6.2f}s  (image facts gathered: 3 containers, not 1)")
    print(f"native suite     {native:6.2f}s")
    print(f"bare docker run  {bare:6.2f}s")
    print(f"floor            {floor:6.2f}s  (native suite + bare run)")
    print(f"per-package runs {per_pkg:6.2f}s  ({len(imports)} x docker run python -c 'import X')")
    print(f"container / floor        {container / floor:5.2f}x  (target <= 1.5x)")
    print(f"first check / floor      {first / floor:5.2f}x")
    print(f"per-package / container  {per_pkg / container:5.2f}x")
    one, five, _ = os.getloadavg()
    print(
        f"load {one:.2f} {five:.2f} (1/5 min) on {os.cpu_count()} CPU(s);"
        " absolute times: this machine only"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if container <= 1.5 * floor else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
