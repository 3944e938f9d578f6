"""A realistic-size local channel: ~45 real PyPI binary wheels of a data-science stack
repackaged as conda packages (envassay_testing converts them), cached under
~/.cache/envassay-bench/. Not a benchmark itself: docker_realistic.py uses it.

    python benchmarks/realistic_channel.py    # build (or reuse) it and print its path
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import envassay_testing  # noqa: F401
except ImportError:  # a checkout not installed editable (envassay_testing is never installed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from envassay_testing.channel import index_channel, make_python_package, package_from_wheel

# Pinned, so every run measures the same bytes. Binary wheels for the host's CPython 3.11.
WHEELS = (
    "numpy==1.26.4",
    "scipy==1.11.4",
    "pandas==2.1.4",
    "python-dateutil==2.8.2",
    "pytz==2023.3.post1",
    "tzdata==2023.4",
    "six==1.16.0",
    "matplotlib==3.8.2",
    "contourpy==1.2.0",
    "cycler==0.12.1",
    "fonttools==4.47.0",
    "kiwisolver==1.4.5",
    "packaging==23.2",
    "pillow==10.2.0",
    "pyparsing==3.1.1",
    "scikit-learn==1.3.2",
    "joblib==1.3.2",
    "threadpoolctl==3.2.0",
    "statsmodels==0.14.1",
    "patsy==0.5.6",
    "h5py==3.10.0",
    "sympy==1.12",
    "mpmath==1.3.0",
    "networkx==3.2.1",
    "pyyaml==6.0.1",
    "requests==2.31.0",
    "urllib3==2.1.0",
    "idna==3.6",
    "certifi==2023.11.17",
    "charset-normalizer==3.3.2",
    "attrs==23.2.0",
    "jinja2==3.1.3",
    "markupsafe==2.1.3",
    "tqdm==4.66.1",
    "click==8.1.7",
    "numexpr==2.8.8",
    "bottleneck==1.3.7",
    "seaborn==0.13.1",
    "setuptools==69.0.3",
    "wheel==0.42.0",
    "pip==23.3.2",
    "lxml==5.1.0",
    "psutil==5.9.7",
)
# Import names of the packages a spec declares (its `dependencies:`), checked one by one.
IMPORTS = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "matplotlib": "matplotlib",
    "scikit-learn": "sklearn",
    "statsmodels": "statsmodels",
    "h5py": "h5py",
    "sympy": "sympy",
    "networkx": "networkx",
    "pyyaml": "yaml",
    "requests": "requests",
    "jinja2": "jinja2",
    "tqdm": "tqdm",
    "click": "click",
    "numexpr": "numexpr",
    "bottleneck": "bottleneck",
    "seaborn": "seaborn",
    "lxml": "lxml",
    "psutil": "psutil",
    "pillow": "PIL",
    "attrs": "attrs",
    "setuptools": "setuptools",
}
CACHE = Path.home() / ".cache" / "envassay-bench"


def realistic_channel() -> Path:
    """The channel's directory, built once (pip download + conversion, ~1-2 min)."""
    key = hashlib.sha256(json.dumps([WHEELS, sys.version]).encode()).hexdigest()[:12]
    final = CACHE / f"realistic-{key}"
    if (final / "DONE").is_file():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = CACHE / "wheels"
    wheels.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary=:all:", "--python-version", "3.11", "--platform",
         "manylinux2014_x86_64", "--dest", str(wheels), *WHEELS],
        check=True,
    )  # fmt: skip
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=CACHE))
    staging.chmod(0o755)
    make_python_package(staging)
    wanted = {w.split("==")[0].lower().replace("-", "_") for w in WHEELS}
    for wheel in sorted(wheels.glob("*.whl")):
        if wheel.name.split("-")[0].lower() in wanted:
            package_from_wheel(staging, wheel)
    index_channel(staging)
    (staging / "DONE").write_text("")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final


if __name__ == "__main__":
    print(realistic_channel())
