#!/usr/bin/env bash
# Say whether the work tree holds commits or edits that patches/ does not.
# Exit 0 when they agree, 1 otherwise.
. "$(dirname "$0")/lib.sh"

[[ -d $TREE_DIR/.git ]] || { say "status: no work tree (run 'make apply')"; exit 0; }
rc=0
edits=$(git -C "$TREE_DIR" status --porcelain --untracked-files=no)
if [[ -n $edits ]]; then
    say "status: uncommitted edits in ${TREE_DIR#"$TOP"/}:"
    printf '%s\n' "$edits" >&2
    rc=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export_series_to "$tmp/out"
if ! diff -r -q "$PATCH_DIR" "$tmp/out" -x cover.txt >"$tmp/diff" 2>&1; then
    say "status: the work tree's commits differ from ${PATCH_DIR#"$TOP"/} (run 'make export'):"
    sed -e "s|$tmp/out|work tree|g" -e "s|$TOP/||g" "$tmp/diff" >&2
    rc=1
fi
if ((rc == 0)); then
    say "status: work tree and ${PATCH_DIR#"$TOP"/} agree ($(wc -l < "$PATCH_DIR/series") patches)"
fi
exit $rc
