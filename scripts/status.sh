#!/usr/bin/env bash
# Say whether the work tree holds commits or edits that patches/ does not,
# for every series of the stack (QEMU's, or SERIES=libvirt).
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
for name in "${STACK[@]}"; do
    dir=$TOP/patches/$name
    if ! (export_series_to "$name" "$tmp/$name") 2>"$tmp/err"; then
        cat "$tmp/err" >&2
        rc=1
        continue
    fi
    if ! diff -r -q "$dir" "$tmp/$name" -x cover.txt >"$tmp/diff" 2>&1; then
        say "status: the work tree's commits differ from ${dir#"$TOP"/} (run 'make export'):"
        sed -e "s|$tmp/$name|work tree|g" -e "s|$TOP/||g" "$tmp/diff" >&2
        rc=1
    elif ((rc == 0)); then
        say "status: work tree and ${dir#"$TOP"/} agree ($(wc -l < "$dir/series") patches)"
    fi
done
exit $rc
