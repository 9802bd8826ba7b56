#!/usr/bin/env bash
# Build every prefix of the series (base + first k patches) in a scratch
# worktree, so that each patch is known to build on its own. Slow: not in CI.
. "$(dirname "$0")/lib.sh"

tree=$WORK/bisect
build=$WORK/build-bisect
n=$(git -C "$QEMU_DIR" rev-list --count base..series)
rm -rf "$tree"
git -C "$QEMU_DIR" worktree prune
git -C "$QEMU_DIR" worktree add -q --detach "$tree" base
trap 'git -C "$QEMU_DIR" worktree remove --force "$tree"' EXIT
k=0
for c in $(git -C "$QEMU_DIR" rev-list --reverse base..series); do
    k=$((k + 1))
    git -C "$tree" checkout -q "$c"
    say "bisect-check: $k/$n $(git -C "$tree" log -1 --format=%s)"
    QEMU_DIR=$tree BUILD_DIR=$build "$TOP/scripts/build.sh" ||
        die "patch $k/$n does not build: $(git -C "$tree" log -1 --format=%s)"
done
say "bisect-check: all $n prefixes build"
