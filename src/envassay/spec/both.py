"""A package named in both the conda part and the pip: section of one spec.

conda installs first, then pip; pip keeps conda's distribution when conda's version
satisfies the pip line, and otherwise uninstalls conda's files and installs its own: the
env then holds a distribution of both (``health[conda-pip]`` fails). When no version can
satisfy both lines, that is certain, and ``envassay spec`` says so before anything is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from envassay.spec.environment import CondaDependency, EnvSpec, PipRequirement

# Version-shaped words in either line: the versions worth trying against both.
_VERSION = re.compile(r"\d+(?:\.\d+)*(?:(?:a|b|rc|\.post|\.dev)\d+)?")


@dataclass(frozen=True)
class InBoth:
    """One name in both sections, and whether the two lines contradict each other."""

    conda: CondaDependency
    pip: PipRequirement
    contradict: bool

    def describe(self) -> str:
        both = f"`{self.conda.text}` (conda) and `{self.pip.text}` (pip)"
        if self.contradict:
            return (
                f"{both} contradict: no version satisfies both, so pip installs its own"
                " over conda's and the env holds a distribution of both (health[conda-pip]"
                " fails); keep the package in one section"
            )
        return (
            f"{both} name one package: pip replaces conda's unless conda's version satisfies both"
        )


def in_both(spec: EnvSpec) -> list[InBoth]:
    """Every conda dependency that a pip requirement of the same name also asks for."""
    conda = {canonicalize_name(d.name): d for d in spec.conda}
    found: list[InBoth] = []
    for req in spec.pip:
        if req.kind != "requirement" or req.name is None:
            continue
        dep = conda.get(canonicalize_name(req.name))
        if dep is not None:
            found.append(InBoth(dep, req, _contradict(dep, req)))
    return found


def _contradict(dep: CondaDependency, req: PipRequirement) -> bool:
    """Whether no version tried satisfies both lines: those written in either, and one
    step past each (``>6`` and ``<7`` meet at 6.1). A line that names no version
    contradicts nothing."""
    from rattler import MatchSpec, VersionSpec
    from rattler import Version as CondaVersion

    try:
        conda_version = MatchSpec(dep.normalized).version
        pip_specifier = Requirement(req.text.split(" --", 1)[0]).specifier
    except Exception:  # rattler's own error kinds; a bad line is reported where it is read
        return False
    if not conda_version or not str(pip_specifier):
        return False
    conda_spec = VersionSpec(str(conda_version))
    for text in _candidates(f"{conda_version} {pip_specifier}"):
        try:
            in_conda = conda_spec.matches(CondaVersion(text))
            in_pip = pip_specifier.contains(Version(text), prereleases=True)
        except Exception:  # a word conda or pip cannot read as a version: the next one
            continue
        if in_conda and in_pip:
            return False
    return True


def _candidates(text: str) -> list[str]:
    """The versions written in ``text``, each with one a step above it and one just past it."""
    found: list[str] = []
    for version in _VERSION.findall(text):
        parts = version.split(".")
        if parts[-1].isdigit():
            found += [version, f"{version}.1", ".".join([*parts[:-1], str(int(parts[-1]) + 1)])]
        else:
            found.append(version)
    return found
