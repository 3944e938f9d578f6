"""One distribution installed by both conda and pip: the classic broken conda env.

conda tells its distributions from pip's by the files its records own (``conda list``
shows a metadata directory no record owns as a ``pypi`` package); pip, asked for a
version other than conda's, uninstalls conda's files and puts its own in their place,
or installs beside them on another path. Either way conda-meta and what Python imports
disagree. :func:`overlaps` finds them (data); ``health[conda-pip]`` words them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from envassay.probe.model import CondaRecord, Distribution, ProbeReport


@dataclass(frozen=True)
class Overlap:
    """A conda record's distribution also installed by pip, and which one Python imports."""

    record: CondaRecord
    dist_name: str
    pip_version: str
    pip_path: str
    imported: str  # "pip" | "conda"
    conda_present: bool  # conda's metadata directory is still on disk

    def describe(self) -> str:
        conda = f"conda's {self.record.name} {self.record.version}"
        pip = f"pip's {self.dist_name} {self.pip_version} ({self.pip_path})"
        if not self.conda_present:
            how = f"{pip} replaced the files of {conda}"
        elif self.imported == "pip":
            how = f"{pip} shadows {conda}"
        else:
            how = f"{conda} shadows {pip}"
        version = self.pip_version if self.imported == "pip" else self.record.version
        return f"{how}; Python imports {version} ({self.imported}'s)"


def metadata_name_version(path: str) -> tuple[str, str]:
    """(name, version) from a metadata directory's name: ``PyYAML-6.0.1.dist-info``,
    ``six-1.16.0-py3.11.egg-info`` (the name's own dashes are escaped as ``_``)."""
    stem = os.path.basename(path.rstrip("/\\")).rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    return name, rest.split("-", 1)[0]


def overlaps(report: ProbeReport) -> list[Overlap]:
    """Every distribution that a conda record owns and pip installed too."""
    owned = {path for record in report.conda_records for path in record.python_dists}
    dists = {canonicalize_name(d.name): d for d in report.distributions}
    found: list[Overlap] = []
    for record in report.conda_records:
        for path in record.python_dists:
            dist = dists.get(canonicalize_name(metadata_name_version(path)[0]))
            if dist is not None:
                found.extend(_overlap(record, path, dist, owned))
    return found


def _overlap(
    record: CondaRecord, conda_path: str, dist: Distribution, owned: set[str]
) -> Iterable[Overlap]:
    installed = [dist.metadata, *dist.shadows]
    foreign = [p for p in installed if p and p not in owned]
    if not foreign:
        return []
    imported = "pip" if dist.metadata in foreign else "conda"
    pip_path = foreign[0]
    version = dist.version if pip_path == dist.metadata else metadata_name_version(pip_path)[1]
    conda_present = conda_path in installed
    return [Overlap(record, dist.name, version, pip_path, imported, conda_present)]


def by_name(found: Iterable[Overlap]) -> dict[str, Overlap]:
    """Each overlap under its conda package's name and its distribution's (normalised)."""
    table: dict[str, Overlap] = {}
    for overlap in found:
        table.setdefault(canonicalize_name(overlap.record.name), overlap)
        table.setdefault(canonicalize_name(overlap.dist_name), overlap)
    return table
