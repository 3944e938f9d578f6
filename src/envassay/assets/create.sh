#!/bin/sh
# Create the env at $ENV_PREFIX with $CREATOR, from the lock when the context carries
# one, else from the spec; then remove every package cache and finish the env for a
# non-root user (finish.py).
#
# Two settings (see Dockerfile and Dockerfile.buildkit):
# - the builder stage of the two-stage build: whatever the create leaves outside the
#   prefix stays in that stage;
# - ENVASSAY_DIRECT=1 (BuildKit): right in the runtime image, the builder's root mounted
#   at $ENVASSAY_BUILDER_ROOT and the context at $ENVASSAY_CTX for this step only, /tmp a
#   tmpfs. Everything the create needs outside the prefix goes to /tmp, or to a scratch
#   folder beside the prefix (same filesystem: the package cache's files are hard linked
#   into the env, not copied), and is removed at the end. Exit 3: the builder's conda
#   cannot run there; envassay then builds in two stages.
set -eu
ctx=${ENVASSAY_CTX:-/envassay-ctx}
direct=${ENVASSAY_DIRECT:-}
spec="$ctx/env/environment.yml"
lock="$ctx/env/environment.conda-lock.yml"
prefix="${ENV_PREFIX:?}"

started=$(date +%s)
say() { echo "envassay-create: [$(( $(date +%s) - started ))s] $*"; }
# Exit 2 when the cause is the spec's or its channels' (unreachable, unsolvable), as a
# native create exits; 1 otherwise. envassay reads the code off the failed build step.
die() { echo "envassay-create: error: $*" >&2; exit 1; }
die_input() { echo "envassay-create: error: $*" >&2; exit 2; }
tab=$(printf '\t')
# Paths made outside the prefix, one a line: removed at the end.
made=/tmp/envassay-made
: > "$made"
scratch=/tmp
if [ -n "$direct" ]; then
    scratch="${prefix%/*}/.envassay-create"
    [ ! -e "$scratch" ] || die "$scratch already exists in the runtime image"
    mkdir -p "$scratch"
    echo "$scratch" >> "$made"
    export HOME=/tmp/envassay-home
    # The spec names copied pip paths under /envassay-ctx (_copy_pip_path).
    if [ "$ctx" != /envassay-ctx ]; then
        [ ! -e /envassay-ctx ] || die "/envassay-ctx already exists in the runtime image"
        ln -s "$ctx" /envassay-ctx
        echo /envassay-ctx >> "$made"
    fi
fi
cant_direct() { echo "envassay-create: cannot create in the runtime image: $*" >&2; exit 3; }
# A private channel's credentials: the ${VAR}s the context's spec names (see Dockerfile).
if [ -n "${ENVASSAY_SECRETS:-}" ]; then
    eval "$(printf '%s' "$ENVASSAY_SECRETS" | base64 -d)"
fi
unset ENVASSAY_SECRETS

# Run a creator's command with its output shown as it comes; when it fails, die naming
# the cause it printed: its first exception (conda's are CamelCase names before a colon:
# CondaHTTPError, ResolvePackageNotFound, ...), pip's or envassay's ERROR and the lines
# that follow, and pip's last retry warning (which holds the network or certificate
# error that "(from versions: none)" hides); else its last lines.
attempt() {
    what=$1
    shift
    out=/tmp/envassay-attempt.out
    say "running $*"
    { if "$@" 2>&1; then rc=0; else rc=$?; fi; echo "$rc" > "$out.rc"; } | tee "$out"
    rc=$(cat "$out.rc")
    [ "$rc" != 0 ] || return 0
    cause=$(awk '
        /^(WARNING: Retrying|Could not fetch URL)/ { warning = $0; next }
        /^(Pip subprocess error|ERROR:|envassay: error:|[A-Z][a-z]+[A-Z][A-Za-z]*:|[A-Za-z]*(Error|Exception)([:(]|$))/ {
            on = 1
        }
        on && NF && n < 8 { n++; text = text (n > 1 ? " | " : "") $0 }
        NF { last[++seen % 8] = $0 }
        END {
            if (!n) for (i = seen - 7; i <= seen; i++) if (i > 0) text = text (text ? " | " : "") last[i % 8]
            if (warning) text = text " | pip warned: " warning
            print text
        }
    ' "$out")
    # The same kinds as envassay's conda backend: a channel or index that cannot be
    # read, a package no channel has, a spec no solve satisfies (or envassay saying so).
    if [ "$rc" = 2 ] && [ "$CREATOR" = envassay ] \
        || grep -qE 'CondaHTTPError|UnavailableInvalidChannel|resolve host|Multi-download failed|Download error|Failed to connect|Could not find a version that satisfies|No matching distribution found|ResolutionImpossible|PackagesNotFound|ResolvePackageNotFound|UnsatisfiableError|SpecsConfigurationConflictError|Could not solve for environment specs|Encountered problems while solving|nothing provides' "$out"; then
        die_input "$what failed (exit $rc): $cause"
    fi
    die "$what failed (exit $rc): ${cause:-see its output above}"
}

if [ -n "${CONDA_OVERRIDE_CUDA:-}" ]; then export CONDA_OVERRIDE_CUDA; else unset CONDA_OVERRIDE_CUDA; fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Local file:// channels are mounted at their host paths, so the spec, the lock and the
# package URLs recorded in conda-meta stay exactly what they are on the host.
if [ -f "$ctx/channels.txt" ]; then
    while IFS="$tab" read -r dir path; do
        [ -n "$dir" ] || continue
        [ ! -e "$path" ] || die "channel path $path already exists in the builder image"
        top=$path
        while [ ! -e "$(dirname "$top")" ]; do top=$(dirname "$top"); done
        echo "$top" >> "$made"
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
    # Direct: the runtime's own python runs envassay (else the two-stage build, exit 3).
    no_python=die
    [ -z "$direct" ] || no_python=cant_direct
    [ -n "$py" ] || $no_python "CREATOR=envassay needs python3 (>= 3.10, with venv) in the builder image"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || $no_python "CREATOR=envassay needs Python >= 3.10 in the builder image; $("$py" -V 2>&1) found"
    # A venv of its own keeps envassay out of the builder's Python; the builder's pip fills
    # it when it can (seconds faster than bootstrapping pip into the venv).
    wheels="$ctx/wheels"
    if ! { "$py" -m venv --without-pip /tmp/envassay-tool 2>/dev/null \
        && "$py" -m pip --python /tmp/envassay-tool/bin/python install --quiet --no-compile \
            --no-index --no-deps "$wheels"/*.whl 2>/dev/null; }; then
        rm -rf /tmp/envassay-tool
        "$py" -m venv /tmp/envassay-tool || $no_python "python -m venv failed (install python3-venv)"
        /tmp/envassay-tool/bin/python -m pip install --quiet --no-compile --no-index --no-deps \
            "$wheels"/*.whl
    fi
    say "envassay $(/tmp/envassay-tool/bin/envassay --version | cut -d' ' -f2) installed"
    cd "$ctx/env"
    attempt "envassay create" \
        env ENVASSAY_HOME="$scratch/envassay-home" /tmp/envassay-tool/bin/envassay create "$spec" --prefix "$prefix"
    cd /
    rm -rf /tmp/envassay-tool "$scratch/envassay-home"
    ;;
conda | mamba)
    if [ -n "$direct" ]; then
        # The builder's conda, by its own interpreter: its prefix is where that lives.
        builder_python="${ENVASSAY_BUILDER_ROOT:?}/opt/conda/bin/python"
        [ "$CREATOR" = conda ] || cant_direct "only conda is run from the builder's root"
        conda() { "$builder_python" -m conda "$@"; }
        # Whether it runs here, and its version, in one start of conda (~0.5 s each).
        versions=$(conda --version 2>&1) || cant_direct "the builder's /opt/conda/bin/python -m conda does not run there"
        export CONDA_PKGS_DIRS="$scratch/pkgs"
    fi
    command -v "$CREATOR" >/dev/null 2>&1 || die "$CREATOR is not on PATH in the builder image"
    # "conda 26.7.1"; mamba 1.x prints "mamba 1.5.8" and then its conda's version.
    if [ -z "${versions:-}" ]; then
        versions=$("$CREATOR" --version 2>&1) || die "\`$CREATOR --version\` failed: $versions"
    fi
    conda_version=$(printf '%s\n' "$versions" | sed -n 's/^conda \([0-9][0-9.]*\).*/\1/p' | head -n 1)
    major=${conda_version%%.*}
    case "$major" in '' | *[!0-9]*) major=0 ;; esac
    say "$(printf '%s' "$versions" | tr '\n' ' ')"
    label=$CREATOR
    if [ "$CREATOR" = conda ] && [ -n "$conda_version" ]; then label="conda $conda_version"; fi
    if [ "$from" = lock ]; then
        # An @EXPLICIT list names every package by URL: no channel, no solve.
        attempt "$label create --file explicit.txt" \
            "$CREATOR" create --yes --quiet --prefix "$prefix" --file "$ctx/env/explicit.txt"
        if [ -s "$ctx/env/pip-lock.txt" ]; then
            attempt "pip install -r pip-lock.txt" \
                "$prefix/bin/python" -m pip install --no-deps -r "$ctx/env/pip-lock.txt"
        fi
    elif [ "$CREATOR" = conda ] && [ "$major" -ge 26 ]; then
        # conda 26's `env create` fetches `nodefaults` as a channel; its `create --file`
        # reads the environment file (pip: section included) and takes the channels
        # exactly as given: the spec's resolved channels, no default ones.
        set --
        while IFS= read -r channel; do
            if [ -n "$channel" ]; then set -- "$@" --channel "$channel"; fi
        done < "$ctx/env/channels.txt"
        [ "$#" -gt 0 ] || die "no channels in $ctx/env/channels.txt"
        attempt "$label create --file environment.yml" \
            conda create --yes --quiet --prefix "$prefix" --file "$spec" --override-channels "$@"
    else
        # `env create` takes its channels from the file, which ends in `nodefaults` (no
        # default channels). Before 26, conda reads `URL::pkg` there as the channel's name
        # under channel_alias: custom_channels maps each local channel's name back to it.
        # (conda reads $CONDARC besides its own .condarc when the file is named condarc.)
        condarc=/tmp/envassay-condarc/condarc
        mkdir -p "$(dirname "$condarc")"
        : > "$condarc"
        if [ -f "$ctx/channels.txt" ]; then
            names=$(cut -f2 "$ctx/channels.txt" | sed 's|.*/||' | sort | uniq -d)
            while IFS="$tab" read -r dir path; do
                [ -n "$dir" ] || continue
                name=${path##*/}
                if printf '%s\n' "$names" | grep -qxF "$name"; then continue; fi
                [ -s "$condarc" ] || echo "custom_channels:" > "$condarc"
                printf "  '%s': 'file://%s'\n" "$name" "${path%/*}" >> "$condarc"
            done < "$ctx/channels.txt"
        fi
        (
            if [ -s "$condarc" ]; then export CONDARC="$condarc"; fi
            attempt "$label env create" \
                "$CREATOR" env create --quiet --prefix "$prefix" --file "$spec"
        )
    fi
    # Direct: the package cache is in $scratch, removed below.
    [ -n "$direct" ] || attempt "$label clean" "$CREATOR" clean --all --force-pkgs-dirs --yes
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
while IFS= read -r path; do rm -rf "$path"; done < "$made"
rm -rf "$prefix/pkgs" /root/.cache 2>/dev/null || true
# Direct: /tmp is a tmpfs, with the context and the builder's root mounted in it.
[ -n "$direct" ] || rm -rf /tmp/* 2>/dev/null || true
say "created; compiling bytecode, cleaning caches"
# The runtime user is not root and cannot write __pycache__ into the env: everything
# readable (rattler writes conda-meta/*.json with mode 0600), the bytecode compiled now.
if [ -x "$prefix/bin/python" ] && finished=$("$prefix/bin/python" -I "$ctx/finish.py" "$prefix" 2>&1); then
    say "done: $finished"
else
    chmod -R a+rX "$prefix"
    say "done: $(du -sh "$prefix" | cut -f1) in $prefix"
fi
