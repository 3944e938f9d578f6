"""The `envassay` command: a thin shell over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from envassay import __version__
from envassay.errors import EXIT_CHECK_FAILED, EXIT_USER_ERROR, EnvassayError, UserError

Handler = Callable[[argparse.Namespace], int]
BACKEND_NAMES = ("auto", "rattler", "conda", "mamba", "micromamba")
BACKEND_HELP = (
    "what creates envs (default: $ENVASSAY_BACKEND, else [tool.envassay] backend, else "
    "rattler); auto: the first of micromamba, mamba, conda installed, else rattler"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; errors become one line and an exit code here, and only here."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare `--` belongs to pytest (`envassay check envs/x.yml -- -x -q`).
    passthrough = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(passthrough) - (1 if "--" in argv else 0)])
    args.pytest_args = passthrough
    handler: Handler = args.handler
    try:
        return handler(args)
    except UserError as exc:
        if exc.details:  # e.g. what conda/mamba/micromamba printed, as it printed it
            print(exc.details, file=sys.stderr)
        print(f"envassay: error: {exc.render()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except EnvassayError as exc:
        print(f"envassay: failed: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except KeyboardInterrupt:
        print("envassay: interrupted; nothing half-made is kept", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envassay",
        description="Create conda environments from environment.yml and "
        "smoke-test them: imports, pins, dependency health.",
    )
    parser.add_argument("--version", action="version", version=f"envassay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    spec = sub.add_parser("spec", help="show a spec exactly as envassay reads it")
    spec.add_argument("spec", type=Path)
    spec.add_argument("--json", action="store_true", help="machine-readable output")
    spec.set_defaults(handler=cmd_spec)

    create = sub.add_parser("create", help="create the environment of a spec (cached in the store)")
    create.add_argument("spec", type=Path)
    create.add_argument("--prefix", type=Path, help="create here instead of in the store")
    create.add_argument("--backend", choices=BACKEND_NAMES, help=BACKEND_HELP)
    create.set_defaults(handler=cmd_create)

    check = sub.add_parser("check", help="create each spec's env and run the smoke checks")
    check.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")
    check.add_argument("--backend", choices=BACKEND_NAMES, help=BACKEND_HELP)
    check.add_argument("--junitxml", type=Path, help="write JUnit XML here")
    check.add_argument(
        "--report-md",
        type=Path,
        metavar="PATH",
        help="write the Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)",
    )
    check.add_argument(
        "--report-json", type=Path, metavar="PATH", help="write the JSON report here"
    )
    check.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="create and probe up to N env targets at once (default 1)",
    )
    check.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        choices=["native", "docker"],
        help="where to check (repeatable; default: [tool.envassay] targets, i.e. native)",
    )
    check.add_argument(
        "--image", metavar="REF", help="check this existing image (suite + image checks), no build"
    )
    _image_options(check)
    check.add_argument(
        "--gpu",
        choices=["auto", "require", "skip"],
        default="auto",
        help="GPU items: auto (each env's gpu policy), require (optional becomes required: "
        "no GPU fails; for GPU CI jobs), skip (skip them without touching the driver)",
    )
    check.set_defaults(handler=cmd_check)

    build = sub.add_parser("build", help="build (or reuse) the container image of a spec")
    build.add_argument("spec", type=Path)
    _image_options(build)
    build.add_argument("--json", action="store_true", help="machine-readable output")
    build.set_defaults(handler=cmd_build)

    lock = sub.add_parser("lock", help="solve each spec per platform into envs/NAME.conda-lock.yml")
    lock.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")
    lock.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        default=[],
        metavar="P",
        help="lock for this platform (repeatable; default: configured, else this machine's)",
    )
    lock.add_argument(
        "--check",
        action="store_true",
        help="only say whether each lock is fresh (no solve): exit 1 naming stale ones",
    )
    lock.add_argument("--force", action="store_true", help="re-solve even fresh locks")
    lock.set_defaults(handler=cmd_lock)

    drift = sub.add_parser("drift", help="solve each locked spec today and show what moved")
    drift.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")
    drift.add_argument("--fail", action="store_true", help="exit 1 when anything moved")
    drift.add_argument("--markdown", type=Path, metavar="PATH", help="also write Markdown here")
    drift.set_defaults(handler=cmd_drift)

    matrix = sub.add_parser("matrix", help="print the CI matrix: one job per env, target, platform")
    matrix.add_argument("specs", nargs="*", type=Path, help="default: [tool.envassay] specs")
    matrix.add_argument(
        "--format",
        dest="fmt",
        choices=["json", "github", "gitlab"],
        default="json",
        help='json: a list; github: {"include": [...]} on one line; gitlab: parallel:matrix YAML',
    )
    matrix.add_argument(
        "--changed-since",
        metavar="REF",
        help="only envs whose spec, lock or Dockerfile (docker/) changed since REF (git diff)",
    )
    matrix.add_argument(
        "--target",
        dest="targets",
        action="append",
        default=[],
        choices=["native", "docker"],
        help="only this target (repeatable; default: both, docker for linux platforms only)",
    )
    matrix.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        default=[],
        metavar="P",
        help="these platforms for every env (repeatable; default: configured, else linux-64)",
    )
    matrix.set_defaults(handler=cmd_matrix)

    probe = sub.add_parser(
        "probe", help="print the facts of an existing environment prefix or docker://IMAGE"
    )
    probe.add_argument("prefix", help="an env prefix, or docker://IMAGE")
    probe.add_argument("--json", action="store_true", help="the probe's JSON document")
    probe.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="PKG",
        help="also import this conda package's or distribution's modules",
    )
    probe.set_defaults(handler=cmd_probe)

    envs = sub.add_parser("envs", help="show or remove environments in the store")
    envs_sub = envs.add_subparsers(dest="envs_command", required=True, metavar="ACTION")
    envs_list = envs_sub.add_parser("list", help="list stored environments")
    envs_list.add_argument("--json", action="store_true")
    envs_list.set_defaults(handler=cmd_envs_list)
    prune = envs_sub.add_parser("prune", help="remove environments no current spec uses")
    prune.add_argument("--all", action="store_true", help="remove every stored environment")
    prune.set_defaults(handler=cmd_envs_prune)

    backends = sub.add_parser("backends", help="show each backend: found where, which version")
    backends.add_argument("--json", action="store_true", help="machine-readable output")
    backends.set_defaults(handler=cmd_backends)
    return parser


def cmd_spec(args: argparse.Namespace) -> int:
    from envassay.spec import load_spec

    spec = load_spec(args.spec)
    if args.json:
        print(json.dumps(spec.to_dict(), indent=2))
        return 0
    print(f"name:     {spec.name}")
    print(f"file:     {spec.path}")
    nodefaults = "  (nodefaults)" if spec.nodefaults else ""
    print(f"channels: {', '.join(spec.channels) or '(none)'}{nodefaults}")
    print("conda:")
    for dep in spec.conda:
        print(f"  {dep.normalized:<40} # {dep.text}")
    if spec.has_pip_section and not spec.declares_pip:
        print(
            "  pip                                      # added for the pip: section, as conda does"
        )
    if spec.pip:
        print("pip:")
        for req in spec.pip:
            print(f"  {req.text:<40} # {req.kind}")
    for key, value in spec.variables.items():
        print(f"variable: {key}={value}")
    print(f"hash:     {spec.content_hash}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from envassay.config import load_config
    from envassay.create import create_at, create_env
    from envassay.progress import ProgressLine
    from envassay.spec import load_spec

    spec = load_spec(args.spec)
    config = load_config()
    progress = ProgressLine()
    try:
        if args.prefix is not None:
            create_at(spec, config, args.prefix, backend_name=args.backend, progress=progress)
            print(f"created {spec.name} at {args.prefix.resolve()}")
            return 0
        ensured = create_env(spec, config, backend_name=args.backend, progress=progress)
    finally:
        progress.close()
    if ensured.reused:
        print(f"reused {spec.name} from the store (no solve, no link): {ensured.prefix}")
    else:
        print(f"created {spec.name} in {ensured.seconds:.1f}s: {ensured.prefix}")
    return 0


def cmd_envs_list(args: argparse.Namespace) -> int:
    from envassay.config import load_config
    from envassay.store import EnvStore

    store = EnvStore(load_config().store_path())
    entries = list(store.entries())
    if args.json:
        print(
            json.dumps(
                [
                    {"key": e.key, "prefix": str(e.prefix), "complete": e.complete, **e.meta}
                    for e in entries
                ],
                indent=2,
                default=str,
            )
        )
        return 0
    if not entries:
        print(f"the store at {store.root} is empty")
    for entry in entries:
        state = "complete" if entry.complete else "HALF-MADE (will be removed)"
        size = entry.size_bytes() / 1e6
        print(f"{entry.key:<60} {size:8.1f} MB  {state}  {entry.meta.get('spec', '')}")
    return 0


def cmd_envs_prune(args: argparse.Namespace) -> int:
    from envassay.backends import concrete_name, resolve_backend
    from envassay.config import load_config
    from envassay.create import plan, store_key
    from envassay.spec import load_spec
    from envassay.store import EnvStore

    config = load_config()
    store = EnvStore(config.store_path())
    keep: set[str] = set()
    backend = concrete_name(resolve_backend(None, config.backend))
    if not args.all:
        for path in config.spec_paths():
            try:
                spec = load_spec(path)
                keep.add(str(store_key(spec, backend, locked=plan(spec, config))))
            except UserError:
                continue  # a broken spec keeps nothing alive
    removed = 0
    for entry in store.entries():
        if entry.key not in keep or not entry.complete:
            store.remove(entry)
            removed += 1
            print(f"removed {entry.key}")
    print(f"{removed} environment(s) removed")
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from envassay.backends import available, concrete_name, resolve_backend
    from envassay.config import load_config

    found = available()
    chosen = resolve_backend(None, load_config().backend)
    if args.json:
        print(json.dumps({"in_force": chosen, "backends": [asdict(b) for b in found]}, indent=2))
        return 0
    for backend in found:
        print(f"{backend.name:<11} {backend.version or '-':<10} {backend.where}")
    picked = concrete_name(chosen)
    print(f"in force here: {chosen}" + (f" (picks {picked})" if picked != chosen else ""))
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from envassay.lockcmd import check_locks, write_locks

    if args.check:
        if args.platforms or args.force:
            raise UserError("--check takes no --platform or --force: it only reads")
        return check_locks(args.specs)
    return write_locks(args.specs, platforms=args.platforms, force=args.force)


def cmd_drift(args: argparse.Namespace) -> int:
    from envassay.lockcmd import report_drift

    return report_drift(args.specs, fail=args.fail, markdown=args.markdown)


def cmd_matrix(args: argparse.Namespace) -> int:
    from envassay.config import load_config
    from envassay.matrix import changed_since, plan_matrix, render

    config = load_config()
    changes = changed_since(config.root, args.changed_since) if args.changed_since else None
    entries = plan_matrix(
        config, args.specs, targets=args.targets, platforms=args.platforms, changes=changes
    )
    print(render(entries, args.fmt))
    if args.changed_since and not entries:
        print(f"envassay: nothing changed since {args.changed_since}: no jobs", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from envassay.runner import run_checks

    extra = list(args.pytest_args)
    return run_checks(
        args.specs,
        backend=args.backend,
        junitxml=args.junitxml,
        pytest_args=extra,
        targets=args.targets,
        image=args.image,
        builder_image=args.builder_image,
        runtime_image=args.runtime_image,
        creator=args.creator,
        gpu=args.gpu,
        jobs=args.jobs,
        report_md=args.report_md,
        report_json=args.report_json,
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--builder-image", metavar="REF", help="builder stage (default: per env, else miniconda3)"
    )
    parser.add_argument(
        "--runtime-image", metavar="REF", help="runtime stage image (default: per env, else Debian)"
    )
    parser.add_argument(
        "--creator",
        choices=["conda", "mamba", "micromamba", "envassay"],
        help="what creates the env in the builder (default: implied by the builder image)",
    )


def cmd_build(args: argparse.Namespace) -> int:
    from envassay.config import load_config
    from envassay.docker import shared_engine
    from envassay.image import engine_platform, ensure_image, plan_image, resolve_options
    from envassay.progress import ProgressLine
    from envassay.spec import load_spec

    spec = load_spec(args.spec)
    config = load_config()
    engine = shared_engine()
    options = resolve_options(
        config.env(spec.name),
        builder_image=args.builder_image,
        runtime_image=args.runtime_image,
        creator=args.creator,
    )
    plan = plan_image(spec, config, options, engine_platform(engine))
    progress = ProgressLine()
    try:
        result = ensure_image(plan, config.store_path(), engine=engine, progress=progress)
    finally:
        progress.close()
    if args.json:
        print(
            json.dumps(
                {
                    "ref": result.ref,
                    "id": result.info.id,
                    "reused": result.reused,
                    "seconds": round(result.seconds, 3),
                    "size": result.info.size,
                    "log": str(result.log_path) if result.log_path else None,
                }
            )
        )
    elif result.reused:
        print(f"reused {result.ref} (no build)")
    else:
        print(f"built {result.ref} in {result.seconds:.1f}s (log: {result.log_path})")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from envassay.probe import run_probe
    from envassay.probe.render import render_report
    from envassay.probe.report import PackageRequest, ProbeRequest
    from envassay.targets import DockerTarget, NativeTarget, Target

    request = ProbeRequest(packages=tuple(PackageRequest(name) for name in args.imports))
    target: Target
    if args.prefix.startswith("docker://"):
        from envassay.container import existing_image
        from envassay.docker import shared_engine
        from envassay.image import image_python

        image = args.prefix[len("docker://") :]
        info = existing_image(shared_engine(), image)
        target = DockerTarget(image, python=image_python(info))
    else:
        prefix = Path(args.prefix).expanduser().resolve()
        if not (prefix / "bin" / "python").exists():
            raise UserError(f"no bin/python in {prefix}", hint="give the prefix of an environment")
        target = NativeTarget(prefix)
    report = run_probe(target, request)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_report(report))
    return 0
