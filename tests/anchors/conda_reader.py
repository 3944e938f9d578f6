"""Run by a real conda's own interpreter: conda's environment-file reader
(conda.env.env.from_file, no solve) on each file, and conda's MatchSpec on what envassay
read, so that both sides are compared in conda's terms. argv: OUT_JSON, then a JSON file
mapping each spec path to envassay's view (or null when envassay refused it)."""

import json
import re
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
from conda.env.env import from_file  # noqa: E402
from conda.models.match_spec import MatchSpec  # noqa: E402


def meaning(text):
    """What conda matches with: name, version, build, channel (exact `a=1=b` and
    `a==1=b` are one spec; conda prints the first as 1, the second as ==1)."""
    spec = MatchSpec(text)
    version = str(spec.get("version") or "")
    if spec.get("build") and version.startswith("=="):
        version = version[2:]
    if version == "*":  # any version: conda drops it from `blas=*=openblas`, keeps `blas * b`
        version = ""
    # VersionOrder compares a version's numeric parts as numbers (2022.07.19 is 2022.7.19,
    # 3.000 is 3.0): rattler prints them so; compared as conda compares them.
    version = re.sub(r"\d+", lambda m: str(int(m.group())), version)
    # `>=2.*` is `>=2` to conda (VersionSpec ignores a `.*` after a relational operator).
    version = re.sub(r"(^|[,|])((?:>=|<=|>|<)[^,|]*?)\.\*(?=$|[,|])", r"\1\2", version)
    channel = str(spec.get("channel") or "")
    # One URL with or without its scheme's default port (RFC 3986 6.2.3): rattler drops it.
    channel = re.sub(r"^(https://[^/:]+):443(?=/|$)", r"\1", channel)
    return [spec.name, version, str(spec.get("build") or ""), channel]


out = {}
for path, ours in json.loads(Path(sys.argv[2]).read_text()).items():
    try:
        env = from_file(path)
    except BaseException as exc:  # conda refuses the file
        out[path] = {"conda_ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        continue
    deps = env.dependencies
    entry = {
        "conda_ok": True,
        "name": env.name,
        "channels": [c for c in dict.fromkeys(env.channels or []) if c != "nodefaults"],
        "conda": sorted(meaning(t) for t in deps.get("conda", [])),
        "pip": list(deps.get("pip", [])),
        "variables": {k: str(v) for k, v in (env.variables or {}).items()},
        "installers": sorted(k for k in deps if k not in ("conda", "pip")),
        "prefix": env.prefix,
    }
    if ours is not None:
        entry["ours_conda"] = sorted(meaning(t) for t in ours["conda"])
    out[path] = entry
Path(sys.argv[1]).write_text(json.dumps(out))
