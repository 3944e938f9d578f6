"""A probe report as text a person reads (`envassay probe PREFIX`)."""

from __future__ import annotations

from envassay.probe.model import Distribution, ProbeReport


def render_report(report: ProbeReport) -> str:
    """Interpreter, conda records, pip-only distributions, imports: one line each."""
    lines: list[str] = []
    interp = report.interpreter
    if interp is not None:
        lines += [
            f"python      {interp.version} ({interp.implementation}) {interp.executable}",
            f"prefix      {interp.prefix}",
            f"platform    {interp.platform}",
        ]
    meta = "" if interp is None or interp.conda_meta else " (no conda-meta)"
    lines.append(f"conda       {len(report.conda_records)} package(s){meta}")
    for record in report.conda_records:
        modules = f"  -> {', '.join(record.python_modules)}" if record.python_modules else ""
        lines.append(f"  {record.name:<28} {record.version:<14} {record.build:<20}{modules}")
    lines.append(f"pip         {len(pip_only(report))} distribution(s) not from conda")
    for dist in pip_only(report):
        lines.append(f"  {dist.name:<28} {dist.version:<14} installer={dist.installer}")
    for result in report.imports:
        detail = result.error or (f"signal {result.signal}" if result.signal else "")
        lines.append(
            f"import      {result.module:<28} {result.status:<8} {result.seconds:.3f}s {detail}"
        )
    for section, error in report.errors.items():
        lines.append(f"error       {section}: {error.strip().splitlines()[-1]}")
    lines.append(f"probe took  {report.elapsed:.2f}s")
    return "\n".join(lines)


def pip_only(report: ProbeReport) -> list[Distribution]:
    """The distributions no conda record owns, as ``conda list`` tells pip's (``pypi``) from
    conda's: by the metadata directories among the records' files. A report without them
    (an older probe) falls back to the installer and the name."""
    owned = {path for record in report.conda_records for path in record.python_dists}
    if owned:
        return [d for d in report.distributions if d.metadata not in owned]
    conda_names = {r.name for r in report.conda_records}
    return [
        d
        for d in report.distributions
        if d.installer != "conda" and d.name.lower() not in conda_names
    ]
