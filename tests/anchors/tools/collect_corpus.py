"""Collect public environment files into tests/anchors/corpus/ (run by hand, not in CI).

argv: MIRROR_DIR (git snapshots of public repositories, one `owner+name/repo` per
repository, as the project's search tools fetch them). Each repository gives its
environment files (at most PER_REPO, more for the tool repositories below), skipping files
over 20 KB, files that are not a YAML mapping with `dependencies`, `channels` or `name`
keys, and files whose bytes another repository already gave. The files are stored
verbatim, and corpus/MANIFEST.json says where each came from (repository, path, commit).
Running it again keeps the files already in the manifest and adds new ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MAX_BYTES = 20_000
PER_REPO = 2
# Tool repositories whose own tests hold many environment files.
MANY = {"conda/conda": 60, "mamba-org/mamba": 30, "conda/conda-lock": 30, "nf-core/modules": 6}
NAME = re.compile(
    r"(^|/)(environment|env|conda|binder|docs?|ci|dev|test|requirements)[\w.-]*\.ya?ml$"
    r"|(^|/)(envs?|conda|binder|ci|\.binder|environments?|requirements)/[\w.-]+\.ya?ml$",
    re.I,
)
SKIP = re.compile(r"(^|/)(\.github|\.circleci|\.gitlab|workflows|recipe|meta\.ya?ml)", re.I)
KEYS = {"dependencies", "channels"}


def git(gitdir: Path, *args: str) -> bytes:
    return subprocess.run(
        ["git", f"--git-dir={gitdir}", *args], capture_output=True, check=True
    ).stdout


def candidates(gitdir: Path) -> list[tuple[str, str, int]]:
    out = []
    for row in git(gitdir, "ls-tree", "-r", "-l", "HEAD").decode(errors="replace").splitlines():
        meta, _, path = row.partition("\t")
        parts = meta.split()
        if len(parts) < 4 or parts[1] != "blob" or not parts[3].isdigit():
            continue
        size = int(parts[3])
        if 0 < size <= MAX_BYTES and NAME.search(path) and not SKIP.search(path):
            out.append((path, parts[2], size))
    # Root-level and conventional names first.
    out.sort(key=lambda c: (c[0].count("/"), not c[0].lower().startswith("environment"), c[0]))
    return out


def looks_like_env(raw: bytes) -> bool:
    try:
        data = yaml.safe_load(raw)
    except Exception:
        # conda's loader may still read it; keep it if its keys look right.
        text = raw.decode(errors="replace")
        return bool(re.search(r"^dependencies\s*:", text, re.M))
    return isinstance(data, dict) and bool(KEYS & set(map(str, data)))


LICENCES = [
    ("Apache License", "Apache-2.0"),
    ("MIT License", "MIT"),
    ("Permission is hereby granted, free of charge", "MIT"),
    ("BSD 3-Clause", "BSD-3-Clause"),
    ("BSD 2-Clause", "BSD-2-Clause"),
    ("Redistribution and use in source and binary forms", "BSD"),
    ("GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL"),
    ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL"),
    ("GNU GENERAL PUBLIC LICENSE", "GPL"),
    ("Mozilla Public License", "MPL-2.0"),
    ("Creative Commons", "CC"),
    ("This is free and unencumbered software", "Unlicense"),
]


def licence(gitdir: Path) -> str:
    """The repository's licence as its root LICENSE/COPYING file names it, if it has one."""
    rows = git(gitdir, "ls-tree", "HEAD").decode(errors="replace").splitlines()
    for row in rows:
        meta, _, path = row.partition("\t")
        if re.match(r"(LICEN[CS]E|COPYING)(\.\w+)?$", path, re.I) and " blob " in meta:
            text = git(gitdir, "cat-file", "blob", meta.split()[2])[:4000].decode(errors="replace")
            for needle, name in LICENCES:
                if needle.lower() in text.lower():
                    return name
            return f"see {path}"
    return "unknown (no licence file at the root)"


def main(mirror: Path) -> None:
    CORPUS.mkdir(exist_ok=True)
    manifest_path = CORPUS / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    seen = {hashlib.sha256((CORPUS / f).read_bytes()).hexdigest() for f in manifest}
    done = {(e["repo"], e["path"]) for e in manifest.values()}
    number = max((int(f.split(".")[0]) for f in manifest), default=0)
    for snapshot in sorted(mirror.iterdir()):
        gitdir = snapshot / "repo" / ".git"
        gitdir = gitdir if gitdir.is_dir() else snapshot / "repo"
        if not (gitdir / "HEAD").exists():
            continue
        repo = snapshot.name.replace("+", "/", 1)
        try:
            commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
            found = candidates(gitdir)
        except subprocess.CalledProcessError:
            continue
        taken = sum(1 for e in manifest.values() if e["repo"] == repo)
        for path, blob, _size in found:
            if taken >= MANY.get(repo, PER_REPO):
                break
            if (repo, path) in done:
                continue
            raw = git(gitdir, "cat-file", "blob", blob)
            digest = hashlib.sha256(raw).hexdigest()
            if digest in seen or not looks_like_env(raw):
                continue
            seen.add(digest)
            number += 1
            name = f"{number:04d}.yml"
            (CORPUS / name).write_bytes(raw)
            manifest[name] = {"repo": repo, "path": path, "commit": commit}
            taken += 1
    for entry in manifest.values():
        snapshot = mirror / entry["repo"].replace("/", "+", 1) / "repo"
        gitdir = snapshot / ".git" if (snapshot / ".git").is_dir() else snapshot
        if "licence" not in entry and (gitdir / "HEAD").exists():
            entry["licence"] = licence(gitdir)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    repos = {e["repo"] for e in manifest.values()}
    print(f"{len(manifest)} files from {len(repos)} repositories")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
