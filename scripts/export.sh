#!/usr/bin/env bash
# Regenerate patches/$SERIES from the work tree's commits (base..series).
# Stable: exporting unchanged commits rewrites no byte.
. "$(dirname "$0")/lib.sh"

[[ -d $TREE_DIR/.git ]] || die "no work tree at $TREE_DIR: run 'make apply' first"
[[ -z $(git -C "$TREE_DIR" status --porcelain --untracked-files=no) ]] ||
    die "the work tree has uncommitted edits: commit them first"
[[ $(git -C "$TREE_DIR" symbolic-ref --short HEAD) = series ]] ||
    die "the work tree is not on branch 'series'"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export_series_to "$tmp"
mkdir -p "$PATCH_DIR"
changed=0
for f in "$PATCH_DIR"/*.patch "$PATCH_DIR/series"; do
    [[ -e $f ]] || continue
    [[ -e $tmp/${f##*/} ]] || { rm "$f"; changed=1; }
done
for f in "$tmp"/*; do
    if ! cmp -s "$f" "$PATCH_DIR/${f##*/}"; then
        cp "$f" "$PATCH_DIR/"
        changed=1
    fi
done
n=$(wc -l < "$PATCH_DIR/series")
if ((changed)); then
    say "export: wrote $n patches and the cover letter to ${PATCH_DIR#"$TOP"/}"
else
    say "export: ${PATCH_DIR#"$TOP"/} already up to date ($n patches)"
fi
