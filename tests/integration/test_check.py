"""`envassay check` end to end: real envs, the real probe, verdicts read back from JUnit XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from envassay_testing.wheels import make_wheel
from tests.conftest import Project
from tests.integration.envassay_cli import check, envassay, pip_install

pytestmark = pytest.mark.channel


def test_good_env_passes_every_item(project: Project, envassay_env: dict[str, str]) -> None:
    deps = ["python=3.11", "numpy>=1.24,<2", "pyyaml", "beautifulsoup4", "datatools", "nopython"]
    # pip and setuptools both declared: importing pip first would break setuptools' import.
    spec = project.spec("good", [*deps, "pip", "setuptools"])
    code, items, output = check(project, envassay_env, spec)
    assert code == 0, output
    assert items["import[numpy]"][0] == "passed"
    assert items["import[pyyaml]"][0] == "passed"
    assert items["import[datatools]"][0] == "passed"  # a metapackage, followed
    assert items["import[setuptools]"][0] == "passed"
    assert items["import[pip]"][0] == "passed"
    assert items["import[nopython]"] == ("skipped", items["import[nopython]"][1])
    assert "not a Python package" in items["import[nopython]"][1]
    assert items["pin[numpy>=1.24,<2]"][0] == "passed"
    assert items["health[pip]"][0] == "passed"
    assert items["health[conda]"][0] == "passed"


def test_broken_packages_fail_exactly_their_items(
    project: Project, envassay_env: dict[str, str]
) -> None:
    project.settings("[tool.envassay.envs.broken]\nimport-timeout = 3")
    spec = project.spec(
        "broken", ["python=3.11", "brokenraise", "brokensegv", "brokenhang", "numpy", "pyyaml"]
    )
    code, items, output = check(project, envassay_env, spec)
    assert code == 1, output
    raise_outcome, raise_message = items["import[brokenraise]"]
    assert raise_outcome == "failure" and "brokenraise is broken on purpose" in raise_message
    segv_outcome, segv_message = items["import[brokensegv]"]
    assert segv_outcome == "failure" and "signal 11" in segv_message
    hang_outcome, hang_message = items["import[brokenhang]"]
    assert hang_outcome == "failure" and "timed out" in hang_message
    # The modules after the crash and the hang still ran, in the same check.
    assert items["import[numpy]"][0] == "passed"
    assert items["import[pyyaml]"][0] == "passed"
    failures = sorted(name for name, (outcome, _) in items.items() if outcome == "failure")
    assert failures == ["import[brokenhang]", "import[brokenraise]", "import[brokensegv]"]


def test_unmet_requires_dist_fails_health_pip(
    project: Project, envassay_env: dict[str, str]
) -> None:
    spec = project.spec("unhealthy", ["python=3.11", "needsmissing"])
    code, items, output = check(project, envassay_env, spec)
    assert code == 1, output
    outcome, message = items["health[pip]"]
    assert outcome == "failure" and "notinstalled-dist" in message


def test_mutated_env_fails_its_pin_with_expected_and_found(
    project: Project, envassay_env: dict[str, str], tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "pinned-tool", "1.0", files={"pinned_tool.py": ""})
    make_wheel(wheels, "pinned-tool", "2.0", files={"pinned_tool.py": ""})
    spec = project.spec(
        "mutated",
        ["python=3.11", "oldpkg=1.0"],
        pip=["--no-index", f"--find-links {wheels}", "pinned-tool<2"],
    )
    code, items, output = check(project, envassay_env, spec)
    assert code == 0, output
    prefix = Path(next(line for line in output.splitlines() if "linking into" in line).split()[-1])
    # Someone "fixes" the env by hand after it was created.
    upgrade = pip_install(prefix, "--no-index", "--find-links", wheels, "pinned-tool==2.0")
    assert upgrade.ok, upgrade.describe()
    code, items, output = check(project, envassay_env, spec)
    assert code == 1, output
    outcome, message = items["pin[pinned-tool<2]"]
    assert outcome == "failure"
    assert "expected pinned-tool<2; found pinned-tool 2.0" in message
    assert items["pin[oldpkg=1.0]"][0] == "passed"


def test_bad_spec_is_exit_2_one_line(project: Project, envassay_env: dict[str, str]) -> None:
    spec = project.root / "envs" / "bad.yml"
    spec.write_text("dependencies:\n  - 'numpy>=>1'\n")
    code, _, output = check(project, envassay_env, spec)
    assert code == 2, output
    assert "invalid conda MatchSpec 'numpy>=>1'" in output
    assert "Traceback" not in output


def test_probe_command_prints_facts(project: Project, envassay_env: dict[str, str]) -> None:
    spec = project.spec("probed", ["python=3.11", "pyyaml"])
    created = envassay("create", spec, env=envassay_env, cwd=project.root)
    assert created.ok, created.describe()
    prefix = created.stdout.strip().rsplit(": ", 1)[1]
    text = envassay("probe", prefix, "--import", "pyyaml", env=envassay_env, cwd=project.root)
    assert text.ok, text.describe()
    assert "pyyaml" in text.stdout and "yaml" in text.stdout
    as_json = envassay("probe", prefix, "--json", env=envassay_env, cwd=project.root)
    assert '"probe_version": 2' in as_json.stdout
    missing = envassay("probe", project.root / "nope", env=envassay_env, cwd=project.root)
    assert missing.returncode == 2 and "no bin/python" in missing.stderr
