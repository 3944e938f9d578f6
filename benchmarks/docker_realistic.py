"""The container path at real scale (issue 28): a realistic env (~45 real PyPI binary
wheels of a data-science stack, ~800 MB installed; benchmarks/realistic_channel.py),
served over HTTP from 127.0.0.1, built and checked side by side:

  docker, hand-written   a Dockerfile `FROM` the builder, `COPY environment.yml`,
                         `RUN conda env create -p /opt/env -f ... && conda clean --all -y`,
                         then one `docker run` of the imports and `pip check`; with the
                         classic builder and with BuildKit (DOCKER_BUILDKIT=1)
  docker, envassay       `envassay check --target docker --creator C SPEC` with an
                         empty store, then again (warm: the image is reused by its content
                         hash); with BuildKit (default here; C = conda, then envassay) and
                         the classic builder (ENVASSAY_BUILDKIT=0, C = conda)
  native, hand-written   `conda env create -p P -f SPEC` (empty package cache), one
                         `P/bin/python -c "import X"` per declared package, `pip check`;
                         warm: the imports and `pip check` only
  native, envassay       `envassay check SPEC` with an empty store, then again (warm)

Each way once, or --rounds N times in turn (each round in another order; medians and each
round's ratio printed): the env is large, and the machine may be shared (the load is printed).
Every cold build has a spec named afresh, so no build cache of an earlier run helps it.
Images made are removed at the end.

    python benchmarks/docker_realistic.py [--conda 24.7.1] [--skip-classic] [--rounds N]
        [--only WAY,...]   (WAY: hand, hand-classic, docker-conda, docker-envassay,
                            docker-classic, native; default: all)
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import load
from realistic_channel import IMPORTS, realistic_channel

from envassay.command import CommandResult, run
from envassay.docker import shared_engine
from envassay_testing.baseimage import ensure_base_image
from envassay_testing.condaimage import ensure_conda_image

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("hand", "hand-classic", "docker-conda", "docker-envassay", "docker-classic", "native")
CONDAS = Path.home() / ".cache" / "envassay-test" / "conda"


def must(result: CommandResult) -> CommandResult:
    if not result.ok:
        raise SystemExit(f"failed: {result.describe()}")
    return result


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def serve(directory: Path) -> str:
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def write_spec(root: Path, channel: str, name: str, nodefaults: bool) -> Path:
    deps = ["python=3.11", "pip", *IMPORTS]
    channels = [channel, *(["nodefaults"] if nodefaults else [])]
    lines = [f"name: {name}", f"channels: [{', '.join(channels)}]", "dependencies:"]
    lines += [f"  - {dep}" for dep in deps]
    path = root / "envs" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def smoke_script() -> str:
    # setuptools first: after the stdlib distutils is imported it cannot be (its hack).
    modules = ["setuptools", *(m for m in IMPORTS.values() if m != "setuptools")]
    return f"python -c 'import {', '.join(modules)}' && python -m pip check"


def native(scratch: Path, channel: str, conda: Path, figures: dict[str, float]) -> None:
    """The native ways: conda env create + one interpreter per import + pip check, and
    `envassay check` (rattler), each cold then warm."""
    name = f"native-{uuid.uuid4().hex[:8]}"
    spec = write_spec(scratch / name, channel, name, nodefaults=True)
    prefix = scratch / name / "env"
    conda_env = {**os.environ, "CONDA_PKGS_DIRS": str(scratch / name / "pkgs")}

    def hand_checks() -> None:
        for module in ["setuptools", *IMPORTS.values()]:
            must(run([prefix / "bin" / "python", "-c", f"import {module}"], timeout=300))
        must(run([prefix / "bin" / "python", "-m", "pip", "check"], timeout=300))

    create = [conda, "env", "create", "-q", "-p", prefix, "-f", spec]
    cold = timed(lambda: must(run(create, env=conda_env, timeout=1800))) + timed(hand_checks)
    figures["native hand-written cold"] = cold
    figures["native hand-written warm"] = timed(hand_checks)
    project = scratch / f"{name}-ea"
    spec = write_spec(project, channel, name, nodefaults=False)
    (project / "pyproject.toml").write_text("[tool.envassay]\n")
    env = {**os.environ, "ENVASSAY_HOME": str(project / "store")}
    check = [sys.executable, "-m", "envassay", "check", spec, "--", "-q"]
    for phase in ("cold", "warm"):
        figures[f"native envassay {phase}"] = timed(
            lambda: must(run(check, env=env, cwd=project, timeout=1800))
        )
    print(f"  native: {figures}; {load()}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conda", default="24.7.1")
    parser.add_argument("--skip-classic", action="store_true")
    parser.add_argument("--only", default=",".join(WAYS), help="comma-separated subset of WAYS")
    parser.add_argument(
        "--rounds", type=int, default=1, help="docker ways this many times, in turn (medians)"
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if unknown := only - set(WAYS):
        parser.error(f"unknown way(s) {sorted(unknown)}; expected some of {list(WAYS)}")
    if args.skip_classic:
        only -= {"hand-classic", "docker-classic"}
    conda = next(CONDAS.glob(f"{args.conda}-*/bin/conda"))
    channel_dir = realistic_channel()
    channel = serve(channel_dir)
    print(f"channel {channel_dir} ({sum(1 for _ in channel_dir.glob('*/*.tar.bz2'))} packages)")
    engine = shared_engine() if only - {"native"} else None  # native alone needs no engine
    builder = runtime = ""
    if engine is not None:
        builder = ensure_conda_image(args.conda, engine).ref
        runtime = ensure_base_image(engine).ref
        print(f"builder {builder} (conda {args.conda}); runtime {runtime}")
    print(load())
    made: list[str] = []
    figures: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    scratch = Path(tempfile.mkdtemp(prefix="bench-docker-"))

    def hand(way: str, buildkit: str) -> None:
        """FROM the builder, COPY the spec, RUN conda env create && conda clean; one run."""
        assert engine is not None
        name = f"hand-{uuid.uuid4().hex[:8]}"
        context = scratch / name
        spec = write_spec(context, channel, name, nodefaults=True)
        shutil.copy(spec, context / "environment.yml")
        (context / "Dockerfile").write_text(
            f"FROM {builder}\nCOPY environment.yml /tmp/environment.yml\n"
            "RUN conda env create -p /opt/env -f /tmp/environment.yml "
            "&& conda clean --all -y\nENV PATH=/opt/env/bin:$PATH\n"
        )
        tag = f"envassay-bench/{name}:1"
        env = {**os.environ, "DOCKER_BUILDKIT": buildkit}
        cli = "/usr/bin/docker" if buildkit == "1" else "docker"
        build = [cli, "build", "--network", "host", "-q", "-t", tag, str(context)]
        smoke = ["docker", "run", "--rm", "--network", "none", tag, "sh", "-c", smoke_script()]
        seconds = timed(lambda: must(run(build, env=env, timeout=1800)))
        made.append(tag)
        seconds += timed(lambda: must(run(smoke, timeout=600)))
        figures.setdefault(f"docker hand-written ({way})", []).append(seconds)
        sizes[f"hand-written ({way})"] = engine.image(tag).size  # type: ignore[union-attr]
        print(f"  docker hand-written ({way}): {seconds:.1f}s; {load()}", flush=True)

    def envassay(builder_kind: str, buildkit: str, creator: str) -> None:
        """`envassay check --target docker` with an empty store (cold), then again (warm)."""
        assert engine is not None
        way = f"{builder_kind}, --creator {creator}"
        name = f"ea-{uuid.uuid4().hex[:8]}"
        project = scratch / name
        spec = write_spec(project, channel, name, nodefaults=False)
        (project / "pyproject.toml").write_text(
            f'[tool.envassay.envs.{name}]\nbuilder-image = "{builder}"\n'
            f'runtime-image = "{runtime}"\n'
        )
        env = {**os.environ, "ENVASSAY_HOME": str(project / "store"), "ENVASSAY_BUILDKIT": buildkit}
        check = [sys.executable, "-m", "envassay", "check", "--target", "docker"]
        check += ["--creator", creator, spec, "--", "-q"]
        for phase in ("cold", "warm"):
            seconds = timed(lambda: must(run(check, env=env, cwd=project, timeout=1800)))
            figures.setdefault(f"docker envassay ({way}) {phase}", []).append(seconds)
            print(f"  docker envassay ({way}) {phase}: {seconds:.1f}s; {load()}", flush=True)
        logs = Path(tempfile.gettempdir()) / "envassay-bench-logs" / name
        shutil.copytree(project / "store" / "logs", logs, dirs_exist_ok=True)
        print(f"    build log (steps timed): {logs}", flush=True)
        for ref in engine.api.images(name=f"envassay/{name}", quiet=True):
            sizes[f"envassay ({way})"] = int(engine.api.inspect_image(ref)["Size"])
            made.append(ref)

    ways: list[tuple[str, Callable[[], None]]] = [
        ("hand", lambda: hand("BuildKit", "1")),
        ("hand-classic", lambda: hand("classic", "0")),
        ("docker-conda", lambda: envassay("BuildKit", "1", "conda")),
        ("docker-envassay", lambda: envassay("BuildKit", "1", "envassay")),
        ("docker-classic", lambda: envassay("classic", "0", "conda")),
    ]
    ways = [(key, way) for key, way in ways if key in only]
    try:
        for round_ in range(args.rounds):
            # Each round in another order: a busy spell does not land on one way only.
            turn = round_ % len(ways) if ways else 0
            for _key, way in ways[turn:] + ways[:turn]:
                way()
        if "native" in only:
            native_figures: dict[str, float] = {}
            native(scratch, channel, conda, native_figures)
            figures.update({k: [v] for k, v in native_figures.items()})
    finally:
        for ref in made:
            engine.api.remove_image(ref, force=True)  # type: ignore[union-attr]
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\n{'way':56s} median   min-max (s)")
    for way, runs in figures.items():
        print(f"{way:56s}{statistics.median(runs):7.1f}   {min(runs):.1f}-{max(runs):.1f}")
    print(f"\n{'image':56s}      MB")
    for way, size in sizes.items():
        print(f"{way:56s}{size / 1e6:8.0f}")
    ratios = (
        ("docker envassay (BuildKit, --creator conda) cold", "docker hand-written (BuildKit)"),
        ("docker envassay (BuildKit, --creator envassay) cold", "docker hand-written (BuildKit)"),
        ("docker envassay (BuildKit, --creator conda) warm", "docker hand-written (BuildKit)"),
        ("docker envassay (classic, --creator conda) cold", "docker hand-written (classic)"),
        ("native envassay cold", "native hand-written cold"),
        ("native envassay warm", "native hand-written cold"),
        ("native envassay warm", "native hand-written warm"),
    )
    print("\nratios of medians (and of each round's pair)")
    for top, bottom in ratios:
        if top in figures and bottom in figures:
            mine, theirs = figures[top], figures[bottom]
            pairs = ", ".join(f"{a / b:.2f}" for a, b in zip(mine, theirs, strict=False))
            ratio = statistics.median(mine) / statistics.median(theirs)
            print(f"{top} / {bottom}: {ratio:.2f}x ({pairs})")
    print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
