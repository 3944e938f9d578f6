"""An env's own variables (the spec's `variables:`, a package's `etc/conda/env_vars.d/`)
are what `conda activate` / `conda run` export: envassay's creator writes them where
conda's `env create` does, and the native probe imports with them, so a package that
reads its variable at import gets the verdict `conda run` gives it.

Anchored on real conda: the same spec created by `conda env create` and by envassay
(rattler) holds the same `conda-meta/state`, and `conda run -p PREFIX python -c "import
X"` agrees with envassay's `import[X]` item, with the variables and without them.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from envassay.command import run
from envassay.docker import Engine
from envassay_testing import (
    LocalChannel,
    index_channel,
    make_generic_package,
    make_noarch_python_package,
    new_channel,
)
from tests.integration.envassay_cli import envassay, junit_outcomes
from tests.realconda import RealConda

pytestmark = [pytest.mark.channel, pytest.mark.slow]

# Imports only when activation exported both: the spec's NEEDSVAR (which overrides the
# package's value for it) and the package's SHIPPED.
USES = (
    "import os\n"
    "found = (os.environ.get('NEEDSVAR'), os.environ.get('SHIPPED'))\n"
    "if found != ('on', 'yes'):\n"
    "    raise ImportError(f'usesvar: activation variables missing: {found}')\n"
)
NEEDS = (
    "import os\n"
    "if os.environ.get('NEEDSVAR') != 'on':\n"
    "    raise ImportError('needsvar: NEEDSVAR is not on')\n"
)
SHIPPED = json.dumps({"SHIPPED": "yes", "NEEDSVAR": "from-package"})


@pytest.fixture(scope="module")
def var_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    channel = new_channel(tmp_path_factory.mktemp("varchannel"))
    make_generic_package(
        channel, "shipsvar", "1.0", files={"etc/conda/env_vars.d/shipsvar.json": SHIPPED}
    )
    make_noarch_python_package(
        channel, "usesvar", "1.0", files={"usesvar/__init__.py": USES}, depends=["shipsvar"]
    )
    make_noarch_python_package(channel, "needsvar", "1.0", files={"needsvar/__init__.py": NEEDS})
    index_channel(channel)
    return channel


def _spec(root: Path, channel: Path, test_channel: LocalChannel, variables: bool) -> Path:
    text = (
        "name: withvars\n"
        f"channels: [{channel.as_uri()}, {test_channel.url}]\n"
        "dependencies: [python=3.11, usesvar]\n"
    )
    if variables:
        text += "variables:\n  NEEDSVAR: 'on'\n  OTHER: ünïcode value\n"
    (root / "envs").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.envassay]\n")
    path = root / "envs" / "withvars.yml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("variables", [True, False], ids=["with-variables", "without"])
def test_the_import_verdict_is_conda_runs(
    tmp_path: Path,
    var_channel: Path,
    test_channel: LocalChannel,
    conda: RealConda,
    variables: bool,
) -> None:
    spec = _spec(tmp_path / "project", var_channel, test_channel, variables)
    env = conda.environ(os.environ, tmp_path / "pkgs")
    env["ENVASSAY_HOME"] = str(tmp_path / "store")
    env["CONDA_CHANNEL_ALIAS"] = "http://127.0.0.1:9"  # nothing leaves the machine
    env.pop("GITHUB_STEP_SUMMARY", None)

    conda_prefix = tmp_path / "by-conda"
    made = run([conda.path, "env", "create", "-p", conda_prefix, "-f", spec], env=env, timeout=600)
    assert made.ok, made.describe()
    ran = run(
        [conda.path, "run", "-p", conda_prefix, "python", "-c", "import usesvar"],
        env=env,
        timeout=300,
    )

    xml = tmp_path / "junit.xml"
    checked = envassay(
        "check", spec, "--backend", "rattler", "--junitxml", xml, env=env, cwd=spec.parent.parent
    )
    code, items, out = checked.returncode, junit_outcomes(xml), checked.stdout + checked.stderr
    assert items["import[usesvar]"][0] == ("passed" if ran.ok else "failure"), (ran, out)
    assert ran.ok is variables, ran.describe()
    assert code == (0 if variables else 1), out

    (ours,) = (p for p in (tmp_path / "store" / "envs").iterdir() if (p / "conda-meta").is_dir())
    state = ours / "conda-meta" / "state"
    if variables:
        expected = json.loads((conda_prefix / "conda-meta" / "state").read_text())
        assert json.loads(state.read_text()) == expected
        assert expected["env_vars"]["OTHER"] == "ünïcode value"
    else:
        assert not state.exists()


# A value that would add an instruction if it were written into a Dockerfile as text.
HOSTILE = 'x" \\\nRUN touch /pwned\n$HOME ${PATH} \\'


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_the_image_sets_the_specs_variables_as_activation_would(
    tmp_path: Path,
    var_channel: Path,
    test_channel: LocalChannel,
    base_image: str,
    engine: Engine,
    builder: str,
) -> None:
    """`docker run IMAGE python` runs without activation: the image's ENV carries the
    spec's variables (values as build arguments, never Dockerfile text)."""
    root = tmp_path / "project"
    (root / "envs").mkdir(parents=True)
    name = f"vars{builder}{uuid.uuid4().hex[:6]}"
    spec = root / "envs" / f"{name}.yml"
    spec.write_text(
        f"name: {name}\n"
        f"channels: [{var_channel.as_uri()}, {test_channel.url}]\n"
        "dependencies: [python=3.11, needsvar]\n"
        f"variables: {json.dumps({'NEEDSVAR': 'on', 'HOSTILE': HOSTILE, 'PATH': '/nowhere'})}\n"
    )
    (root / "pyproject.toml").write_text(
        f'[tool.envassay.envs.{name}]\nbuilder-image = "{base_image}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        ENVASSAY_HOME=str(tmp_path / "store"), ENVASSAY_BUILDKIT=str(int(builder == "buildkit"))
    )
    env.pop("GITHUB_STEP_SUMMARY", None)
    xml = tmp_path / "junit.xml"
    checked = envassay("check", "--target", "docker", spec, "--junitxml", xml, env=env, cwd=root)
    items = junit_outcomes(xml)
    assert items["import[needsvar]"][0] == "passed", checked.stdout + checked.stderr
    (image,) = engine.api.images(name=f"envassay/{name}", quiet=True)
    try:
        shown = engine.run(
            image,
            ["python", "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
            timeout=120,
        )
        seen = json.loads(shown.stdout)
        assert seen["HOSTILE"] == HOSTILE and seen["NEEDSVAR"] == "on"
        assert "/nowhere" not in seen["PATH"]  # reserved, as conda's activation keeps it
        assert (
            engine.run(
                image,
                ["python", "-c", "import os; assert not os.path.exists('/pwned')"],
                timeout=120,
            ).returncode
            == 0
        )
    finally:
        engine.api.remove_image(image, force=True)
