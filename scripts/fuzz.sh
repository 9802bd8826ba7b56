#!/usr/bin/env bash
# Fuzz the parser the series adds for hostile input: the netpass wire
# format (net/netpass-wire.c), with libFuzzer, ASan and UBSan from
# Debian's clang, for FUZZ_SECONDS (default 300), starting from the
# committed seed corpus (fuzz/corpus/; what the run finds stays in
# work/fuzz/). Prints the executions; fails on a crash, which it keeps
# in work/fuzz/ with the log.
. "$(dirname "$0")/lib.sh"

secs=${FUZZ_SECONDS:-300}
out=$WORK/fuzz
bin=$out/netpass-wire
[[ -f $BUILD_DIR/config-host.h ]] || die "no configured build at $BUILD_DIR (run 'make build')"
mkdir -p "$out/corpus"

say "fuzz: building the netpass-wire target"
clang -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$BUILD_DIR" -I"$QEMU_DIR/include" \
    $(pkg-config --cflags glib-2.0) \
    "$TOP/fuzz/netpass-wire.c" "$QEMU_DIR/net/netpass-wire.c" \
    $(pkg-config --libs glib-2.0) -o "$bin"

say "fuzz: netpass-wire for $secs s"
rc=0
"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/" \
    "$out/corpus" "$TOP/fuzz/corpus/netpass-wire" >"$out/netpass-wire.log" 2>&1 || rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/netpass-wire.log")
corpus=$(ls "$out/corpus" "$TOP/fuzz/corpus/netpass-wire" | grep -vc ':$\|^$')
if ((rc)); then
    grep -m1 -A12 'ERROR\|==ABORT\|deadly signal' "$out/netpass-wire.log" >&2 || tail -n 20 "$out/netpass-wire.log" >&2
    die "fuzz: netpass-wire crashed after ${runs:-?} executions (log and input in ${out#"$TOP"/}/)"
fi
echo "fuzz: netpass-wire: $secs s, ${runs:-?} executions, corpus $corpus inputs, 0 crashes"
