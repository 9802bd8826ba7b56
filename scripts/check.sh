#!/usr/bin/env bash
# The test command. In order: the self-test of this script's runner,
# checkpatch over every patch, the vmstate dump check, the unit tests the
# series touches, a short run of its fuzz target, migration-test's quick
# set (with one smoke case of each of the series' features) and then every
# other case of the series by name with --full, and its qos-test cases;
# each series of QEMU's stack but the last built alone on what it is
# based on, with its unit tests and its own cases by name (the last one
# is the whole stack); the cross-version runs against the unpatched base,
# the lab's smoke run, the libvirt series' export and libvirt's own tests
# it touches, and a check that docs/figures.md's lab figures are what
# docs/results/ gives. One line per result; ends with
# "N passed, N failed, N skipped" on every path, and exits non-zero on
# any failure.
#
# Every test program runs under a time limit for the whole run and for
# each case; whatever stops it, the failure names the case it was in.
# In the same-version run every case of the series must run and pass.
#
# Environment:
#   CHECK_FULL=1     migration-test --full: upstream's long matrix
#                    (make check-full; not in CI)
#   CHECK_ONLY="selftest checkpatch vmstate unit fuzz qtest alone compat lab libvirt report"
#                    runs a subset
#   CHECK_KVM=1      lets migration-test use KVM (default: TCG only; KVM on
#                    these machines lacks CPUID features and hung)
#   CHECK_TIME_SCALE=N  multiplies every time limit (a slower machine; a
#                    fraction shortens them, as check-breakage.sh does)
#   CHECK_OUT=DIR    where logs go (default work/check)
#   CHECK_QTEST_CASES="/x86_64/migration/netpass ..."  migration-test runs
#                    only these paths and the cases right below each, as
#                    its -p does (scripts/sanitize.sh)
. "$(dirname "$0")/lib.sh"
out=${CHECK_OUT:-$WORK/check}
rm -rf "$out"
mkdir -p "$out"
. "$TOP/scripts/tap.sh"

wanted() { [[ -z ${CHECK_ONLY:-} || " $CHECK_ONLY " = *" $1 "* ]]; }
scale=${CHECK_TIME_SCALE:-1}
secs() { awk -v s="$1" -v k="$scale" 'BEGIN { printf "%d\n", s * k + 0.5 }'; }

# 0. The runner itself: each way a test program can fail is caught.
if wanted selftest; then
    say "check: the test runner's self-test"
    if "$TOP/scripts/check-selftest.sh" >"$out/selftest.log" 2>&1; then
        result pass "check.sh self-test" "$(tail -n 1 "$out/selftest.log")"
    else
        cat "$out/selftest.log"
        result fail "check.sh self-test"
    fi
fi

# 1. checkpatch over every patch of every series.
if wanted checkpatch; then
    say "check: scripts/checkpatch.pl on every patch"
    while IFS= read -r p; do
        if perl "$QEMU_DIR/scripts/checkpatch.pl" --no-summary -q "$p" \
                >"$out/checkpatch.log" 2>&1; then
            result pass "checkpatch ${p##*/}"
        else
            cat "$out/checkpatch.log"
            result fail "checkpatch ${p##*/}"
        fi
    done < <(series_patches)
fi

# 2. The series must not change any VMState description.
if wanted vmstate; then
    say "check: -dump-vmstate of the patched and the base binary, pc-q35-10.2"
    dumped=1
    for b in base:"$BASE_BUILD_DIR" patched:"$BUILD_DIR"; do
        if ! timeout "$(secs 120)" "${b#*:}/qemu-system-x86_64" -M pc-q35-10.2 \
                -nodefaults -display none -accel tcg \
                -dump-vmstate "$out/vmstate-${b%%:*}.json" \
                >"$out/vmstate-${b%%:*}.log" 2>&1; then
            tail -n 5 "$out/vmstate-${b%%:*}.log"
            result fail "vmstate dump of the ${b%%:*} binary" "see $out/vmstate-${b%%:*}.log"
            dumped=0
        fi
    done
    if ((dumped)); then
        if cmp -s "$out/vmstate-base.json" "$out/vmstate-patched.json" &&
           [[ -s $out/vmstate-base.json ]]; then
            result pass "vmstate dump unchanged" "$(wc -c < "$out/vmstate-base.json") bytes"
        else
            diff -u "$out/vmstate-base.json" "$out/vmstate-patched.json" | head -n 40
            result fail "vmstate dump unchanged"
        fi
    fi
fi

# 3. Unit tests the series touches (those a series alone has: TAG
# names it in each result).
unit_tests() {      # unit_tests [TAG]
    local t bin tag=${1:+$1:}
    for t in test-qemu-file test-vmstate test-net-checksum test-netpass-wire \
             test-io-channel-command; do
        bin=$BUILD_DIR/tests/unit/$t
        if [[ -x $bin ]]; then
            say "check: ${tag}tests/unit/$t"
            run_tap "$tag$t" --limit "$(secs 300)" --case-limit "$(secs 60)" -- "$bin" --tap -k
        elif [[ -z $tag ]]; then
            result fail "$t" "not built"
        fi
    done
}
if wanted unit; then
    unit_tests
fi

# 3b. The fuzz target of the series' wire parser, a short run (make fuzz
# runs it longer).
if wanted fuzz; then
    if FUZZ_SECONDS=$(secs 30) "$TOP/scripts/fuzz.sh" >"$out/fuzz.log" 2>&1; then
        result pass "fuzz netpass-wire" "$(sed -n 's/^fuzz: netpass-wire: //p' "$out/fuzz.log")"
    else
        tail -n 20 "$out/fuzz.log"
        result fail "fuzz netpass-wire" "see $out/fuzz.log"
    fi
fi

# 4. migration-test under TCG; then the cross-version runs, the unpatched
# base as source and as destination.
accel=tcg
if [[ ${CHECK_KVM:-0} = 1 && -w /dev/kvm ]]; then
    accel=kvm
fi
# A prefix that runs a command with /dev/kvm hidden under TCG:
# migration-test picks KVM whenever /dev/kvm opens.
no_kvm=()
if [[ $accel = tcg && -e /dev/kvm ]]; then
    no_kvm=(unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh)
fi
migration_test() {      # migration_test NAME [RUN_TAP OPTIONS] [VAR=VALUE...] [-- ARGS...]
    local name=$1 opts=() vars=() start=$SECONDS
    shift
    while (($#)) && [[ $1 = --* && $1 != -- ]]; do opts+=("$1" "$2"); shift 2; done
    while (($#)) && [[ $1 != -- ]]; do vars+=("$1"); shift; done
    shift || true
    # From the build tree, as meson test does (analyze-script needs it).
    local run=(env -C "$BUILD_DIR" QTEST_QEMU_BINARY="$BUILD_DIR/qemu-system-x86_64"
               QTEST_QEMU_IMG="$BUILD_DIR/qemu-img"
               PYTHON="$PYTHON" "${vars[@]}"
               "$BUILD_DIR/tests/qtest/migration-test" --tap -k "$@")
    run_tap "$name" --limit "$(secs 1800)" --case-limit "$(secs 300)" \
        "${opts[@]}" -- "${no_kvm[@]}" "${run[@]}"
    say "check: $name took $((SECONDS - start)) s under $accel; slowest cases:"
    sort -rn "$out/$name.times" | sed -n '1,3s/^/    /p' >&2
}

# The series' own cases: every case its new test files register (a path
# split over string literals joined first), in the tree at REF (default:
# the whole stack).
series_cases() {    # series_cases [REF]
    local f ref=${1:-series}
    git -C "$QEMU_DIR" diff --name-only --diff-filter=A "base..$ref" -- \
        tests/qtest/migration/ |
    while IFS= read -r f; do
        git -C "$QEMU_DIR" show "$ref:$f" |
        perl -0777 -ne 's/"\s*\n\s*"//g;
            print "/x86_64$1\n" while /\bmigration_test_add\(\s*"(\/migration\/[^"]*)"/g'
    done
}
# The cases of FILE that migration-test's -p runs for one of the PATHs:
# the path itself and the cases right below it (GLib's rule).
cases_under() {     # cases_under FILE PATH...
    local f=$1
    shift
    awk -v paths="$*" '
        BEGIN { n = split(paths, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1 }
        { parent = $0; sub(/\/[^\/]*$/, "", parent) }
        ($0 in want) || (parent in want)' "$f"
}
# A series case may skip for want of userfaultfd only where this machine
# has none (it is a kernel option: the sysctl exists where it is built in).
skip_ok=
if ! [[ -e /proc/sys/vm/unprivileged_userfaultfd ]]; then
    skip_ok=userfaultfd
fi
# Likewise a multiqueue tap device (the multiqueue case): not without
# /dev/net/tun or the right to create one (the test's own probe)
probe=npchk$$
if ip tuntap add dev "$probe" mode tap multi_queue 2>/dev/null; then
    ip tuntap del dev "$probe" mode tap multi_queue
else
    skip_ok=${skip_ok:+$skip_ok|}/dev/net/tun
fi
# And vhost-net (the vhost cases): these hosts have none; they run in
# the vhost bed, make vhost-check
if ! [[ -c /dev/vhost-net ]]; then
    skip_ok=${skip_ok:+$skip_ok|}/dev/vhost-net
fi
# And the vhost-vdpa case, which takes /dev/vhost-vdpa-0 and -1 only
# where QTEST_NETPASS_VDPA says they are its own (the bed's VDUSE NICs)
if [[ -z ${QTEST_NETPASS_VDPA:-} ]]; then
    skip_ok=${skip_ok:+$skip_ok|}QTEST_NETPASS_VDPA
fi
if wanted qtest || wanted compat; then
    series_cases > "$out/series-cases.all"
fi
# migration-test --full on the cases of FILE by name, each of which must
# run and pass (GLib's -p also runs the cases right below a path, so a
# case whose parent is listed is not named again).
qtest_byname() {    # qtest_byname FILE NAME
    local c byname=()
    while IFS= read -r c; do
        grep -qxF "${c%/*}" "$1" || byname+=(-p "$c")
    done < "$1"
    migration_test "$2" --must-pass "$1" \
        ${skip_ok:+--skip-ok "$skip_ok"} -- --full "${byname[@]}"
}
# Why a command under timeout LIMIT ended with status ST (not 0)
exit_why() {        # exit_why ST LIMIT
    local st=$1 sig
    if ((st == 124)); then
        echo "ran past its limit of $2 s"
    elif ((st > 128)); then
        sig=$(kill -l $((st - 128)) 2>/dev/null) || sig=$((st - 128))
        echo "killed by signal $sig"
    else
        echo "exit status $st"
    fi
}
# migration-test on the build in $BUILD_DIR: the quick set, then the
# series' other cases by name with --full; each case of file CASES must
# run and pass. TAG (a series alone) prefixes each result and log, and
# runs its cases by name only: upstream's quick set ran on the whole
# stack, which holds that series too.
qtest_runs() {      # qtest_runs CASES [TAG]
    local cases=$1 tag=${2:+$2:} only=() c limit list st
    local quick=$out/${tag}quick-cases
    say "check: ${tag}migration-test, accelerator: $accel"
    cp "$cases" "$out/${tag}series-cases"
    cases=$out/${tag}series-cases
    if [[ -n ${CHECK_QTEST_CASES:-} ]]; then
        # Only these paths (and the cases right below each), each series
        # case among them still a must
        for c in $CHECK_QTEST_CASES; do
            only+=(-p "$c")
        done
        # shellcheck disable=SC2086 # a list of paths
        cases_under "$out/${tag}series-cases" $CHECK_QTEST_CASES > "$cases.under"
        mv "$cases.under" "$cases"
    fi
    if [[ ! -s $cases && -n ${CHECK_QTEST_CASES:-} ]]; then
        [[ -n $tag ]] && return 0
        result fail "series cases" "none at or right below CHECK_QTEST_CASES's paths"
    elif [[ ! -s $cases ]]; then
        result fail "${tag}series cases" "found no migration_test_add() in the series' test files"
    fi
    if [[ ${CHECK_FULL:-0} = 1 ]]; then
        migration_test "${tag}migration-test" --must-pass "$cases" \
            ${skip_ok:+--skip-ok "$skip_ok"} -- --full "${only[@]}"
        return 0
    fi
    if [[ -n $tag ]]; then
        qtest_byname "$cases" "${tag}migration-test"
        return 0
    fi
    # The quick set, as make check-qtest runs it on a host without
    # /dev/kvm (with it, meson adds --full): one smoke case of each of
    # the series' features among upstream's. The series registers its
    # other cases for --full only; they run next, by name, so that
    # every one of them still runs here. Listing starts QEMU to probe
    # what it has, so it runs under a limit too.
    limit=$(secs 120)
    list=(timeout "$limit" "${no_kvm[@]}" env -C "$BUILD_DIR"
          QTEST_QEMU_BINARY="$BUILD_DIR/qemu-system-x86_64"
          "$BUILD_DIR/tests/qtest/migration-test" -l)
    "${list[@]}" >"$quick" 2>"$quick.log" && st=0 || st=$?
    if ((st)); then
        result fail "${tag}migration-test -l" "$(exit_why "$st" "$limit") (see $quick.log)"
    fi
    grep -xF -f "$cases" "$quick" > "$cases.quick" || true
    grep -vxF -f "$quick" "$cases" > "$cases.full" || true
    migration_test "${tag}migration-test" --must-pass "$cases.quick" \
        ${skip_ok:+--skip-ok "$skip_ok"} -- "${only[@]}"
    if [[ -s $cases.full ]]; then
        qtest_byname "$cases.full" "${tag}migration-test-full"
    fi
}
if wanted qtest; then
    qtest_runs "$out/series-cases.all"
fi

# 4a. The series' cases in qos-test (netpass beside a vhost-user netdev,
# whose test server is qos-test's), each under every path qos-test
# lists it at; each must be listed, run and pass. Not with
# CHECK_QTEST_CASES, which names migration-test's cases.
QOS_CASES=(vhost-user/netpass-uncovered)
if wanted qtest && [[ -n ${CHECK_QTEST_CASES:-} ]]; then
    result skip "qos-test" "CHECK_QTEST_CASES names migration-test's cases"
elif wanted qtest; then
    say "check: qos-test, accelerator: qtest"
    qos=(env -C "$BUILD_DIR" QTEST_QEMU_BINARY="$BUILD_DIR/qemu-system-x86_64"
         "$BUILD_DIR/tests/qtest/qos-test")
    limit=$(secs 120)
    timeout "$limit" "${no_kvm[@]}" "${qos[@]}" -l \
        >"$out/qos-list" 2>"$out/qos-list.log" && st=0 || st=$?
    if ((st)); then
        result fail "qos-test -l" "$(exit_why "$st" "$limit") (see $out/qos-list.log)"
    fi
    : >"$out/qos-cases"
    qos_paths=()
    for c in "${QOS_CASES[@]}"; do
        if ! grep -E "/$c\$" "$out/qos-list" >>"$out/qos-cases"; then
            result fail "qos-test: $c" "not in qos-test -l"
        fi
    done
    while IFS= read -r c; do
        qos_paths+=(-p "$c")
    done <"$out/qos-cases"
    if ((${#qos_paths[@]})); then
        run_tap qos-test --limit "$(secs 600)" --case-limit "$(secs 120)" \
            --must-pass "$out/qos-cases" -- "${no_kvm[@]}" "${qos[@]}" \
            --tap -k "${qos_paths[@]}"
    fi
fi

# 4b. Each series of QEMU's stack but the last (which is the whole stack,
# tested above), alone on what it is based on: built from its tip in a
# tree of its own (beside its build directory, as work/qemu and
# work/build are, so that ccache shares what both compile), then its
# unit tests and migration-test with its own cases.
if wanted alone && ((${#STACK[@]} > 1)); then
    root=$WORK/alone
    for name in "${STACK[@]:0:${#STACK[@]}-1}"; do
        tip=$(series_tip "$name")
        if ! git -C "$QEMU_DIR" rev-parse -q --verify "$tip" >/dev/null; then
            result fail "$name: builds alone" "no branch $tip in ${QEMU_DIR#"$TOP"/} (make apply FORCE=1)"
            continue
        fi
        # Its own cases: those the series below it has were proven there
        series_cases "$tip" > "$out/$name-cases.tip"
        series_cases "$(series_from "$name")" > "$out/$name-cases.from"
        grep -vxF -f "$out/$name-cases.from" "$out/$name-cases.tip" \
            > "$out/$name-cases.all" || true
        if [[ -n ${CHECK_QTEST_CASES:-} ]]; then
            # shellcheck disable=SC2086 # a list of paths
            if ! cases_under "$out/$name-cases.all" $CHECK_QTEST_CASES | grep -q .; then
                result skip "$name: alone" "none of its cases at or right below CHECK_QTEST_CASES's paths"
                continue
            fi
        fi
        say "check: $name alone ($(git -C "$QEMU_DIR" rev-list --count "$(series_from "$name")..$tip") patches on $(series_from "$name"))"
        if ! checkout_beside "$QEMU_DIR" "$root/qemu" "$tip" >"$out/$name-build.log" 2>&1 ||
           ! QEMU_DIR=$root/qemu BUILD_DIR=$root/build \
                "$TOP/scripts/build.sh" >>"$out/$name-build.log" 2>&1; then
            tail -n 20 "$out/$name-build.log"
            result fail "$name: builds alone" "see $out/$name-build.log"
            continue
        fi
        result pass "$name: builds alone" "$tip, $(git -C "$QEMU_DIR" rev-parse --short "$tip")"
        whole=$BUILD_DIR
        BUILD_DIR=$root/build
        if wanted unit; then
            unit_tests "$name"
        fi
        qtest_runs "$out/$name-cases.all" "$name"
        BUILD_DIR=$whole
    done
fi
if wanted compat; then
    # The base without the series. Debian's packaged QEMU (10.0) cannot
    # stand in: it is built without the qtest accelerator that
    # migration-test needs.
    peers=(base="$BASE_BUILD_DIR/qemu-system-x86_64")
    # Upstream's own cases, then the series'
    upstream=(/x86_64/migration/precopy/unix/plain
              /x86_64/migration/postcopy/plain)
    paths=("${upstream[@]}"
           /x86_64/migration/vm-started
           /x86_64/migration/netpass
           /x86_64/migration/netpass/corrupted
           /x86_64/migration/netpass/netdev-del
           /x86_64/migration/keepalive/precopy/healthy
           /x86_64/migration/keepalive/postcopy/healthy)
    compat=(-- --full)
    for c in "${paths[@]}"; do
        compat+=(-p "$c")
    done
    # Each of upstream's two cases and the series' cases among them must
    # run and pass, or skip only because the older peer lacks a feature
    # the case needs (or for what the same-version run may skip for):
    # none may drop out unnoticed.
    cases_under "$out/series-cases.all" "${paths[@]}" > "$out/compat-cases"
    printf '%s\n' "${upstream[@]}" >> "$out/compat-cases"
    older="needs a source and a destination that know it|does not know"
    for peer in "${peers[@]}"; do
        say "check: cross-version with ${peer#*=} as the source, then as the destination"
        migration_test "compat(src=${peer%%=*})" --must-pass "$out/compat-cases" \
            --skip-ok "$older${skip_ok:+|$skip_ok}" \
            QTEST_QEMU_BINARY_SRC="${peer#*=}" "${compat[@]}"
        migration_test "compat(dst=${peer%%=*})" --must-pass "$out/compat-cases" \
            --skip-ok "$older${skip_ok:+|$skip_ok}" \
            QTEST_QEMU_BINARY_DST="${peer#*=}" "${compat[@]}"
    done
fi

# 5. The lab's smoke run: a real guest over TAP and a bridge migrates with
# netpass off, then on; correctness only (it answers before and after, the
# migration completes with exactly one side running, and with netpass no
# datagram is lost, reordered or duplicated), never timing.
if wanted lab; then
    if [[ $(id -u) != 0 || ! -c /dev/net/tun ]] || ! ip netns list >/dev/null 2>&1; then
        result skip "lab smoke" "needs root, /dev/net/tun and network namespaces"
    elif timeout "$(secs 300)" "$TOP/lab/guest.sh" >"$out/lab.log" 2>&1 &&
         timeout "$(secs 900)" "$PYTHON" "$TOP/lab/lab.py" smoke \
            --out "$out/lab" >>"$out/lab.log" 2>&1; then
        grep '^smoke' "$out/lab.log"
        result pass "lab smoke"
    else
        tail -n 20 "$out/lab.log"
        result fail "lab smoke" "see $out/lab.log"
    fi
fi

# 6. The libvirt series: it exports byte-stably from its work tree, and
# libvirt's own test programs it touches pass (each under a time limit;
# meson's log names the failing case). Built by make libvirt-build.
if wanted libvirt; then
    lvbuild=$WORK/build-libvirt
    if SERIES=libvirt "$TOP/scripts/status.sh" >"$out/libvirt-status.log" 2>&1; then
        result pass "libvirt series exports byte-stably" "$(tail -n 1 "$out/libvirt-status.log" | sed 's/^==> status: //')"
    else
        cat "$out/libvirt-status.log"
        result fail "libvirt series exports byte-stably"
    fi
    for t in qemumigparamstest qemumonitorjsontest qemucapabilitiestest \
             domaincapstest qemucaps2xmltest qemumigrationcookiexmltest virshtest; do
        if ! [[ -x $lvbuild/tests/$t ]]; then
            result fail "libvirt $t" "not built (make libvirt-build)"
        elif timeout "$(secs 600)" meson test -C "$lvbuild" --no-rebuild \
                --print-errorlogs "$t" >"$out/libvirt-$t.log" 2>&1; then
            result pass "libvirt $t" "$(awk '$NF == "OK" && $(NF-1) ~ /^[0-9]+$/ { n = $(NF-1) } END { print n + 0 }' "$lvbuild/meson-logs/testlog.txt") cases"
        else
            grep -E 'FAILED|Error|error' "$out/libvirt-$t.log" | head -n 20
            result fail "libvirt $t" "see $out/libvirt-$t.log"
        fi
    done
fi

# 7. docs/figures.md's lab tables and plots are what docs/results/ gives.
if wanted report; then
    if "$PYTHON" "$TOP/lab/lab.py" report --check >"$out/report.log" 2>&1; then
        result pass "lab report" "docs/figures.md tables and plots regenerate from docs/results/"
    else
        cat "$out/report.log"
        result fail "lab report" "run 'lab/lab.py report' and commit the result"
    fi
fi

check_done
