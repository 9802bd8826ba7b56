#!/usr/bin/env bash
# Regenerate patches/NAME for every series of the stack (QEMU's, or
# SERIES=libvirt) from the work tree's commits, each from its base to its
# tip. Stable: exporting unchanged commits rewrites no byte.
. "$(dirname "$0")/lib.sh"

[[ -d $TREE_DIR/.git ]] || die "no work tree at $TREE_DIR: run 'make apply' first"
[[ -z $(git -C "$TREE_DIR" status --porcelain --untracked-files=no) ]] ||
    die "the work tree has uncommitted edits: commit them first"
[[ $(git -C "$TREE_DIR" symbolic-ref --short HEAD) = series ]] ||
    die "the work tree is not on branch 'series'"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in "${STACK[@]}"; do
    dir=$TOP/patches/$name
    export_series_to "$name" "$tmp/$name"
    mkdir -p "$dir"
    changed=0
    for f in "$dir"/*.patch "$dir/series"; do
        [[ -e $f ]] || continue
        [[ -e $tmp/$name/${f##*/} ]] || { rm "$f"; changed=1; }
    done
    for f in "$tmp/$name"/*; do
        if ! cmp -s "$f" "$dir/${f##*/}"; then
            cp "$f" "$dir/"
            changed=1
        fi
    done
    n=$(wc -l < "$dir/series")
    if ((changed)); then
        say "export: wrote $n patches and the cover letter to ${dir#"$TOP"/}"
    else
        say "export: ${dir#"$TOP"/} already up to date ($n patches)"
    fi
done
