"""Local miniconda-family builder images, one per conda version, made offline.

``continuumio/miniconda3`` cannot be pulled where envassay is tested, so this makes an
image laid out like it for a builder stage: ``FROM`` the local Debian base image
(:mod:`envassay_testing.baseimage`), conda installed ``--no-index`` into its venv at
``/opt/conda`` from a wheelhouse made on the host, a launcher ``/opt/conda/bin/conda``
(``python -m conda``: pip-installed conda's own entry point refuses to run before
``conda init``), ``/opt/conda/.condarc`` with ``solver: classic`` (conda-libmamba-solver
and menuinst exist only on conda channels), ``/opt/conda/conda-meta/history`` (so conda
takes its root prefix as writable: package cache ``/opt/conda/pkgs``), ``/opt/conda/bin``
first on ``PATH``, root.

The conda wheels are conda's own releases built unchanged from their tags
(``../shared/tools/conda``); :func:`conda_wheels_dir` says where they are looked for.
The wheelhouse (that wheel plus its PyPI dependencies for the image's CPython 3.11,
manylinux; ``pycosat`` built on the host when PyPI has no binary wheel) is cached under
``<test cache>/condawheels/<key>/``; the image is kept in the engine as
``envassay-test/miniconda3:<conda version>-<key>``, the key covering the recipe, the
base image and the wheels' hashes, so :func:`envassay.targets.image.creator_for` picks conda::

    python -m envassay_testing.condaimage 24.7.1 26.7.1     # prints one ref per line
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from filelock import FileLock

from envassay.command import run
from envassay.docker import Engine, shared_engine
from envassay.errors import EnvassayError
from envassay.progress import Progress
from envassay_testing.baseimage import BaseImage, ensure_base_image
from envassay_testing.channel import default_cache_dir

# Bump when the recipe changes in a way the key would not show.
RECIPE_VERSION = 1
WHEELS_VARIABLE = "ENVASSAY_CONDA_WHEELS"
REPOSITORY = "envassay-test/miniconda3"
VENV = "/opt/conda"
PATH = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The base image's interpreter (Debian bookworm's python3) and what its pip accepts.
PYTHON_VERSION = "3.11"
PYTHON_FULL_VERSION = "3.11.2"
ABIS = ("cp311", "abi3", "none")
# Only on conda channels: conda runs without them (classic solver, no shortcuts).
CHANNEL_ONLY = ("menuinst", "conda-libmamba-solver")
# PyPI has no binary wheel of these for every Python: built on the host when needed.
BUILT_HERE = ("pycosat",)
_DEFAULT_WHEELS = Path("/work/shared/tools/conda")

DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
USER root
COPY wheels/ /tmp/conda-wheels/
RUN set -eu; \\
    {VENV}/bin/python -m pip install --quiet --disable-pip-version-check --no-cache-dir \\
        --no-index --no-deps /tmp/conda-wheels/*.whl; \\
    printf '#!/bin/sh\\nexec {VENV}/bin/python -m conda "$@"\\n' > {VENV}/bin/conda; \\
    chmod 0755 {VENV}/bin/conda; \\
    printf 'solver: classic\\n' > {VENV}/.condarc; \\
    mkdir -p {VENV}/conda-meta; touch {VENV}/conda-meta/history; \\
    rm -rf /tmp/conda-wheels /root/.cache; \\
    {VENV}/bin/conda --version
ENV PATH={PATH} LANG=C.UTF-8
CMD ["/bin/bash"]
"""


class CondaImageError(EnvassayError):
    """The conda builder image could not be made (no wheels, a failed download or build)."""


@dataclass(frozen=True)
class Wheelhouse:
    """The wheels an image installs, and what they hash to."""

    path: Path
    hashes: dict[str, str]  # file name -> sha256


def conda_wheels_dir(wheels: Path | str | None = None) -> Path | None:
    """Where the conda wheels are: ``wheels``, else $ENVASSAY_CONDA_WHEELS, else the
    repository's ``../shared/tools/conda``, else /work/shared/tools/conda; None if none is
    a folder."""
    for candidate in _wheel_dir_candidates(wheels):
        if candidate.is_dir():
            return candidate
    return None


def _wheel_dir_candidates(wheels: Path | str | None) -> list[Path]:
    if wheels is not None:
        return [Path(wheels)]
    if value := os.environ.get(WHEELS_VARIABLE):
        return [Path(value)]
    repo = Path(__file__).resolve().parents[2]
    return [repo.parent / "shared" / "tools" / "conda", _DEFAULT_WHEELS]


def conda_wheel(version: str, wheels: Path | str | None = None) -> Path:
    """The wheel of conda ``version``; a CondaImageError saying where it looked, if none."""
    folder = conda_wheels_dir(wheels)
    if folder is None:
        looked = ", ".join(str(p) for p in _wheel_dir_candidates(wheels))
        raise CondaImageError(
            f"no conda wheel folder (looked in {looked}); set {WHEELS_VARIABLE} to a folder "
            "holding conda-VERSION-py3-none-any.whl",
        )
    wheel = folder / f"conda-{version}-py3-none-any.whl"
    if not wheel.is_file():
        have = sorted(p.name for p in folder.glob("conda-*-py3-none-any.whl"))
        raise CondaImageError(f"no wheel of conda {version} in {folder} (there: {have or 'none'})")
    return wheel


def recipe(version: str) -> dict[str, object]:
    return {
        "version": RECIPE_VERSION,
        "conda": version,
        "python": PYTHON_FULL_VERSION,
        "abis": list(ABIS),
        "platforms": _platforms(),
        "channel_only": list(CHANNEL_ONLY),
        "dockerfile": DOCKERFILE,
    }


def _platforms() -> list[str]:
    """manylinux tags the bookworm image's pip accepts (glibc 2.36), newest first."""
    machine = os.uname().machine
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)]
    return [*tags, f"manylinux2014_{machine}", f"linux_{machine}"]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _short(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def conda_requirements(wheel: Path) -> list[str]:
    """conda's declared dependencies for the image's Python, less the channel-only ones."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    environment = {
        "python_version": PYTHON_VERSION,
        "python_full_version": PYTHON_FULL_VERSION,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": os.uname().machine,
        "extra": "",
    }
    result = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.name in CHANNEL_ONLY:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        requirement.marker = None
        result.append(str(requirement))
    return result


def ensure_wheelhouse(
    version: str,
    wheels: Path | str | None = None,
    cache_dir: Path | None = None,
    progress: Progress = lambda _line: None,
) -> Wheelhouse:
    """conda ``version``'s wheel and its PyPI dependencies for the image, made once."""
    wheel = conda_wheel(version, wheels)
    key = _short({"recipe": recipe(version), "conda-wheel": _sha256_file(wheel)})
    root = Path(cache_dir or default_cache_dir()).resolve() / "condawheels"
    root.mkdir(parents=True, exist_ok=True)
    house = root / key
    with FileLock(str(house) + ".lock"):
        if not (house / "hashes.json").is_file():
            progress(f"making the wheelhouse of conda {version} in {house}")
            shutil.rmtree(house, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix=".tmp-", dir=root) as tmp:
                partial = Path(tmp) / "house"
                _fill_wheelhouse(partial, wheel, progress)
                hashes = {p.name: _sha256_file(p) for p in sorted(partial.glob("*.whl"))}
                (partial / "hashes.json").write_text(json.dumps(hashes, indent=1) + "\n")
                os.replace(partial, house)
        hashes = json.loads((house / "hashes.json").read_text())
    return Wheelhouse(house, dict(hashes))


def _fill_wheelhouse(dest: Path, wheel: Path, progress: Progress) -> None:
    dest.mkdir(parents=True)
    shutil.copy2(wheel, dest / wheel.name)
    requirements = conda_requirements(wheel)
    built = [r for r in requirements if _name(r) in BUILT_HERE]
    binary = [r for r in requirements if _name(r) not in BUILT_HERE]
    target = ["--python-version", PYTHON_VERSION, "--implementation", "cp"]
    target += [arg for abi in ABIS for arg in ("--abi", abi)]
    target += [arg for tag in _platforms() for arg in ("--platform", tag)]
    began = time.perf_counter()
    # Dependencies of the dependencies come along; only binaries fit a foreign target.
    _pip("download", "--only-binary=:all:", *target, "-d", dest, *binary)
    for requirement in built:
        # Already there as a dependency of another, or a binary wheel exists: done.
        if any(_name(p.name.split("-", 1)[0]) == _name(requirement) for p in dest.glob("*.whl")):
            continue
        found = _pip("download", "--only-binary=:all:", "--no-deps", *target, "-d", dest,
                     requirement, check=False)  # fmt: skip
        if not found:
            progress(f"no binary wheel of {requirement} on PyPI: building it here")
            _pip("wheel", "--no-deps", "--no-binary", _name(requirement), "-w", dest, requirement)
    progress(f"wheelhouse: {len(list(dest.glob('*.whl')))} wheels in "
             f"{time.perf_counter() - began:.1f}s")  # fmt: skip


def _name(requirement: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(Requirement(requirement).name))


def _pip(*args: str | Path, check: bool = True) -> bool:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = run(argv, timeout=900)
    if check and not result.ok:
        raise CondaImageError(f"`pip {args[0]}` for the conda image failed: {result.describe()}")
    return result.ok


def image_ref(version: str, base: str, house: Wheelhouse) -> str:
    key = _short({"recipe": recipe(version), "base": base, "wheels": house.hashes})
    return f"{REPOSITORY}:{version}-{key}"


def ensure_conda_image(
    version: str,
    engine: Engine | None = None,
    progress: Progress = lambda _line: None,
    *,
    wheels: Path | str | None = None,
    cache_dir: Path | None = None,
) -> BaseImage:
    """Return the builder image of conda ``version``, building it (and the base image,
    and the wheelhouse) only when it is not there yet."""
    engine = engine or shared_engine()
    started = time.perf_counter()
    house = ensure_wheelhouse(version, wheels, cache_dir, progress)
    base = ensure_base_image(engine, cache_dir, progress).ref
    ref = image_ref(version, base, house)
    if engine.image(ref) is not None:
        return BaseImage(ref, "engine", time.perf_counter() - started)
    root = Path(cache_dir or default_cache_dir()).resolve() / "condaimage"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{ref.rsplit(':', 1)[1]}.lock")):
        if engine.image(ref) is not None:
            return BaseImage(ref, "engine", time.perf_counter() - started)
        progress(f"building {ref} from {base}")
        with tempfile.TemporaryDirectory(prefix="context-", dir=root) as tmp:
            context = Path(tmp)
            (context / "Dockerfile").write_text(DOCKERFILE)
            shutil.copytree(house.path, context / "wheels", ignore=shutil.ignore_patterns("*.json"))
            engine.build(context, ref, buildargs={"BASE_IMAGE": base}, on_line=progress)
    return BaseImage(ref, "built", time.perf_counter() - started)


def main(argv: list[str]) -> int:
    if not argv or any(arg.startswith("-") for arg in argv):
        print("usage: python -m envassay_testing.condaimage VERSION...", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(f"condaimage: {line}", file=sys.stderr, flush=True)

    for version in argv:
        try:
            image = ensure_conda_image(version, progress=say)
        except EnvassayError as exc:
            print(f"condaimage: error: {exc}", file=sys.stderr)
            return 1
        say(f"{image.ref} ready ({image.how}, {image.seconds:.1f}s)")
        print(image.ref, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
