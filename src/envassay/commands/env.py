"""Env and store commands: `spec`, `create`, `envs list|prune`, `backends`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from envassay.errors import UserError
from envassay.run.options import add_backend, add_json

if TYPE_CHECKING:
    from envassay.lock.status import LockStatus
    from envassay.run.options import Subparsers
    from envassay.spec.config import Config
    from envassay.spec.environment import EnvSpec
    from envassay.store import EnvStore


def add_spec(sub: Subparsers) -> None:
    spec = sub.add_parser("spec", help="show a spec exactly as envassay reads it")
    spec.add_argument("spec", type=Path)
    add_json(spec)
    spec.set_defaults(handler=cmd_spec)


def add_create(sub: Subparsers) -> None:
    create = sub.add_parser("create", help="create the environment of a spec (cached in the store)")
    create.add_argument("spec", type=Path)
    create.add_argument("--prefix", type=Path, help="create here instead of in the store")
    create.add_argument(
        "--force", action="store_true", help="make the env again even if the store has it"
    )
    add_backend(create)
    create.set_defaults(handler=cmd_create)


def add_envs(sub: Subparsers) -> None:
    envs = sub.add_parser(
        "envs", help="show or remove what the store holds: environments, images, logs, caches"
    )
    envs_sub = envs.add_subparsers(dest="envs_command", required=True, metavar="ACTION")
    envs_list = envs_sub.add_parser(
        "list", help="list the store: environments, the images envassay built, logs, caches"
    )
    add_json(envs_list, help_text="the environments as JSON (with --full: everything)")
    envs_list.add_argument(
        "--full",
        action="store_true",
        help="with --json: one object with the environments, images, logs and caches",
    )
    envs_list.set_defaults(handler=cmd_envs_list)
    prune = envs_sub.add_parser(
        "prune",
        help="remove this project's environments that no current spec uses (never one in use, "
        "never an entry envassay did not make)",
    )
    prune.add_argument(
        "--all", action="store_true", help="remove this project's environments, used or not"
    )
    prune.add_argument(
        "--all-projects",
        action="store_true",
        help="consider the environments of every project on this store, not only this one's",
    )
    prune.add_argument(
        "--images",
        action="store_true",
        help="also remove from the Docker engine the images envassay built and recorded "
        "(by the same rules; never an image it did not build, nor one in use)",
    )
    prune.add_argument(
        "--logs",
        type=_days,
        metavar="DAYS",
        help="also remove image build logs older than DAYS days (0: all)",
    )
    prune.add_argument(
        "--caches",
        action="store_true",
        help="also delete the caches (packages, repodata, bytecode, wheels, image facts; "
        "all projects share them: the next create fills them again)",
    )
    prune.set_defaults(handler=cmd_envs_prune)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {text!r}")
    return days


def add_backends(sub: Subparsers) -> None:
    backends = sub.add_parser("backends", help="show each backend: found where, which version")
    add_json(backends)
    backends.set_defaults(handler=cmd_backends)


def cmd_spec(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay import redact
    from envassay.errors import UserError
    from envassay.spec.both import in_both
    from envassay.spec.config import load_config
    from envassay.spec.environment import load_spec
    from envassay.spec.resolve import channel_plan

    spec = load_spec(args.spec)
    both = in_both(spec)
    config = load_config()  # as `create` does: the project of the working directory
    try:
        plan = channel_plan(spec.path, spec.channels, spec.nodefaults, config)
        effective, priority, problem = plan.channels, plan.priority, None
    except UserError as exc:  # the spec reads; where its channels lead is shown as the error
        effective, priority, problem = (), None, exc.render()
    if args.json:
        data = spec.to_dict()
        data["effective_channels"] = [{**c.to_dict(), "url": redact.mask(c.url)} for c in effective]
        data["channel_priority"] = priority
        data["channels_error"] = problem
        data["in_both"] = [b.describe() for b in both]
        print(json.dumps(data, indent=2))
        return 0
    print(f"name:     {spec.name}")
    print(f"file:     {spec.path}")
    nodefaults = "  (nodefaults)" if spec.nodefaults else ""
    print(f"channels: {', '.join(spec.channels) or '(none)'}{nodefaults}")
    print(f"effective channels (conda's meaning; channel_priority {priority}):")
    for channel in effective:
        print(f"  {redact.mask(channel.url):<40} # {channel.written}: {channel.source}")
    if problem:
        print(f"  (cannot resolve: {problem})")
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
    for key, line in spec.other_installers:
        print(f"other:    {key}: (line {line}; not installed, as conda 26 skips it)")
    print(f"hash:     {spec.content_hash}")
    for item in both:  # pip over conda: named before anything is made
        print(f"{'warning' if item.contradict else 'note'}: {item.describe()}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay import rattler_client
    from envassay.lock.status import lock_for_create
    from envassay.spec.config import load_config
    from envassay.spec.environment import load_spec
    from envassay.spec.platforms import current_platform

    spec = load_spec(args.spec)
    config = load_config()
    lock = lock_for_create(spec, config, current_platform())  # a bad lock: exit 2 here, too
    # Bad input starts nothing; from here the default backend's worker starts at once, so
    # that its start-up and its import of rattler overlap ours (the rest of envassay's
    # imports, the store lookup): a third of a small create's time, measured. A reused
    # env needs none, and it is ended unused.
    if (args.backend or os.environ.get("ENVASSAY_BACKEND") or config.backend) == "rattler":
        rattler_client.prestart()
    try:
        return _create(args, spec, config, lock)
    finally:
        rattler_client.release()


def _create(args: argparse.Namespace, spec: EnvSpec, config: Config, lock: LockStatus) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.create.env import create_at, create_env
    from envassay.progress import ProgressLine

    progress = ProgressLine()
    try:
        if args.prefix is not None:
            create_at(
                spec, config, args.prefix, backend_name=args.backend, progress=progress, lock=lock
            )
            print(f"created {spec.name} at {args.prefix.resolve()}")
            return 0
        ensured = create_env(
            spec, config, backend_name=args.backend, progress=progress, lock=lock, force=args.force
        )
    finally:
        progress.close()
    ensured.lease.release()
    if ensured.reused:
        print(f"reused {spec.name} from the store (no solve, no link): {ensured.prefix}")
    else:
        print(f"created {spec.name} in {ensured.seconds:.1f}s: {ensured.prefix}")
    return 0


def cmd_envs_list(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.spec.config import load_config
    from envassay.store import EnvStore
    from envassay.store.images import image_records
    from envassay.store.inventory import build_logs, caches

    store = EnvStore(load_config().store_path())
    entries = list(store.entries())
    envs = [
        {"key": e.key, "prefix": str(e.prefix), "complete": e.complete, **e.meta} for e in entries
    ]
    images = image_records(store.layout)
    logs, cached = build_logs(store.layout), caches(store.layout)
    if args.json:
        data: object = envs
        if args.full:
            data = {
                "store": str(store.root),
                "envs": [
                    {**e, "size": entry.size_bytes()}
                    for e, entry in zip(envs, entries, strict=True)
                ],
                "images": [r.__dict__ for r in images],
                "logs": [{"path": str(i.path), "size": i.size, "mtime": i.mtime} for i in logs],
                "caches": [{"name": i.name, "path": str(i.path), "size": i.size} for i in cached],
            }
        print(json.dumps(data, indent=2, default=str))
        return 0
    if not entries:
        empty = not (images or logs or cached)
        print(f"the store at {store.root} is empty" if empty else f"no envs in {store.root}")
    for entry in entries:
        state = "complete" if entry.complete else "HALF-MADE (will be removed)"
        if entry.kind != "env":
            state = f"{entry.kind.upper()} (not envassay's; never touched)"
        size = entry.size_bytes() / 1e6
        print(f"{entry.key:<60} {size:8.1f} MB  {state}  {entry.meta.get('spec', '')}")
    if images:
        print("images envassay built (as recorded; `prune --images` removes them):")
    for record in images:
        short = record.id.rpartition(":")[2][:12] or "(no id)"
        print(f"  {record.ref:<58} {short:<12}  {record.spec}")
    if logs:
        total = sum(i.size for i in logs) / 1e6
        where = store.layout.logs
        print(f"build logs: {len(logs)}, {total:.1f} MB in {where} (`prune --logs DAYS`)")
    if cached:
        print("caches (`prune --caches`):")
    for item in cached:
        print(f"  {item.name:<58} {item.size / 1e6:8.1f} MB")
    return 0


def cmd_envs_prune(args: argparse.Namespace) -> int:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.create.backends import concrete_name, resolve_backend
    from envassay.create.env import plan, store_key
    from envassay.spec.config import load_config
    from envassay.spec.environment import load_spec
    from envassay.spec.resolve import spec_channel_plan
    from envassay.store import EnvStore
    from envassay.store.inventory import belongs_to

    config = load_config()
    store = EnvStore(config.store_path())
    keep: set[str] = set()
    backend = concrete_name(resolve_backend(None, config.backend))
    if not args.all:
        for path in config.spec_paths():
            try:
                spec = load_spec(path)
                channels = spec_channel_plan(spec, config)
                key = store_key(spec, backend, locked=plan(spec, config), channels=channels)
                keep.add(str(key))
            except UserError:
                continue  # a broken spec keeps nothing alive
    removed = others = 0
    for entry in store.entries():
        if entry.kind == "symlink":
            print(f"refused {entry.key}: a symlink (never followed; not made by envassay)")
            continue
        if entry.kind == "foreign":
            print(f"refused {entry.key}: not made by envassay (no envassay marker)")
            continue
        if not args.all_projects and not belongs_to(
            entry.project, entry.meta.get("spec"), config.root
        ):
            others += 1
            continue
        if entry.key in keep and entry.complete:
            continue
        if store.remove(entry):
            removed += 1
            print(f"removed {entry.key}")
        else:
            print(f"kept {entry.key}: in use (a check or create holds it)")
    tail = f"; {others} of other projects kept (--all-projects)" if others else ""
    print(f"{removed} environment(s) removed{tail}")
    from envassay.create.backends.bytecode import remove_leftovers

    if leftovers := remove_leftovers(store.cache_dir):
        print(f"{leftovers} leftover(s) of killed creators removed from the pyc cache")
    from envassay.store.inventory import remove_stale_contexts

    if contexts := remove_stale_contexts(store.layout):
        print(f"{contexts} scratch folder(s) of killed builds and creates removed")
    if args.images:
        _prune_images(args, store, config)
    if args.logs is not None:
        _prune_logs(store, args.logs)
    if args.caches:
        _prune_caches(store)
    return 0


def _prune_images(args: argparse.Namespace, store: EnvStore, config: Config) -> None:
    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.docker import EngineUnavailable, shared_engine
    from envassay.run.prune import prune_images

    try:
        engine = shared_engine()
        pruned = prune_images(
            store,
            config,
            engine,
            everything=args.all,
            all_projects=args.all_projects,
            say=print,
        )
    except EngineUnavailable as exc:
        print(f"no image removed: {exc.render()}")
        return
    tail = f"; {pruned.others} of other projects kept (--all-projects)" if pruned.others else ""
    print(f"{len(pruned.removed)} image(s) removed{tail}")


def _prune_logs(store: EnvStore, days: float) -> None:
    from envassay.store.inventory import old_logs, remove_logs

    removed = remove_logs(old_logs(store.layout, days))
    print(f"{removed} build log(s) older than {days:g} day(s) removed")


def _prune_caches(store: EnvStore) -> None:
    from envassay.store.inventory import builders_running, caches, remove_cache

    if busy := builders_running(store.layout):
        print(f"caches kept: {len(busy)} build(s) running now ({', '.join(busy)}); try again later")
        return
    removed = 0
    for item in caches(store.layout):
        if remove_cache(store.layout, item):
            removed += item.size
            print(f"removed cache {item.name} ({item.size / 1e6:.1f} MB)")
        else:
            print(f"refused cache {item.name}: a symlink (never followed)")
    print(f"caches deleted: {removed / 1e6:.1f} MB freed")


def cmd_backends(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    # Deferred: start-up cost; only the chosen subcommand's modules load.
    from envassay.create.backends import available, concrete_name, resolve_backend
    from envassay.spec.config import load_config

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
