#!/usr/bin/env bash
# The series' netpass and vm-started qtests against a QEMU (and a
# migration-test) built with AddressSanitizer and UBSan, in work/build-asan.
#  1. every case of both: any report fails the run (ASan aborts the QEMU,
#     UBSan halts it, and the logs are searched besides);
#  2. leaks: the netpass cases that set up and tear down netpass many
#     times (50 migrations in a row, cancel, flooded frames) with leak
#     detection on; a leak whose allocation stack passes through the
#     series' code fails the run. Leaks of the base are listed, not
#     judged: QEMU does not free everything at exit.
# A first build takes long (see the README); CI does not run this.
. "$(dirname "$0")/lib.sh"

export BUILD_DIR=$WORK/build-asan
SANITIZE=1 "$TOP/scripts/build.sh" || exit 1

scale=${CHECK_TIME_SCALE:-4}
rc=0
# Reports go to files of their own (DIR/san.PID) as well as to stderr,
# which a test may hide (the cases that expect a QEMU to fail)
sanitizer_reports() {   # sanitizer_reports DIR: fails if it holds one
    local pat='ERROR: AddressSanitizer\|runtime error:\|Sanitizer has encountered'
    if grep -l "$pat" "$1"/*.log "$1"/san.* 2>/dev/null; then
        grep -h -m3 -A12 "$pat" "$1"/*.log "$1"/san.* >&2
        return 1
    fi
}

say "sanitize: netpass and vm-started under ASan and UBSan"
out=$WORK/check-asan
rm -rf "$out"; mkdir -p "$out"
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$out/san \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$out/san \
    CHECK_ONLY=qtest CHECK_OUT=$out CHECK_TIME_SCALE=$scale \
    CHECK_QTEST_CASES="/x86_64/migration/netpass /x86_64/migration/netpass/corrupted
                       /x86_64/migration/netpass/netdev-del /x86_64/migration/vm-started" \
    "$TOP/scripts/check.sh" || rc=1
sanitizer_reports "$out" || rc=1

say "sanitize: leaks of netpass set up and torn down again and again"
# The slow unwinder: glib has no frame pointers, so the fast one stops
# at g_malloc() and no leak could be traced to the code that made it
leaks=$WORK/check-asan-leaks
rm -rf "$leaks"; mkdir -p "$leaks"
ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:halt_on_error=1:log_path=$leaks/san \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$leaks/san \
    LSAN_OPTIONS=exitcode=0 \
    CHECK_ONLY=qtest CHECK_OUT=$leaks CHECK_TIME_SCALE=$scale \
    CHECK_QTEST_CASES="/x86_64/migration/netpass/repeated
                       /x86_64/migration/netpass/cancel /x86_64/migration/netpass/flooded" \
    "$TOP/scripts/check.sh" || rc=1
sanitizer_reports "$leaks" || rc=1
# One leak report per block, from "Direct/Indirect leak" to a blank line
"$PYTHON" - "$leaks" <<'PY' || rc=1
import glob, re, sys
ours = re.compile(r"netpass|netfilter_pass_on|qemu_net_queue_take|"
                  r"qemu_take_queued_packets|vm_started|post_start")
total = series = blind = 0
for log in glob.glob(sys.argv[1] + "/san.*"):
    for block in re.split(r"\n\s*\n", open(log, errors="replace").read()):
        if re.search(r"(Direct|Indirect) leak of", block):
            total += 1
            if ours.search(block):
                series += 1
                print(block, file=sys.stderr)
            elif "/qemu/" not in block:
                # No frame of QEMU's: nothing to judge it by
                blind += 1
print(f"sanitize: {total} leak reports, {series} through the series' "
      f"code, {blind} with no QEMU frame in their stack")
sys.exit(1 if series or blind else 0)
PY
if ((rc)); then
    say "sanitize: FAILED (reports above; logs in $out and $leaks)"
else
    say "sanitize: clean"
fi
exit $rc
