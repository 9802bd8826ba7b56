#!/usr/bin/env bash
# The test command: checkpatch over every patch, the vmstate dump check, the
# unit tests the series touches, the x86_64 migration-test smoke set (which
# runs the series' own qtests), the cross-version runs against the unpatched
# base and the lab's smoke run. Ends with "N passed, N failed, N
# skipped" and exits non-zero on any failure.
#
# Environment: CHECK_KVM=1 lets migration-test use KVM (default: TCG only,
# because KVM on these machines lacks CPUID features and hung in postcopy);
# CHECK_ONLY="checkpatch vmstate unit qtest compat lab" runs a subset.
. "$(dirname "$0")/lib.sh"

out=$WORK/check
rm -rf "$out"
mkdir -p "$out"
passed=0 failed=0 skipped=0
failures=()

result() {              # result pass|fail|skip NAME [DETAIL]
    case $1 in
    pass) passed=$((passed + 1)) ;;
    fail) failed=$((failed + 1)); failures+=("$2") ;;
    skip) skipped=$((skipped + 1)) ;;
    esac
    printf '%-4s %s%s\n' "$1" "$2" "${3:+ ($3)}"
}

wanted() { [[ -z ${CHECK_ONLY:-} || " $CHECK_ONLY " = *" $1 "* ]]; }

# Count a TAP stream (GLib's --tap output) into the totals. A program that
# died before its plan was done, or ran nothing, is a failure too.
tap_results() {         # tap_results NAME FILE LOG
    local line name reason seen=0 plan=
    while IFS= read -r line; do
        case $line in
        "ok "*"# SKIP"*) name=${line#ok * }; reason=${name#*# SKIP}; result skip "$1 ${name%% # SKIP*}" "${reason# }" ;;
        "ok "*) name=${line#ok * }; result pass "$1 $name" ;;
        "not ok "*) name=${line#not ok * }; result fail "$1 $name" ;;
        1..*) plan=${line#1..}; continue ;;
        *) continue ;;
        esac
        seen=$((seen + 1))
    done < "$2"
    if [[ -z $plan || $seen -eq 0 || $seen -lt ${plan%% *} ]]; then
        tail -n 20 "$3"
        result fail "$1" "ran $seen of ${plan:-?} tests, see $3"
    fi
}

# 1. checkpatch over every patch of the series.
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
    for b in base:"$BASE_BUILD_DIR" patched:"$BUILD_DIR"; do
        "${b#*:}/qemu-system-x86_64" -M pc-q35-10.2 -nodefaults -display none \
            -accel tcg -dump-vmstate "$out/vmstate-${b%%:*}.json" \
            >"$out/vmstate-${b%%:*}.log" 2>&1
    done
    if cmp -s "$out/vmstate-base.json" "$out/vmstate-patched.json" &&
       [[ -s $out/vmstate-base.json ]]; then
        result pass "vmstate dump unchanged" "$(wc -c < "$out/vmstate-base.json") bytes"
    else
        diff -u "$out/vmstate-base.json" "$out/vmstate-patched.json" | head -n 40
        result fail "vmstate dump unchanged"
    fi
fi

# 3. Unit tests the series touches.
if wanted unit; then
    for t in test-qemu-file test-vmstate; do
        bin=$BUILD_DIR/tests/unit/$t
        if [[ -x $bin ]]; then
            say "check: tests/unit/$t"
            "$bin" --tap -k >"$out/$t.tap" 2>"$out/$t.log" || true
            tap_results "$t" "$out/$t.tap" "$out/$t.log"
        else
            result fail "$t" "not built"
        fi
    done
fi

# 4. migration-test: the smoke set (with the series' tests) under TCG; then
# the cross-version runs, the unpatched base as source and as destination.
accel=tcg
if [[ ${CHECK_KVM:-0} = 1 && -w /dev/kvm ]]; then
    accel=kvm
fi
migration_test() {      # migration_test NAME [VAR=VALUE...] [-- ARGS...]
    local name=$1 vars=() start=$SECONDS
    shift
    while (($#)) && [[ $1 != -- ]]; do vars+=("$1"); shift; done
    shift || true
    local run=(env QTEST_QEMU_BINARY="$BUILD_DIR/qemu-system-x86_64"
               PYTHON="$PYTHON" "${vars[@]}"
               "$BUILD_DIR/tests/qtest/migration-test" --tap -k "$@")
    if [[ $accel = tcg && -e /dev/kvm ]]; then
        # migration-test picks KVM whenever /dev/kvm opens: hide it.
        run=(unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "${run[@]}")
    fi
    # From the build tree, as meson test does (analyze-script needs it).
    (cd "$BUILD_DIR" && "${run[@]}") >"$out/$name.tap" 2>"$out/$name.log" || true
    tap_results "$name" "$out/$name.tap" "$out/$name.log"
    say "check: $name took $((SECONDS - start)) s under $accel"
}
if wanted qtest; then
    say "check: migration-test (smoke set), accelerator: $accel"
    migration_test migration-test
fi
if wanted compat; then
    # The base without the series. Debian's packaged QEMU (10.0) cannot
    # stand in: it is built without the qtest accelerator that
    # migration-test needs.
    peers=(base="$BASE_BUILD_DIR/qemu-system-x86_64")
    compat=(-- -p /x86_64/migration/precopy/unix/plain
               -p /x86_64/migration/postcopy/plain
               -p /x86_64/migration/vm-started
               -p /x86_64/migration/netpass)
    for peer in "${peers[@]}"; do
        say "check: cross-version with ${peer#*=} as the source, then as the destination"
        migration_test "compat(src=${peer%%=*})" QTEST_QEMU_BINARY_SRC="${peer#*=}" "${compat[@]}"
        migration_test "compat(dst=${peer%%=*})" QTEST_QEMU_BINARY_DST="${peer#*=}" "${compat[@]}"
    done
fi

# 5. The lab's smoke run: a real guest over TAP and a bridge migrates with
# netpass off, then on; correctness only (it answers before and after, the
# migration completes, sent = echoed + lost, and with netpass nothing is
# lost, reordered or duplicated), never timing.
if wanted lab; then
    if [[ $(id -u) != 0 || ! -c /dev/net/tun ]] || ! ip netns list >/dev/null 2>&1; then
        result skip "lab smoke" "needs root, /dev/net/tun and network namespaces"
    elif "$TOP/lab/guest.sh" >"$out/lab.log" 2>&1 &&
         "$PYTHON" "$TOP/lab/lab.py" smoke --out "$out/lab" >>"$out/lab.log" 2>&1; then
        grep '^smoke' "$out/lab.log"
        result pass "lab smoke"
    else
        tail -n 20 "$out/lab.log"
        result fail "lab smoke"
    fi
fi

echo
if ((failed)); then
    printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
