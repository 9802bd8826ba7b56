#!/usr/bin/env bash
# Build every prefix of QEMU's stack (base + first k patches) in a scratch
# worktree, so that each patch is known to build on its own; with
# BISECT_SERIES=NAME, only the prefixes that end in that series. Slow:
# not in CI.
#
# The scratch tree and its build directory sit side by side like work/qemu
# and work/build (build.sh makes their parent ccache's base directory),
# so the compiler sees the same relative paths and ccache reuses what the
# normal builds (and earlier runs) compiled.
. "$(dirname "$0")/lib.sh"

root=$WORK/bisect
range=base..series
if [[ -n ${BISECT_SERIES:-} ]]; then
    range=$(series_from "$BISECT_SERIES")..$(series_tip "$BISECT_SERIES")
fi
n=$(git -C "$QEMU_DIR" rev-list --count "$range")
checkout_beside "$QEMU_DIR" "$root/qemu" base
trap 'git -C "$QEMU_DIR" worktree remove --force "$root/qemu"' EXIT
k=0
for c in $(git -C "$QEMU_DIR" rev-list --reverse "$range"); do
    k=$((k + 1))
    git -C "$root/qemu" checkout -q "$c"
    say "bisect-check: $k/$n $(git -C "$root/qemu" log -1 --format=%s)"
    QEMU_DIR=$root/qemu BUILD_DIR=$root/build "$TOP/scripts/build.sh" ||
        die "patch $k/$n does not build: $(git -C "$root/qemu" log -1 --format=%s)"
done
say "bisect-check: all $n prefixes build"
