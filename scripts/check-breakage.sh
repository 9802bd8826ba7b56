#!/usr/bin/env bash
# Breaks what the test command runs, on purpose and with the real
# binaries, and checks that scripts/check.sh fails each time, naming what
# broke and still printing its count line. check-selftest.sh proves the
# same verdicts with fake programs in CI; this is the proof with QEMU and
# migration-test themselves. make check-breakage; about 4 minutes; not in
# CI. Each breakage lives in a copy of the build tree made of symlinks, so
# the real build is never touched.
#
#   hung     the destination QEMU freezes (SIGSTOP) once started: the case
#            it was in must fail on the case time limit, by name
#   crash    migration-test is killed by SIGSEGV after its last result
#   skip     the unpatched base stands in for the patched QEMU: the
#            series' cases skip ("does not know the capability"), which
#            must fail in the same-version run
#   vmstate  QEMU cannot dump its VMState: a failure and the count line
#
# Usage: check-breakage.sh [NAME...]   (default: all four)
. "$(dirname "$0")/lib.sh"
root=$WORK/breakage
rm -rf "$root"
mkdir -p "$root"
bad=0
only=" $* "
wanted() { [[ $only = "  " || $only = *" $1 "* ]]; }

forest() {              # forest NAME: a symlink copy of the build tree
    cp -as "$BUILD_DIR" "$root/$1"
    echo "$root/$1"
}

wrap() {                # wrap FILE BODY: replace FILE by a bash script
    rm -f "$1"
    printf '#!/usr/bin/env bash\n%s\n' "$2" >"$1"
    chmod +x "$1"
}

# expect NAME REGEX VAR=VALUE...: check.sh, run with the variables, must
# fail, print a "fail" line matching REGEX and end with its count line.
expect() {
    local name=$1 want=$2 log=$root/$1.log start=$SECONDS
    shift 2
    say "breakage: $name"
    if env "$@" CHECK_OUT="$root/$name.out" "$TOP/scripts/check.sh" >"$log" 2>&1; then
        echo "NOT CAUGHT $name: check.sh passed (see $log)"
        bad=1
    elif ! grep -E "^fail .*$want" "$log" >"$root/$name.hit"; then
        echo "NOT CAUGHT $name: no 'fail' line matches /$want/ (see $log)"
        bad=1
    elif ! tail -n 1 "$log" | grep -Eq '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'; then
        echo "NOT CAUGHT $name: the last line is not the count line (see $log)"
        bad=1
    else
        echo "caught $name in $((SECONDS - start)) s:"
        head -n 3 "$root/$name.hit" | sed 's/^/    /'
        echo "    $(tail -n 1 "$log")"
    fi
}

real_qemu=$BUILD_DIR/qemu-system-x86_64
real_test=$BUILD_DIR/tests/qtest/migration-test

if wanted hung; then
    d=$(forest hung)
    # libqtest ends QEMU with SIGTERM and takes the wrapper's death by
    # that signal for a crash: pass it on, and exit with QEMU's status.
    wrap "$d/qemu-system-x86_64" "case \" \$* \" in
*' -incoming '*) \"$real_qemu\" \"\$@\" & pid=\$!
                 trap 'kill -TERM \$pid; kill -CONT \$pid' TERM
                 sleep 3; kill -STOP \$pid
                 wait \$pid; st=\$?
                 if kill -0 \$pid 2>/dev/null; then wait \$pid; st=\$?; fi
                 exit \$st ;;
esac
exec \"$real_qemu\" \"\$@\""
    expect hung "/x86_64/migration/.*took more than 30 s" \
        BUILD_DIR="$d" CHECK_ONLY=qtest CHECK_TIME_SCALE=0.1
fi

if wanted crash; then
    d=$(forest crash)
    wrap "$d/tests/qtest/migration-test" "\"$real_test\" \"\$@\"; kill -SEGV \$\$"
    expect crash "killed by signal SEGV" BUILD_DIR="$d" CHECK_ONLY=qtest
fi

if wanted skip; then
    d=$(forest skip)
    rm "$d/qemu-system-x86_64"
    ln -s "$BASE_BUILD_DIR/qemu-system-x86_64" "$d/qemu-system-x86_64"
    expect skip "/x86_64/migration/.*skipped, but must run here" \
        BUILD_DIR="$d" CHECK_ONLY=qtest
fi

if wanted vmstate; then
    d=$(forest vmstate)
    wrap "$d/qemu-system-x86_64" 'echo "qemu: cannot dump (deliberate breakage)" >&2; exit 1'
    expect vmstate "vmstate dump of the patched binary" \
        BUILD_DIR="$d" CHECK_ONLY=vmstate
fi

if ((bad)); then
    echo "check-breakage: a breakage went through"
    exit 1
fi
echo "check-breakage: every breakage caught"
