#!/usr/bin/env bash
# The vhost bed (issue 26): these hosts have neither /dev/kvm nor
# /dev/vhost-net, so netpass's vhost cases run inside a TCG VM booted
# with Debian's 6.12 kernel (bookworm's security updates carry it; its
# 6.1 has no vDPA), whose initramfs loads vhost_net, vhost_vdpa, VDUSE,
# tun and 9p (lab/vhost/init) and chroots into the host's root, shared
# read-only. There, as root, the patched QEMU of $BUILD_DIR starts a tap
# with vhost=on,vhostforce=on (a smoke check that vhost-net
# initialises), two VDUSE NICs (lab/vhost/vduse-net.c) become
# /dev/vhost-vdpa-0 and -1, then migration-test runs the cases of
# VHOST_CASES by name with --full. Prints the bed's times; fails if a
# step fails. The VM's console is in work/vhost/console.log; each run's
# record (machine, settings, times) is appended to work/vhost/runs.jsonl,
# and with VHOST_PUBLISH=1 to docs/results/vhost-bed.jsonl, the
# published campaigns.
# VHOST_REPEAT=N runs each case N times (a campaign; the record counts
# the runs that passed).
# VHOST_LAB="ARGS" (make vhost-lab) runs the lab there instead, on KVM
# guests: the bed's CPU (TCG's max) has SVM, so kvm_amd gives it
# /dev/kvm, and the lab's guest boots in about 12 s. lab/lab.py ARGS
# runs twice, LAB_KVM=1 with the taps' vhost-net off then on
# (LAB_VHOST), its runs then copied to work/vhost/share/lab0 and lab1
# (shared writable);
# their records go to work/vhost/lab-runs.jsonl, and with VHOST_PUBLISH=1
# to docs/results/vhost-lab.jsonl (VHOST_LAB_RESULTS=FILE: that file of
# docs/results/ instead). VHOST_QUEUES=N gives the guest's NIC N queue
# pairs (multiqueue taps; LAB_QUEUES). In lab mode the bed's /etc, /var
# and /root are writable (overlays), for the libvirt daemons of lab.py
# libvirt (make vhost-libvirt).
. "$(dirname "$0")/lib.sh"

out=$(realpath -m "$WORK/vhost")
kroot=$out/kernel
kdir=$kroot/x
build=$(realpath -m "$BUILD_DIR")
p=/x86_64/migration/netpass
cases=${VHOST_CASES:-$p/vhost/precopy $p/vhost/postcopy $p/vhost/multiqueue
    $p/vhost/multiqueue-postcopy $p/guest-driver/precopy
    $p/guest-driver/postcopy $p/guest-driver/multiqueue
    $p/guest-driver/multiqueue-postcopy $p/vhost/multiqueue-shrink
    $p/vhost/start-fails
    $p/uncovered-vdpa}
lab=${VHOST_LAB:-}
[[ -z $lab ]] || cases=${VHOST_CASES:-}
# Quoted for run.sh, which runs lab.py with them
lab_args=
[[ -z $lab ]] || lab_args=$(eval "printf '%q ' $lab")
lab_queues=${VHOST_QUEUES:-1}
[[ $lab_queues =~ ^[1-8]$ ]] || die "VHOST_QUEUES=$lab_queues: 1 to 8"
lab_results=$TOP/docs/results/${VHOST_LAB_RESULTS:-vhost-lab.jsonl}
cases=$(echo $cases)
# Runs of each case (VHOST_REPEAT=20 for a campaign)
repeat=${VHOST_REPEAT:-1}
limit=${VHOST_TIMEOUT:-3600}
qemu=$build/qemu-system-x86_64
[[ -x $qemu && -x $build/tests/qtest/migration-test ]] ||
    die "no build at $BUILD_DIR (run 'make build')"
mkdir -p "$out"
if [[ ! -f $kroot/version ]]; then
    deb_unpack '^linux-image-6\.12\.[0-9.]+\+deb12-amd64$' "$kroot"
    echo "$DEB_UNPACKED" > "$kroot/version"
fi
kver=$(ls "$kdir/lib/modules")
# In load order; the 6.12 kernel has virtio and virtio-pci built in
mods="netfs 9pnet 9pnet_virtio 9p tun tap vhost_iotlb vhost vhost_net vdpa
      vduse irqbypass vhost_vdpa"
# Loaded for the lab only (vhost.lab=1): the cases' reference stays TCG
labmods="llc stp bridge veth ccp kvm kvm-amd overlay"
vduse=$out/vduse-net
if [[ ! -x $vduse || $TOP/lab/vhost/vduse-net.c -nt $vduse ]]; then
    cc -O2 -Wall -o "$vduse" "$TOP/lab/vhost/vduse-net.c" ||
        die "cannot build lab/vhost/vduse-net.c"
fi

if [[ ! -f $out/initrd || $TOP/lab/vhost/init -nt $out/initrd || $0 -nt $out/initrd ||
      $kroot/version -nt $out/initrd ]]; then
    say "vhost: building the initramfs ($kver)"
    root=$out/initrd-root
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    for m in $mods $labmods; do
        f=$(find "$kdir/lib/modules/$kver" -name "$m.ko.xz" | head -n 1)
        [[ -n $f ]] || die "the kernel has no $m.ko.xz"
        xz -dc "$f" > "$root/lib/modules/$m.ko"
    done
    echo $mods > "$root/lib/modules/load-order"
    echo $labmods > "$root/lib/modules/load-order-lab"
    install -m 755 "$TOP/lab/vhost/init" "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) > "$out/initrd.tmp"
    mv "$out/initrd.tmp" "$out/initrd"
fi

# What runs inside, as root, in the host's tree
cat > "$out/run.sh" <<RUN
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/tmp
t0=\$(date +%s)
if ! printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"quit"}' |
    timeout 300 "$qemu" -M pc -accel qtest -display none -nodefaults \\
        -netdev tap,id=n0,ifname=vbed0,script=no,downscript=no,vhost=on,vhostforce=on \\
        -device virtio-net-pci,netdev=n0 -qmp stdio >/tmp/smoke.log 2>&1; then
    cat /tmp/smoke.log
    echo "vhost-bed: smoke: vhost=on does not start"
    exit 1
fi
echo "vhost-bed: smoke: a tap with vhost=on,vhostforce=on starts (\$((\$(date +%s) - t0)) s)"
# Two VDUSE NICs, bound to vhost_vdpa: /dev/vhost-vdpa-0 and -1. Each
# daemon says "ready" once it serves its device, and lives while its
# standard input is open.
for i in 0 1; do
    mkfifo /tmp/vduse\$i.in /tmp/vduse\$i.out
    "$vduse" vduse\$i 52:54:00:12:34:a\$i </tmp/vduse\$i.in >/tmp/vduse\$i.out &
    exec {fd}>/tmp/vduse\$i.in
    exec {ready}</tmp/vduse\$i.out
    if read -r -t 60 line <&\$ready && [ "\$line" = ready ] &&
        vdpa dev add name vduse\$i mgmtdev vduse; then
        echo "vhost-bed: vdpa: vduse\$i is /dev/vhost-vdpa-\$i"
    else
        echo "vhost-bed: vdpa: vduse\$i did not start"
    fi
done
ls -l /dev/vhost-vdpa-0 /dev/vhost-vdpa-1 >/dev/null || echo "vhost-bed: vdpa: devices missing"
# netpass/uncovered-vdpa may use /dev/vhost-vdpa-0 and -1: these
export QTEST_NETPASS_VDPA=1
rc=0
for c in $cases; do
for n in \$(seq $repeat); do
    t=\$(date +%s)
    QTEST_QEMU_BINARY="$qemu" QTEST_QEMU_IMG="$build/qemu-img" \\
        timeout 900 "$build/tests/qtest/migration-test" --full -p "\$c" \\
        >/tmp/case.log 2>&1
    r=\$?
    grep -E '^(ok|not ok)|# SKIP' /tmp/case.log
    # A case that skipped, or that no test matched, proves nothing here
    if grep -q '# SKIP' /tmp/case.log || ! grep -q '^ok ' /tmp/case.log; then
        echo "vhost-bed: case \$c did not run"
        [ \$r -ne 0 ] || r=1
    fi
    grep -E 'warning: netpass|unable to start vhost' /tmp/case.log | sort | uniq -c
    # start-fails proves something only if vhost tried to start, and failed
    case \$c in
    */vhost/start-fails)
        grep -q 'unable to start vhost net' /tmp/case.log ||
            { echo "vhost-bed: case \$c: vhost never tried to start"; r=1; } ;;
    esac
    # What the case measured, for the record (not checked)
    sed -n "s|^# netpass-measure: |vhost-bed: measure \$c |p" /tmp/case.log
    echo "vhost-bed: case \$c: rc=\$r (\$((\$(date +%s) - t)) s)"
    [ \$r -eq 0 ] || { tail -n 30 /tmp/case.log; rc=1; }
done
done
# The lab on KVM guests, vhost-net off then on
if [ -n "$lab_args" ]; then
    if [ -c /dev/kvm ]; then
        for v in 0 1; do
            mkdir -p /tmp/lab\$v
            BUILD_DIR="$build" LAB_KVM=1 LAB_VHOST=\$v LAB_QUEUES=$lab_queues \\
                python3 "$TOP/lab/lab.py" $lab_args --out /tmp/lab\$v \\
                --publish /tmp/lab\$v/published.jsonl >/tmp/lab\$v/lab.log 2>&1
            r=\$?
            tail -n 12 /tmp/lab\$v/lab.log
            # Sockets stay here (QMP's, in the runs' directories)
            tar -C /tmp -cf - --exclude='*.qmp' lab\$v | tar -C "$out/share" -xf -
            [ "\${PIPESTATUS[*]}" = "0 0" ] || echo "vhost-bed: lab vhost=\$v: not copied"
            echo "vhost-bed: lab vhost=\$v: rc=\$r"
            [ \$r -eq 0 ] || rc=1
        done
    else
        echo "vhost-bed: lab: no /dev/kvm"
        rc=1
    fi
fi
# Unbound, each daemon destroys its device once its input closes
for i in 0 1; do
    vdpa dev del vduse\$i 2>/dev/null
done
exit \$rc
RUN

# What the bed leaves for the host (the lab's runs)
if [[ -n $lab ]]; then
    rm -rf "$out/share"
fi
mkdir -p "$out/share"
say "vhost: booting the bed (TCG; cases: $cases)"
start=$(date +%s)
rc=0
timeout "$limit" "$qemu" -M q35 -accel tcg,thread=multi -cpu max -smp 2 -m 4G \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$out/initrd" \
    -append "console=ttyS0 panic=-1 vhost.run=$out/run.sh vhost.out=$out/share${lab:+ vhost.lab=1}" \
    -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on \
    -virtfs local,path="$out/share",mount_tag=out,security_model=none \
    -display none -no-reboot -nodefaults -serial stdio </dev/null \
    >"$out/console.log" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
grep '^vhost-bed:' "$out/console.log" >&2 || true
status=$(sed -n 's/^vhost-bed: rc=\([0-9]*\).*/\1/p' "$out/console.log" | tail -n 1)
# One record per run in work/vhost/runs.jsonl; VHOST_PUBLISH=1 appends it
# to docs/results/vhost-bed.jsonl, the published ones
python3 - "$out/console.log" "$secs" "$rc" "$cases" "$(git -C "$QEMU_DIR" rev-parse --short series)" \
    "$(cat "$kroot/version")" "$limit" "$repeat" >>"$out/runs.jsonl" <<'PY'
import json, re, sys, time, os
log, secs, rc, cases, commit, kernel, limit, repeat = sys.argv[1:]
text = open(log, errors='replace').read()
cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
            if l.startswith('model name')), '?')
rec = {'campaign': 'vhost-bed', 'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
       'host': {'cpu': cpu, 'cores': os.cpu_count()},
       'vm': {'accel': 'tcg', 'smp': 2, 'mem': '4G', 'kernel': kernel},
       'series': commit, 'total_s': int(secs), 'vm_rc': int(rc),
       'requested': cases.split(), 'timeout_s': int(limit),
       'repeat': int(repeat),
       'smoke_s': None, 'cases': []}
m = re.search(r'^vhost-bed: smoke: .*\((\d+) s\)', text, re.M)
if m:
    rec['smoke_s'] = int(m.group(1))
runs = {}
for c, r, t in re.findall(r'^vhost-bed: case (\S+): rc=(\d+) \((\d+) s\)', text, re.M):
    runs.setdefault(c, []).append((int(r), int(t)))
measures = {}
for c, k, v in re.findall(r'^vhost-bed: measure (\S+) ([a-z-]+)=(\d+)', text, re.M):
    measures.setdefault(c, {}).setdefault(k, []).append(int(v))
for c, rs in runs.items():
    secs_ = sorted(t for _, t in rs)
    rec['cases'].append({'case': c, 'runs': len(rs),
                         'passed': sum(1 for r, _ in rs if r == 0),
                         'secs_min': secs_[0], 'secs_median': secs_[len(secs_) // 2],
                         'secs_max': secs_[-1]})
    for k, vs in measures.get(c, {}).items():
        vs = sorted(vs)
        rec['cases'][-1][k] = {'n': len(vs), 'min': vs[0],
                               'median': vs[len(vs) // 2], 'max': vs[-1]}
m = re.findall(r'^vhost-bed: rc=(\d+)', text, re.M)
rec['rc'] = int(m[-1]) if m else None
print(json.dumps(rec, sort_keys=True))
PY
# The lab's records, each with its own verdict ("ok"), failed runs
# included; published as lab.py's --publish wrote them (without their
# run directories, local paths)
if [[ -n $lab ]]; then
    cat "$out"/share/lab[01]/runs.jsonl > "$out/lab-runs.jsonl" 2>/dev/null || true
    # A whole campaign only: the VM ended on its own, both halves copied
    if [[ ${VHOST_PUBLISH:-} == 1 ]] && ((rc == 0)) &&
        [[ -s $out/share/lab0/published.jsonl && -s $out/share/lab1/published.jsonl ]] &&
        ! grep -q 'not copied' "$out/console.log"; then
        cat "$out"/share/lab[01]/published.jsonl >> "$lab_results"
    fi
fi
((rc == 0)) || die "the bed's VM ended with $rc after $secs s (console: $out/console.log)"
[[ $status == 0 ]] || die "the bed failed (rc=${status:-none}) after $secs s (console: $out/console.log)"
# (the cases' campaigns only: the lab's records are published above)
if [[ ${VHOST_PUBLISH:-} == 1 && -z $lab ]]; then
    tail -n 1 "$out/runs.jsonl" >> "$TOP/docs/results/vhost-bed.jsonl"
fi
say "vhost: passed in $secs s"
