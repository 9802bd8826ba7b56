# shellcheck shell=bash
# Common settings for the workspace scripts. Sourced, never run.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$TOP/work}                 # everything generated; ignored by git

BASE_VERSION=1:10.2.2+ds-1
BASE_ORIG=qemu_10.2.2+ds.orig.tar.xz
BASE_ORIG_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
BASE_DIR=$WORK/qemu-base                # pristine base as a git repo, tag "base"
QEMU_DIR=${QEMU_DIR:-$WORK/qemu}        # work tree: base + series, branch "series"
BUILD_DIR=${BUILD_DIR:-$WORK/build}     # patched build
BASE_BUILD_DIR=$WORK/build-base         # unpatched build (vmstate and compat)

SERIES=${SERIES:-netpass}
PATCH_DIR=$TOP/patches/$SERIES

# Identity for commits made by the scripts, so that applying is reproducible.
IDENT_NAME="Seed b3e21608 maintainers"
IDENT_EMAIL="maintainers@users.noreply.h-seed-b3e21608.example"
export GIT_COMMITTER_NAME=$IDENT_NAME GIT_COMMITTER_EMAIL=$IDENT_EMAIL

# Debian's own python: the machine's default python3 lacks pycotap.
PYTHON=/usr/bin/python3

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The series' patch files in order, as listed in the series file.
series_patches() {
    [[ -f $PATCH_DIR/series ]] || return 0
    grep -v -e '^#' -e '^[[:space:]]*$' "$PATCH_DIR/series" | sed "s|^|$PATCH_DIR/|"
}

# ccache shared by the base and the patched build, wherever the checkout is.
# QEMU's configure names the compiler "cc": ccache's masquerade directory
# first on PATH puts ccache in front of it.
if [[ -d /usr/lib/ccache && :$PATH: != *:/usr/lib/ccache:* ]]; then
    export PATH=/usr/lib/ccache:$PATH
fi
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$WORK} CCACHE_NOHASHDIR=true CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

# git format-patch settings that make the export byte-stable.
FORMAT_PATCH=(git -c core.abbrev=12 -c diff.noprefix=false -c diff.mnemonicPrefix=false
              -c diff.renames=true -c format.signOff=false
              format-patch --zero-commit --no-signature --subject-prefix=PATCH
              --numbered --diff-algorithm=myers)

# Write the series in $QEMU_DIR (base..series) as patches into directory $1.
export_series_to() {
    local out=$1 last
    mkdir -p "$out"
    last=$(git -C "$QEMU_DIR" log -1 --format=%aI series)
    (cd "$QEMU_DIR" && GIT_COMMITTER_DATE=$last \
        "${FORMAT_PATCH[@]}" --cover-letter -q -o "$out" base..series)
    "$PYTHON" "$TOP/scripts/fill-cover.py" "$PATCH_DIR/cover.txt" \
        "$out/0000-cover-letter.patch"
    (cd "$out" && ls [0-9]*.patch | grep -v '^0000-cover-letter' > series)
}
