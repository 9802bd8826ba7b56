#!/usr/bin/env bash
# Self-test of the test runner (scripts/tap.sh) and of check.sh's count
# line: fake test programs that pass, hang, run too long, crash after
# their last case, exit with a bad status, leave their plan unfinished,
# skip a case that must run, or never run it; each must give the verdict
# below. Takes about 20 seconds. Exit 0 when every verdict is right.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0

# fake NAME BODY: a test program printing TAP the way GLib does
fake() {
    printf '#!/bin/bash\n%s\n' "$2" > "$tmp/$1"
    chmod +x "$tmp/$1"
}
# expect WHAT PATTERN [RUN_TAP OPTIONS] -- PROGRAM: the runner's output for
# PROGRAM matches PATTERN (an extended regex over all of it)
expect() {
    local what=$1 pattern=$2 got
    shift 2
    got=$(out=$tmp; . "$TOP/scripts/tap.sh"; trap - EXIT
          run_tap "$what" "$@"; echo "counts $passed $failed $skipped")
    if [[ $got =~ $pattern ]]; then
        echo "ok   $what"
    else
        echo "FAIL $what: expected /$pattern/, got:"
        sed 's/^/    /' <<<"$got"
        bad=$((bad + 1))
    fi
}

fake good 'echo 1..2; echo "# Running /t/one"; echo "ok 1 /t/one"
           echo "# Running /t/two"; echo "ok 2 /t/two"'
expect passes 'counts 2 0 0$' -- "$tmp/good"

fake hang 'echo 1..2; echo "# Running /t/one"; echo "ok 1 /t/one"
           echo "# Running /t/two"; sleep 300'
expect hung-case 'fail hung-case /t/two \(took more than 2 s; ran 1 of 2 cases.*counts 1 1 0$' \
    --case-limit 2 -- "$tmp/hang"

fake slow 'echo 1..9; for i in 1 2 3 4 5 6 7 8 9; do
           echo "# Running /t/$i"; sleep 1; echo "ok $i /t/$i"; done'
expect whole-limit 'fail whole-limit /t/[0-9] \(ran past its limit of 3 s' \
    --limit 3 -- "$tmp/slow"

fake crash 'echo 1..2; echo "# Running /t/one"; echo "ok 1 /t/one"
            echo "# Running /t/two"; echo "ok 2 /t/two"; kill -SEGV $$'
expect crash-after-last 'fail crash-after-last \(killed by signal SEGV; ran 2 of 2.*counts 2 1 0$' \
    -- "$tmp/crash"

fake status 'echo 1..1; echo "# Running /t/one"; echo "ok 1 /t/one"; exit 3'
expect exit-status 'fail exit-status \(exit status 3; ran 1 of 1.*counts 1 1 0$' \
    -- "$tmp/status"

fake notok 'echo 1..2; echo "# Running /t/one"; echo "not ok 1 /t/one"
            echo "# Running /t/two"; echo "ok 2 /t/two"; exit 1'
expect not-ok-once 'fail not-ok-once /t/one
pass not-ok-once /t/two
counts 1 1 0$' -- "$tmp/notok"

fake unfinished 'echo 1..3; echo "# Running /t/one"; echo "ok 1 /t/one"'
expect unfinished 'fail unfinished \(no plan or an unfinished one; ran 1 of 3' \
    -- "$tmp/unfinished"

printf '/t/series\n/t/gone\n' > "$tmp/must"
fake skips 'echo 1..2; echo "# Running /t/series"
            echo "ok 1 /t/series # SKIP the binary lacks netpass"
            echo "# Running /t/other"; echo "ok 2 /t/other # SKIP needs a peer"'
expect must-pass 'fail must-pass /t/series \(skipped, but must run here: the binary lacks netpass\)
skip must-pass /t/other \(needs a peer\)
fail must-pass /t/gone \(did not run, but must run here\)
counts 0 2 1$' --must-pass "$tmp/must" -- "$tmp/skips"

printf '/t/pc\n' > "$tmp/must-pc"
fake nouffd 'echo 1..1; echo "# Running /t/pc"
             echo "ok 1 /t/pc # SKIP postcopy needs userfaultfd"'
expect skip-allowed 'skip skip-allowed /t/pc .*counts 0 0 1$' \
    --must-pass "$tmp/must-pc" --skip-ok userfaultfd -- "$tmp/nouffd"

# check.sh prints its count line and fails when something it runs is
# missing (here: both QEMU binaries, for the vmstate check)...
got=$(WORK=$tmp/work CHECK_ONLY=vmstate "$TOP/scripts/check.sh" 2>/dev/null) && status=0 || status=$?
if [[ $status = 1 && $got =~ fail\ vmstate\ dump\ of\ the\ base\ binary.*0\ passed,\ 2\ failed,\ 0\ skipped$ ]]; then
    echo "ok   check.sh without binaries"
else
    echo "FAIL check.sh without binaries: status $status, got:"; sed 's/^/    /' <<<"$got"
    bad=$((bad + 1))
fi
# ... and when it stops on an error of its own.
printf '%s\n' ". '$TOP/scripts/lib.sh'; out=$tmp; . '$TOP/scripts/tap.sh'" \
    'result pass first' 'false' 'check_done' > "$tmp/early"
got=$(bash "$tmp/early" 2>&1) && status=0 || status=$?
if [[ $status = 1 && $got =~ fail\ early\ \(stopped\ early\ with\ status\ 1.*1\ passed,\ 1\ failed,\ 0\ skipped$ ]]; then
    echo "ok   early stop"
else
    echo "FAIL early stop: status $status, got:"; sed 's/^/    /' <<<"$got"
    bad=$((bad + 1))
fi

((bad == 0)) && echo "all verdicts right" || { echo "$bad verdicts wrong"; exit 1; }
