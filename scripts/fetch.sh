#!/usr/bin/env bash
# Fetch the pinned base (Debian's source package of the series' project:
# qemu, or libvirt with SERIES=libvirt), verify it, unpack it with Debian's
# patches and make it a git repository with one commit, tagged "base".
# Cached: once the tag exists this does nothing.
. "$(dirname "$0")/lib.sh"

if git -C "$BASE_DIR" rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
    say "fetch: base already at $BASE_DIR ($(git -C "$BASE_DIR" rev-parse --short base))"
    exit 0
fi

dl=$WORK/download/$SRC_PKG
mkdir -p "$dl"
chown _apt "$dl" 2>/dev/null || true   # apt downloads as _apt
cd "$dl"
rm -rf "$BASE_DIR" "$BASE_DIR.tmp"
if [[ -z $BASE_DEBIAN ]]; then
    # The .dsc is on the archive: apt-get source and dpkg-source.
    if ! [[ -f $BASE_ORIG ]] || ! echo "$BASE_ORIG_SHA256  $BASE_ORIG" | sha256sum -c --quiet 2>/dev/null; then
        say "fetch: apt-get source $SRC_PKG=$BASE_VERSION"
        rm -rf "${dl:?}"/*
        apt-get source --download-only "$SRC_PKG=$BASE_VERSION" >/dev/null
    fi
    say "fetch: verifying sha256 of $BASE_ORIG"
    echo "$BASE_ORIG_SHA256  $BASE_ORIG" | sha256sum -c --quiet ||
        die "$BASE_ORIG does not match the pinned sha256"
    say "fetch: unpacking with Debian's patches"
    dpkg-source --no-check -x "${SRC_PKG}"_*.dsc "$BASE_DIR.tmp" >/dev/null
    rm -f "$WORK/$BASE_ORIG"            # dpkg-source's copy beside the tree
else
    # No .dsc: the two tarballs by their pinned sha256 (apt-helper checks
    # it), unpacked and patched the way dpkg-source does (quilt series,
    # -p1, no fuzz).
    pool=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Sources' | head -n 1)
    dir=pool/main/${SRC_PKG:0:1}/$SRC_PKG
    [[ $SRC_PKG = lib* ]] && dir=pool/main/${SRC_PKG:0:4}/$SRC_PKG
    for f in "$BASE_ORIG:$BASE_ORIG_SHA256" "$BASE_DEBIAN:$BASE_DEBIAN_SHA256"; do
        name=${f%%:*} sum=${f#*:}
        if ! echo "$sum  $name" | sha256sum -c --quiet >/dev/null 2>&1; then
            say "fetch: downloading $name"
            rm -f "$name"
            /usr/lib/apt/apt-helper -qq download-file "$pool$dir/$name" "$dl/$name" "SHA256:$sum" ||
                die "could not download $name from $pool$dir"
        fi
        say "fetch: verifying sha256 of $name"
        echo "$sum  $name" | sha256sum -c --quiet || die "$name does not match the pinned sha256"
    done
    say "fetch: unpacking with Debian's patches"
    mkdir -p "$BASE_DIR.tmp"
    tar -C "$BASE_DIR.tmp" --strip-components=1 -xf "$BASE_ORIG"
    tar -C "$BASE_DIR.tmp" -xf "$BASE_DEBIAN"
    if [[ -f $BASE_DIR.tmp/debian/patches/series ]]; then
        while read -r p _; do
            [[ -z $p || $p = \#* ]] && continue
            patch -d "$BASE_DIR.tmp" -s -p1 -F 0 -N -E <"$BASE_DIR.tmp/debian/patches/$p" ||
                die "Debian's patch $p does not apply"
        done <"$BASE_DIR.tmp/debian/patches/series"
    fi
fi
mv "$BASE_DIR.tmp" "$BASE_DIR"

say "fetch: making $BASE_DIR a git repository"
cd "$BASE_DIR"
rm -rf .pc                      # quilt's bookkeeping, not source
git init -q -b debian
git config user.name "$IDENT_NAME"
git config user.email "$IDENT_EMAIL"
git add -A -f .
GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
    git commit -q -m "$BASE_NAME $BASE_VERSION (Debian source package, patches applied)"
git tag base
say "fetch: base is $(git rev-parse --short base)"
