"""The host-side model of the probe's request and report."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from envassay.probe import (
    PackageRequest,
    ProbeError,
    ProbeReport,
    ProbeRequest,
    default_timeout,
)

DOC: dict[str, Any] = {
    "probe_version": 2,
    "interpreter": {
        "version": "3.11.7",
        "implementation": "cpython",
        "executable": "/opt/env/bin/python",
        "prefix": "/opt/env",
        "base_prefix": "/opt/env",
        "platform": "linux-x86_64",
        "markers": {"python_version": "3.11", "sys_platform": "linux"},
        "virtual_packages": {"__unix": "0", "__linux": "6.1.0", "__glibc": "2.36"},
        "conda_meta": True,
    },
    "site_packages": ["/opt/env/lib/python3.11/site-packages"],
    "conda_records": [
        {
            "name": "pyyaml",
            "version": "6.0.1",
            "build": "py311h459d7ec_1",
            "channel": "https://conda.anaconda.org/conda-forge",
            "depends": ["python >=3.11,<3.12.0a0", "yaml >=0.2.5,<0.3.0a0"],
            "subdir": "linux-64",
            "url": None,
            "requested_spec": None,
            "python_modules": ["yaml"],
            "constrains": ["pyyaml-ft <0"],
            "build_number": 1,
            "python_dists": ["/opt/env/lib/python3.11/site-packages/PyYAML-6.0.1.dist-info"],
        }
    ],
    "distributions": [
        {
            "name": "PyYAML",
            "version": "6.0.1",
            "requires": [],
            "top_level": ["yaml"],
            "installer": "conda",
            "location": "/opt/env/lib/python3.11/site-packages",
            "metadata": "/opt/env/lib/python3.11/site-packages/PyYAML-6.0.1.dist-info",
            "shadows": [],
        }
    ],
    "packages": {
        "pyyaml": {"manager": "conda", "status": "python", "modules": ["yaml"], "via": []},
        "openssl": {"manager": "conda", "status": "missing", "modules": [], "via": []},
    },
    "imports": [
        {
            "module": "yaml",
            "package": "pyyaml",
            "status": "crashed",
            "error": "killed by signal SIGSEGV",
            "signal": 11,
            "seconds": 0.01,
        }
    ],
    "warnings": ["conda-meta/bad.json: JSONDecodeError: ..."],
    "elapsed": 0.25,
}


def parse(doc: dict[str, Any]) -> ProbeReport:
    return ProbeReport.from_json(json.dumps(doc))


def broken(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """DOC with the value at ``path`` replaced (or removed, for ``...``)."""
    doc = copy.deepcopy(DOC)
    *parents, last = path
    where: Any = doc
    for key in parents:
        where = where[key]
    if value is ...:
        del where[last]
    else:
        where[last] = value
    return doc


def test_report_is_typed() -> None:
    report = parse(DOC)
    assert report.interpreter is not None
    assert report.interpreter.markers["python_version"] == "3.11"
    record = report.conda_record("PyYAML")
    assert record is not None
    assert record.python_modules == ("yaml",)
    assert record.depends[1] == "yaml >=0.2.5,<0.3.0a0"
    assert report.packages["openssl"].status == "missing"
    assert report.packages["pyyaml"].name == "pyyaml"
    (crash,) = report.imports_of("pyyaml")
    assert (crash.status, crash.signal, crash.ok) == ("crashed", 11, False)
    assert report.errors == {}


def test_distribution_lookup_uses_normalized_names() -> None:
    report = parse(DOC)
    assert report.distribution("pyyaml") is report.distributions[0]
    assert report.distribution("py-yaml") is None


def test_to_dict_is_the_probe_document() -> None:
    assert parse(DOC).to_dict() == DOC


def test_noise_before_the_document_is_tolerated() -> None:
    text = "something a .pth file printed\n" + json.dumps(DOC) + "\n"
    assert ProbeReport.from_json(text).to_dict() == DOC


def test_a_failed_section_is_kept_as_an_error() -> None:
    doc = broken(("distributions",), {"error": "Traceback ...\nOSError: nope"})
    report = parse(doc)
    assert report.errors == {"distributions": "Traceback ...\nOSError: nope"}
    assert report.distributions == ()
    assert report.conda_records != ()
    assert report.to_dict() == doc


def test_a_failed_interpreter_section_reads_as_none() -> None:
    report = parse(broken(("interpreter",), {"error": "boom"}))
    assert report.interpreter is None
    assert report.errors == {"interpreter": "boom"}


def test_a_probe_that_failed_as_a_whole_is_an_error() -> None:
    with pytest.raises(ProbeError, match="failed inside the target: Traceback"):
        ProbeReport.from_json(json.dumps({"probe_version": 2, "error": "Traceback ..."}))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("probe_version",), 3, "probe_version 3, this envassay reads 2"),
        (("probe_version",), ..., r"report.probe_version: expected int, got None"),
        (("imports", 0, "status"), "fine", r"report.imports\[0\].status: expected one of"),
        (("conda_records", 0, "version"), ..., r"report.conda_records\[0\].version: expected str"),
        (
            ("packages", "pyyaml", "modules"),
            "yaml",
            r"report.packages.pyyaml.modules: expected list",
        ),
        (("imports", 0, "signal"), True, r"report.imports\[0\].signal: expected int, got True"),
        (("distributions",), {"name": "x"}, r"report.distributions: expected list"),
        (("interpreter", "markers"), [], r"report.interpreter.markers: expected an object"),
        (("imports",), ..., r"report.imports: expected list, got None"),
        (("warnings",), ..., r"report.warnings: expected list, got None"),
    ],
)
def test_malformed_reports_name_the_field(
    path: tuple[str | int, ...], value: object, message: str
) -> None:
    with pytest.raises(ProbeError, match=f"malformed probe output: {message}"):
        parse(broken(path, value))


def test_malformed_output_shows_its_first_500_characters() -> None:
    text = "Traceback (most recent call last):" + "x" * 1000
    with pytest.raises(ProbeError) as caught:
        ProbeReport.from_json(text)
    message = str(caught.value)
    assert "not a JSON object" in message
    assert "Traceback (most recent call last):" in message
    assert "x" * (500 - 34) in message
    assert "x" * (500 - 33) not in message


def test_request_json() -> None:
    request = ProbeRequest(
        packages=(PackageRequest("numpy"), PackageRequest("requests", "pip")),
        modules={"torch": ("torch.nn",)},
        rename={"somepkg": ("realmodule",)},
        skip=frozenset({"nopython", "alsonot"}),
        timeout=5.0,
    )
    assert json.loads(request.to_json()) == {
        "packages": [{"name": "numpy", "manager": "conda"}, {"name": "requests", "manager": "pip"}],
        "modules": {"torch": ["torch.nn"]},
        "rename": {"somepkg": ["realmodule"]},
        "skip": ["alsonot", "nopython"],
        "timeout": 5.0,
    }


def test_default_timeout_allows_every_module_to_time_out() -> None:
    request = ProbeRequest(
        packages=(PackageRequest("a"), PackageRequest("b")),
        modules={"a": ("a.x", "a.y")},
        timeout=10.0,
    )
    assert default_timeout(request) >= 4 * 10.0
    assert default_timeout(ProbeRequest(timeout=10.0)) > 10.0
