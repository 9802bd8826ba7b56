#!/usr/bin/env bash
# Make the work tree: the base plus every patch of each series of the stack
# in turn (QEMU's, or SERIES=libvirt), as commits applied with git am in
# series order; branch stack/NAME ends each series but the last, branch
# "series" the last. Reproducible (fixed
# committer), so re-applying gives the same commit ids. A work tree that
# differs from patches/ is left alone unless FORCE=1, and even then its
# branch is kept as backup/DATE.
. "$(dirname "$0")/lib.sh"

git -C "$BASE_DIR" rev-parse -q --verify refs/tags/base >/dev/null 2>&1 ||
    die "no base: run 'make fetch' first"

if [[ -d $TREE_DIR/.git ]]; then
    if "$TOP/scripts/status.sh" 2>/dev/null; then
        say "apply: work tree already matches patches/"
        exit 0
    fi
    if [[ ${FORCE:-0} != 1 ]]; then
        say "apply: the work tree differs from patches/; using it as it is"
        say "apply: ('make export' saves it; 'make apply FORCE=1' re-applies patches/)"
        exit 0
    fi
    [[ -z $(git -C "$TREE_DIR" status --porcelain --untracked-files=no) ]] ||
        die "the work tree has uncommitted edits; commit and export them, or discard them"
    keep=backup/$(date +%Y%m%d-%H%M%S)
    git -C "$TREE_DIR" branch -q -m series "$keep" 2>/dev/null || true
    for b in $(git -C "$TREE_DIR" for-each-ref --format='%(refname:short)' refs/heads/stack/); do
        git -C "$TREE_DIR" branch -q -m "$b" "$keep-$b"
    done
    say "apply: work tree differed from patches/; old branches kept as $keep (and $keep-stack/...)"
else
    say "apply: cloning the base into ${TREE_DIR#"$TOP"/}"
    git clone -q --no-checkout "$BASE_DIR" "$TREE_DIR"
    git -C "$TREE_DIR" fetch -q origin 'refs/tags/base:refs/tags/base'
fi
cd "$TREE_DIR"
git config user.name "$IDENT_NAME"
git config user.email "$IDENT_EMAIL"
git checkout -q -B series base
for name in "${STACK[@]}"; do
    mapfile -t patches < <(series_patches "$name")
    if ((${#patches[@]})); then
        say "apply: $name: git am ${#patches[@]} patches"
        git am -q --committer-date-is-author-date "${patches[@]}"
    fi
    if [[ $(series_tip "$name") != series ]]; then
        git branch -q -f "$(series_tip "$name")" HEAD
    fi
done
say "apply: series is $(git rev-parse --short HEAD), $(git rev-list --count base..HEAD) commits on base"
