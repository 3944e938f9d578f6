#!/bin/sh
# Builder stage: create the env at $ENV_PREFIX with $CREATOR, from the lock when the
# context carries one, else from the spec; then remove every package cache.
set -eu
ctx=/envassay-ctx
spec="$ctx/env/environment.yml"
lock="$ctx/env/environment.conda-lock.yml"
prefix="${ENV_PREFIX:?}"

started=$(date +%s)
say() { echo "envassay-create: [$(( $(date +%s) - started ))s] $*"; }
die() { echo "envassay-create: error: $*" >&2; exit 1; }

if [ -n "${CONDA_OVERRIDE_CUDA:-}" ]; then export CONDA_OVERRIDE_CUDA; else unset CONDA_OVERRIDE_CUDA; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Local file:// channels are mounted at their host paths, so the spec, the lock and the
# package URLs recorded in conda-meta stay exactly what they are on the host.
if [ -f "$ctx/channels.txt" ]; then
    tab=$(printf '\t')
    while IFS="$tab" read -r dir path; do
        [ -n "$dir" ] || continue
        [ ! -e "$path" ] || die "channel path $path already exists in the builder image"
        mkdir -p "$(dirname "$path")"
        ln -s "$ctx/channels/$dir" "$path"
    done < "$ctx/channels.txt"
fi

from="spec"
[ -f "$lock" ] && from="lock"
say "creating $prefix with $CREATOR from the $from"

case "$CREATOR" in
envassay)
    py=$(command -v python3 || command -v python || true)
    [ -n "$py" ] || die "CREATOR=envassay needs python3 (>= 3.10, with venv) in the builder image"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "CREATOR=envassay needs Python >= 3.10 in the builder image; $("$py" -V 2>&1) found"
    # A venv of its own keeps envassay out of the builder's Python; the builder's pip fills
    # it when it can (seconds faster than bootstrapping pip into the venv).
    wheels="$ctx/wheels"
    if ! { "$py" -m venv --without-pip /tmp/envassay-tool 2>/dev/null \
        && "$py" -m pip --python /tmp/envassay-tool/bin/python install --quiet --no-compile \
            --no-index --no-deps "$wheels"/*.whl 2>/dev/null; }; then
        rm -rf /tmp/envassay-tool
        "$py" -m venv /tmp/envassay-tool || die "python -m venv failed (install python3-venv)"
        /tmp/envassay-tool/bin/python -m pip install --quiet --no-compile --no-index --no-deps \
            "$wheels"/*.whl
    fi
    say "envassay $(/tmp/envassay-tool/bin/envassay --version | cut -d' ' -f2) installed"
    cd "$ctx/env"
    ENVASSAY_HOME=/tmp/envassay-home /tmp/envassay-tool/bin/envassay create "$spec" --prefix "$prefix"
    rm -rf /tmp/envassay-tool /tmp/envassay-home
    ;;
conda | mamba)
    command -v "$CREATOR" >/dev/null 2>&1 || die "$CREATOR is not on PATH in the builder image"
    if [ "$from" = lock ]; then
        "$CREATOR" create --yes --quiet --prefix "$prefix" --file "$ctx/env/explicit.txt"
        if [ -s "$ctx/env/pip-lock.txt" ]; then
            "$prefix/bin/python" -m pip install --no-deps -r "$ctx/env/pip-lock.txt"
        fi
    else
        "$CREATOR" env create --quiet --prefix "$prefix" --file "$spec"
    fi
    "$CREATOR" clean --all --force-pkgs-dirs --yes
    ;;
micromamba)
    mm=$(command -v micromamba || echo "${MAMBA_EXE:-}")
    [ -n "$mm" ] && [ -x "$mm" ] || die "micromamba is not on PATH in the builder image"
    if [ "$from" = lock ]; then
        "$mm" create --yes --prefix "$prefix" --file "$lock"
    else
        "$mm" create --yes --prefix "$prefix" --file "$spec"
    fi
    "$mm" clean --all --force-pkgs-dirs --yes
    ;;
*)
    die "unknown CREATOR '$CREATOR' (conda, mamba, micromamba or envassay)"
    ;;
esac

[ -x "$prefix/bin/python" ] || say "note: $prefix/bin/python does not exist (no python in the env?)"
rm -rf "$prefix/pkgs" /root/.cache /tmp/* 2>/dev/null || true
say "created; compiling bytecode, cleaning caches"
# The runtime user cannot write __pycache__ into the env: compile the bytecode now, once.
if [ -x "$prefix/bin/python" ]; then
    "$prefix/bin/python" -m compileall -q -j 0 "$prefix/lib" >/dev/null 2>&1 || true
fi
# The runtime user is not root: everything in the env must be readable (rattler writes
# conda-meta/*.json with mode 0600).
chmod -R a+rX "$prefix"
say "done: $(du -sh "$prefix" | cut -f1) in $prefix"
