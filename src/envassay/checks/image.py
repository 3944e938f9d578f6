"""Image hygiene checks: ImageFacts + spec + settings -> image[user|clean|entrypoint|labels|size].

Pure functions, like :mod:`envassay.checks`; the facts are gathered by
:func:`envassay.targets.image.gather_facts`; their model is :mod:`envassay.imagedata`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envassay.checks import CheckResult, failed, passed, skipped
from envassay.imagedata import (
    LABEL_LOCK_HASH,
    LABEL_SPEC_HASH,
    LABEL_SPEC_NAME,
    OCI_LABELS,
    ImageFacts,
)
from envassay.spec.config import EnvSettings
from envassay.spec.environment import EnvSpec

# /tmp, /var/tmp and the home directory may hold this much (repo2docker's check-tmp: 1 MB).
NEARLY_EMPTY_BYTES = 1024 * 1024
_ROOT_USERS = ("", "0", "root")


def image_checks(
    facts: ImageFacts, spec: EnvSpec, settings: EnvSettings, lock_hash: str | None
) -> list[CheckResult]:
    """Every image check, in a fixed order. ``lock_hash``: the lock's digest, None if no lock."""
    return [
        check_user(facts),
        check_clean(facts),
        check_entrypoint(facts),
        check_labels(facts, spec, lock_hash),
        check_size(facts, spec, settings),
    ]


def check_user(facts: ImageFacts) -> CheckResult:
    configured = facts.info.user or "unset (root)"
    if facts.plain.ok and facts.plain.uid is not None:
        if facts.plain.uid == 0:
            return failed(
                "image",
                "user",
                f"runs as root (uid 0); Config.User is {configured}; add a non-root USER",
            )
        return passed("image", "user", f"runs as {facts.plain.user} (uid {facts.plain.uid})")
    # python did not run (image[entrypoint] says why): judge the configured user alone.
    if facts.info.user.split(":", 1)[0] in _ROOT_USERS:
        return failed("image", "user", f"Config.User is {configured}: the image runs as root")
    return passed("image", "user", f"Config.User is {facts.info.user}")


def check_clean(facts: ImageFacts) -> CheckResult:
    if facts.scan is None:
        return failed("image", "clean", f"could not scan the image: {facts.scan_error}")
    problems = [
        f"{c['kind']} left at {c['path']}: {_size(c['bytes'])} in {c['files']} file(s)"
        for c in _caches(facts.scan)
    ]
    sizes = []
    for entry in _dirs(facts.scan):
        if not entry.get("exists"):
            continue
        sizes.append(f"{entry['path']} {_size(entry['bytes'])}")
        if entry["bytes"] > NEARLY_EMPTY_BYTES:
            largest = ", ".join(f"{p} {_size(b)}" for p, b in entry.get("largest", [])[:3])
            problems.append(
                f"{entry['path']} holds {_size(entry['bytes'])}"
                f" (more than {_size(NEARLY_EMPTY_BYTES)}; largest: {largest})"
            )
    if problems:
        return failed("image", "clean", "; ".join(problems), problems=problems)
    return passed("image", "clean", f"no package caches; {', '.join(sizes)}")


def check_entrypoint(facts: ImageFacts) -> CheckResult:
    plain = facts.plain
    if not plain.ok:
        return failed(
            "image", "entrypoint", f"`docker run {facts.ref} python -c ...` failed: {plain.error}"
        )
    if facts.prefix and plain.prefix.rstrip("/") != facts.prefix.rstrip("/"):
        return failed(
            "image",
            "entrypoint",
            f"`python` is {plain.executable} (sys.prefix {plain.prefix}), not the env at"
            f" {facts.prefix}; put {facts.prefix}/bin first on PATH",
        )
    return passed(
        "image", "entrypoint", f"`python` is {plain.executable}: the env, with no activation"
    )


def check_labels(facts: ImageFacts, spec: EnvSpec, lock_hash: str | None) -> CheckResult:
    labels = facts.info.labels
    wanted: list[str] = [*OCI_LABELS, LABEL_SPEC_NAME, LABEL_SPEC_HASH]
    if lock_hash:
        wanted.append(LABEL_LOCK_HASH)
    missing = [key for key in wanted if not labels.get(key)]
    problems = [f"missing label(s): {', '.join(missing)}"] if missing else []
    spec_label = labels.get(LABEL_SPEC_HASH)
    if spec_label and spec_label != spec.content_hash:
        problems.append(
            f"{LABEL_SPEC_HASH} is {spec_label[:16]}…, but {spec.path.name} hashes to"
            f" {spec.content_hash[:16]}…: the image was built from another spec"
        )
    lock_label = labels.get(LABEL_LOCK_HASH)
    if lock_hash and lock_label and lock_label != lock_hash:
        problems.append(
            f"{LABEL_LOCK_HASH} is {lock_label[:16]}…, but the lock's is {lock_hash[:16]}…:"
            " the image was built from another lock"
        )
    if problems:
        return failed("image", "labels", "; ".join(problems))
    shown = {
        "revision": labels.get(OCI_LABELS[1], "")[:12],
        "created": labels.get(OCI_LABELS[2], ""),
        "lock": (lock_label or "no lock")[:16],
    }
    return passed("image", "labels", ", ".join(f"{k} {v}" for k, v in shown.items()))


def check_size(facts: ImageFacts, spec: EnvSpec, settings: EnvSettings) -> CheckResult:
    size_mb = facts.info.size / 1e6
    budget = settings.size_budget_mb
    if budget is None:
        return skipped(
            "image",
            "size",
            f"no size budget: set size-budget-mb in [tool.envassay.envs.{spec.name}]"
            f" (the image is {size_mb:.1f} MB)",
        )
    if size_mb > budget:
        return failed(
            "image", "size", f"the image is {size_mb:.1f} MB, over its budget of {budget:g} MB"
        )
    return passed("image", "size", f"the image is {size_mb:.1f} MB of a {budget:g} MB budget")


def _caches(scan: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    caches = scan.get("caches") or []
    return [c for c in caches if isinstance(c, Mapping)]


def _dirs(scan: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    dirs = scan.get("dirs") or []
    return [d for d in dirs if isinstance(d, Mapping)]


def _size(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"
