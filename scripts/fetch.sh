#!/usr/bin/env bash
# Fetch the pinned base (Debian's qemu source package), verify it, unpack it
# with Debian's patches and make it a git repository with one commit, tagged
# "base". Cached: once the tag exists this does nothing.
. "$(dirname "$0")/lib.sh"

if git -C "$BASE_DIR" rev-parse -q --verify refs/tags/base >/dev/null 2>&1; then
    say "fetch: base already at $BASE_DIR ($(git -C "$BASE_DIR" rev-parse --short base))"
    exit 0
fi

dl=$WORK/download
mkdir -p "$dl"
chown _apt "$dl" 2>/dev/null || true   # apt downloads as _apt
cd "$dl"
if ! [[ -f $BASE_ORIG ]] || ! echo "$BASE_ORIG_SHA256  $BASE_ORIG" | sha256sum -c --quiet 2>/dev/null; then
    say "fetch: apt-get source qemu=$BASE_VERSION"
    rm -rf "$dl"/*
    apt-get source --download-only "qemu=$BASE_VERSION" >/dev/null
fi
say "fetch: verifying sha256 of $BASE_ORIG"
echo "$BASE_ORIG_SHA256  $BASE_ORIG" | sha256sum -c --quiet ||
    die "$BASE_ORIG does not match the pinned sha256"

say "fetch: unpacking with Debian's patches"
rm -rf "$BASE_DIR" "$BASE_DIR.tmp"
dpkg-source --no-check -x qemu_*.dsc "$BASE_DIR.tmp" >/dev/null
mv "$BASE_DIR.tmp" "$BASE_DIR"
rm -f "$WORK/$BASE_ORIG"        # dpkg-source's copy beside the tree

say "fetch: making $BASE_DIR a git repository"
cd "$BASE_DIR"
rm -rf .pc                      # quilt's bookkeeping, not source
git init -q -b debian
git config user.name "$IDENT_NAME"
git config user.email "$IDENT_EMAIL"
git add -A -f .
GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
    git commit -q -m "QEMU $BASE_VERSION (Debian source package, patches applied)"
git tag base
say "fetch: base is $(git rev-parse --short base)"
