# shellcheck shell=bash
# Common settings for the workspace scripts. Sourced, never run.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-$TOP/work}                 # everything generated; ignored by git

QEMU_DIR=${QEMU_DIR:-$WORK/qemu}        # QEMU work tree: base + series, branch "series"
BUILD_DIR=${BUILD_DIR:-$WORK/build}     # patched build
QEMU_BASE_DIR=$WORK/qemu-base           # pristine QEMU base as a git repo, tag "base"
# The unpatched build (vmstate and compat) and the base's checkout it is
# built from, side by side as work/qemu and work/build are: the compiler
# then sees the same relative paths in both, and ccache (its base
# directory set to each pair's parent) reuses what either compiled.
BASE_SRC_DIR=$WORK/base/qemu
BASE_BUILD_DIR=$WORK/base/build

# QEMU's series, a stack: each applies on the one before it, the first
# on the base, and patches/NAME holds each. In the work tree, branch
# stack/NAME ends each series but the last, branch "series" the last
# ("git rebase -i --update-refs base" keeps the stack/ branches in place).
QEMU_STACK=(postcopy-start keepalive vm-started netpass)

# The series this run works on: any QEMU series (or "qemu") means all of
# QEMU's stack, SERIES=libvirt the libvirt one: its patches, its pinned
# Debian source package, and where its base and work tree live.
SERIES=${SERIES:-qemu}
case " qemu ${QEMU_STACK[*]} " in
*" $SERIES "*) SERIES=qemu ;;
esac
case $SERIES in
qemu)
    STACK=("${QEMU_STACK[@]}")
    SRC_PKG=qemu BASE_NAME=QEMU
    BASE_VERSION=1:10.2.2+ds-1
    BASE_ORIG=qemu_10.2.2+ds.orig.tar.xz
    BASE_ORIG_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
    BASE_DEBIAN=                        # unpacked by dpkg-source from the .dsc
    BASE_DIR=$QEMU_BASE_DIR
    TREE_DIR=$QEMU_DIR
    ;;
libvirt)
    STACK=(libvirt)
    # trixie's: sid's 12.8.0-1 is in the archive's index, but its files
    # are not on the archive (404, checked 2026-11-24), nor is this
    # version's .dsc: the two tarballs are fetched by the sha256 the
    # archive's signed Sources index gives.
    SRC_PKG=libvirt BASE_NAME=libvirt
    BASE_VERSION=11.3.0-3+deb13u3
    BASE_ORIG=libvirt_11.3.0.orig.tar.xz
    BASE_ORIG_SHA256=6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283
    BASE_DEBIAN=libvirt_11.3.0-3+deb13u3.debian.tar.xz
    BASE_DEBIAN_SHA256=ec073ef64c50ab8732d7a3887a73500d9ebcbc87b1e927d4ec69ea5c58539325
    BASE_DIR=$WORK/libvirt-base
    TREE_DIR=$WORK/libvirt              # base + the libvirt series
    LV_BUILD_DIR=$WORK/build-libvirt
    ;;
*)
    printf 'error: unknown series %s\n' "$SERIES" >&2
    exit 1
    ;;
esac

# Identity for commits made by the scripts, so that applying is reproducible.
IDENT_NAME="Seed b3e21608 maintainers"
IDENT_EMAIL="maintainers@users.noreply.h-seed-b3e21608.example"
export GIT_COMMITTER_NAME=$IDENT_NAME GIT_COMMITTER_EMAIL=$IDENT_EMAIL

# Debian's own python: the machine's default python3 lacks pycotap.
PYTHON=/usr/bin/python3

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# deb_unpack REGEX DIR: the newest package of the apt lists whose name
# matches REGEX, downloaded and unpacked (not installed) into DIR/x, DIR
# emptied first; DEB_UNPACKED becomes its "name version"
deb_unpack() {
    local pkg
    pkg=$(apt-cache search --names-only "$1" | cut -d' ' -f1 | sort -V | tail -n 1)
    [[ -n $pkg ]] || die "no package matching $1 in the apt lists (run 'make deps')"
    say "fetching $pkg"
    rm -rf "$2"
    mkdir -p "$2/dl"
    chown _apt "$2/dl" 2>/dev/null || true
    (cd "$2/dl" && apt-get download -q "$pkg" >/dev/null) || die "cannot download $pkg"
    dpkg-deb -x "$2/dl/$pkg"_*.deb "$2/x"
    DEB_UNPACKED="$pkg $(dpkg-deb -f "$2/dl/$pkg"_*.deb Version)"
    rm -rf "$2/dl"
}

# Where series NAME of the stack ends in the work tree, and what it
# applies on.
series_tip() {
    [[ $1 = "${STACK[-1]}" ]] && echo series || echo "stack/$1"
}
series_from() {
    local i
    for i in "${!STACK[@]}"; do
        if [[ ${STACK[i]} = "$1" ]]; then
            ((i)) && series_tip "${STACK[i - 1]}" || echo base
            return
        fi
    done
    die "no series $1 in the stack (${STACK[*]})"
}

# The patch files of series NAME (default: every series of the stack, in
# order), as listed in its series file.
series_patches() {
    local name dir
    for name in "${@:-${STACK[@]}}"; do
        dir=$TOP/patches/$name
        [[ -f $dir/series ]] || continue
        grep -v -e '^#' -e '^[[:space:]]*$' "$dir/series" | sed "s|^|$dir/|"
    done
}

# ccache shared by the base and the patched build, wherever the checkout is
# (each build sets CCACHE_BASEDIR to the parent of its source and build
# directories).
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

# Write series NAME of the work tree (from its base to its tip) as
# patches into directory $2.
export_series_to() {
    local name=$1 out=$2 from tip last
    from=$(series_from "$name") tip=$(series_tip "$name")
    git -C "$TREE_DIR" merge-base --is-ancestor "$from" "$tip" ||
        die "$from is not below $tip in ${TREE_DIR#"$TOP"/}"
    mkdir -p "$out"
    last=$(git -C "$TREE_DIR" log -1 --format=%aI "$tip")
    (cd "$TREE_DIR" && GIT_COMMITTER_DATE=$last \
        "${FORMAT_PATCH[@]}" --cover-letter -q -o "$out" "$from..$tip")
    "$PYTHON" "$TOP/scripts/fill-cover.py" "$TOP/patches/$name/cover.txt" \
        "$out/0000-cover-letter.patch"
    (cd "$out" && ls [0-9]*.patch | grep -v '^0000-cover-letter' > series)
}

# Configure build directory $1 once per set of arguments $2: run the rest
# (the configure command) in it, from an empty directory, unless it was
# configured with the same arguments already. Its output goes to
# configure.log there.
configure_once() {
    local build=$1 args=$2
    shift 2
    if [[ -f $build/build.ninja && $args = "$(cat "$build/.configure-args" 2>/dev/null)" ]]; then
        return 0
    fi
    say "build: configuring ${build#"$TOP"/}"
    rm -rf "$build"
    mkdir -p "$build"
    (cd "$build" && "$@" >"$build/configure.log" 2>&1) ||
        { tail -n 30 "$build/configure.log"; die "configure failed (see $build/configure.log)"; }
    echo "$args" > "$build/.configure-args"
}

# Check REF of repository $1 out, detached, in worktree $2, making the
# worktree if it is missing or broken (its repository re-made); its build
# directory goes beside it, so that ccache, its base directory set to
# their parent (build.sh does), sees the same relative paths as for
# work/qemu and work/build.
checkout_beside() {     # checkout_beside REPO DIR REF
    local repo=$1 dir=$2 ref=$3
    if ! git -C "$dir" rev-parse --git-dir >/dev/null 2>&1; then
        rm -rf "$dir"
        git -C "$repo" worktree prune
        git -C "$repo" worktree add -q --detach "$dir" "$ref"
    fi
    git -C "$dir" checkout -q --detach "$ref"
}

BUILD_LOCK=${BUILD_LOCK:-$TOP/work/.build.lock}

# ninja in build directory $1: first build.ninja, up to date with the tree
# (or it lists the targets of whatever tree was built there last), then
# the targets that follow, with the log in ninja.log there; its errors,
# if it fails.
ninja_build() {
    local build=$1
    shift
    ninja -C "$build" build.ninja >"$build/regenerate.log" 2>&1 ||
        { tail -n 30 "$build/regenerate.log"; die "meson could not regenerate $build"; }
    (($#)) || return 0
    say "build: ninja $# targets in ${build#"$TOP"/}"
    # One build at a time on this machine, whoever starts it (a second
    # one would only slow both down)
    mkdir -p "$(dirname "$BUILD_LOCK")"
    if ! flock "$BUILD_LOCK" ninja -C "$build" "$@" >"$build/ninja.log" 2>&1; then
        grep -v '^\[[0-9]*/[0-9]*\] ' "$build/ninja.log" | tail -n 40
        die "build failed (see ${build#"$TOP"/}/ninja.log)"
    fi
}
