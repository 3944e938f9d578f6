"""Hygiene facts of a container image, gathered inside it by envassay (standard library only).

Run as root with the env's interpreter: ``python - '{"user": ..., "home": ...}'`` (the
image's configured user and HOME; the home defaults to that user's passwd entry).
Prints one JSON document: package caches found anywhere on the filesystem, and the
size and largest entries of /tmp, /var/tmp and the image user's home directory.
Python 3.8+ syntax: it runs in whatever interpreter the image has.
"""

import json
import os
import sys
import time

PRUNE = {"/proc", "/sys", "/dev", "/run"}
PRUNE_NAMES = {"site-packages", "__pycache__", "node_modules"}
ARCHIVES = (".conda", ".tar.bz2")
# Cache directories named for the tool that fills them (under a home's .cache or elsewhere).
TOOL_CACHES = {
    ".cache/pip": "pip cache",
    ".cache/rattler": "rattler cache",
    ".cache/mamba": "mamba cache",
    ".cache/conda": "conda cache",
    ".cache/uv": "uv cache",
    ".conda/pkgs": "conda package cache",
    ".mamba/pkgs": "mamba package cache",
}


def tree(path):
    """(bytes, files, largest entries) of a directory, without following symlinks."""
    total = 0
    count = 0
    sizes = {}
    for root, _dirs, files in os.walk(path, onerror=lambda _e: None):
        for name in files:
            full = os.path.join(root, name)
            try:
                size = os.lstat(full).st_size
            except OSError:
                continue
            total += size
            count += 1
            top = os.path.join(path, os.path.relpath(full, path).split(os.sep)[0])
            sizes[top] = sizes.get(top, 0) + size
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    return total, count, largest


def conda_pkgs_dir(path, dirs, files):
    """Whether ``path`` holds conda packages (archives or extracted package directories)."""
    if any(name.endswith(ARCHIVES) for name in files):
        return True
    return any(os.path.isfile(os.path.join(path, name, "info", "index.json")) for name in dirs)


def find_caches():
    found = []
    for root, dirs, files in os.walk("/", onerror=lambda _e: None):
        dirs[:] = [
            d
            for d in dirs
            if os.path.join(root, d) not in PRUNE
            and d not in PRUNE_NAMES
            and not os.path.islink(os.path.join(root, d))
        ]
        kind = None
        for suffix, label in TOOL_CACHES.items():
            if root.endswith("/" + suffix):
                kind = label
        if kind is None and os.path.basename(root) == "pkgs" and conda_pkgs_dir(root, dirs, files):
            kind = "conda package cache"
        if kind is not None:
            size, count, largest = tree(root)
            if count:
                found.append(
                    {"path": root, "kind": kind, "bytes": size, "files": count, "largest": largest}
                )
            dirs[:] = []
    return found


def other_cache(path, reported):
    """What a home's .cache holds besides the tool caches already reported."""
    if not os.path.isdir(path):
        return None
    size, count = 0, 0
    for root, dirs, files in os.walk(path, onerror=lambda _e: None):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in reported]
        for name in files:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
            count += 1
    if not count:
        return None
    return {"path": path, "kind": "cache directory", "bytes": size, "files": count, "largest": []}


def describe_dir(path):
    if not os.path.isdir(path):
        return {"path": path, "exists": False, "bytes": 0, "files": 0, "largest": []}
    size, count, largest = tree(path)
    return {"path": path, "exists": True, "bytes": size, "files": count, "largest": largest}


def user_home(user):
    """The home directory of ``user`` (a name, a uid, or ``name:group``) from passwd."""
    import pwd

    name = user.split(":", 1)[0]
    if not name or name in ("0", "root"):
        return "/root"
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        return "/root"
    return entry.pw_dir


def main(argv):
    started = time.time()
    request = json.loads(argv[1]) if len(argv) > 1 else {}
    home = request.get("home") or user_home(request.get("user") or "")
    dirs = [describe_dir(p) for p in ("/tmp", "/var/tmp", home)]
    caches = find_caches()
    reported = {c["path"] for c in caches}
    for base in dict.fromkeys(("/root", home)):
        extra = other_cache(os.path.join(base, ".cache"), reported)
        if extra is not None:
            caches.append(extra)
    report = {
        "uid": os.getuid(),
        "caches": caches,
        "dirs": dirs,
        "seconds": round(time.time() - started, 3),
    }
    sys.stdout.write(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
