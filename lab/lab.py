#!/usr/bin/python3
"""The switchover lab: real guests, real TAP devices, a real bridge.

usage: lab.py {capacity,demo,bench,downtime,flood,smoke} [options]
       lab.py report [--check]

  capacity  the guest's echo loss at fixed rates, no migration
  demo      precopy and postcopy, UDP at 2k/s, netpass off and on, once,
            guest profile 'default'
  bench     the published set: profiles default and tuned, UDP (2k/s)
            and TCP (1k requests/s), precopy and postcopy, netpass off
            and on, --reps each (default 20)
  downtime  reported vs true downtime, vm-started off and on, --reps
  flood     netpass with a 64 KiB bound at 20k/s: bounded, drops counted
  smoke     precopy at 1k/s, tuned, netpass off and on; correctness only
            (CI): exactly one side runs the guest afterwards, and with
            netpass no datagram is lost, duplicated or reordered
  faults    scenario 4: postcopy with a fault at its start (--faults:
            kill-loading, reject, cut-before-ack, freeze), the lab acting
            as management; per run: who runs the guest afterwards
            (exactly one), the guest's own memory check, the time until
            it answers again; --reps each
  libvirt   the same guest and traffic, migrated by `virsh migrate
            [--postcopy] [--netpass]` between two libvirt daemons (the
            libvirt series, see lab/lvlab.py): precopy and postcopy,
            netpass off (--reps-off) and on (--reps), profile tuned
  libvirt-postcopy-device
            virsh migrate --postcopy whose link is cut, or which is
            aborted (virsh domjobabort [--postcopy]), while the source is
            in postcopy-device: who runs the guest afterwards (see
            lab/lvlab.py, --cases)
  report    the README's lab section, the cover letter's figures and the
            plots, from the records in docs/results/ (see lab/report.py);
            --check fails if they differ from what is committed

Topology, inside two network namespaces this script creates and always
removes (nothing is sent outside them):

    traffic host (veth) ---- bridge ----+---- tap-src ---- source QEMU
                                        +---- tap-dst ---- destination QEMU

The traffic host runs udpblast (UDP echo) or tcprr (TCP request/response)
against the guest's udpecho and tcpecho; the two QEMUs migrate over a
unix socket. One JSON record per migration goes to runs.jsonl in the
results directory (and, with --publish FILE, to FILE too), then a summary
table. Every record carries what is needed to reproduce it: host, commit,
series, QEMU, capabilities and parameters of both sides, guest, profile,
traffic.

Guest profiles: 'default' is a guest and host as shipped (the kernel's
socket buffers, the TAP devices' own queue length); 'tuned' gives the
guest's echo socket 32 MiB and the TAPs a 10000-frame queue.

Exit: 0 success, 1 a run failed (for smoke: a correctness check failed),
2 usage.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import Qemu  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", os.path.join(TOP, "work"))
BUILD = os.environ.get("BUILD_DIR", os.path.join(WORK, "build"))
GUEST = os.path.join(WORK, "lab", "guest")
BIN = os.path.join(WORK, "lab", "bin")
QEMU = os.path.join(BUILD, "qemu-system-x86_64")
MACHINE = "pc-q35-10.2"
READY = "lab: guest ready"      # printed by lab/guest/init

GUEST_IP = "192.0.2.2"          # TEST-NET-1: documentation range, and
HOST_IP = "192.0.2.1"           # it only ever exists inside our namespaces
SEGMENT_BROADCAST = "192.0.2.255"  # the bridge floods it to both QEMUs
GUEST_MAC = "52:54:00:6e:70:01"
ECHO_PORT = "7777"              # udpecho and tcpecho in the guest
DRAIN_MS = 3000                 # grace for late echoes after the traffic

# What each guest profile changes: the TAP queue (None: as created) and
# the guest's own settings (lab/guest/init, lab.profile=).
PROFILES = {"default": {"tap_qlen": None}, "tuned": {"tap_qlen": 10000}}


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


class Topology:
    """Two namespaces: 'br' (bridge, taps, QEMUs) and 'th' (traffic host)."""

    def __init__(self, profile):
        tag = f"npl{os.getpid()}"
        self.br, self.th = f"{tag}-br", f"{tag}-th"
        self.profile = profile

    def __enter__(self):
        try:
            self._setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()

    def _setup(self):
        br, th = self.br, self.th
        sh("ip", "netns", "add", br)
        sh("ip", "netns", "add", th)
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        qlen = PROFILES[self.profile]["tap_qlen"]
        for tap in ("tap-src", "tap-dst"):
            sh("ip", "-n", br, "tuntap", "add", tap, "mode", "tap",
               "vnet_hdr", *(["multi_queue"] if queues() > 1 else []))
            if qlen:
                sh("ip", "-n", br, "link", "set", tap, "txqueuelen",
                   str(qlen))
            sh("ip", "-n", br, "link", "set", tap, "master", "br0", "up")
        sh("ip", "-n", br, "link", "add", "vbr", "type", "veth",
           "peer", "name", "vth", "netns", th)
        sh("ip", "-n", br, "link", "set", "vbr", "master", "br0", "up")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        # The migration's TCP runs over it (lo of the namespace)
        sh("ip", "-n", br, "link", "set", "lo", "up")
        sh("ip", "-n", th, "addr", "add", f"{HOST_IP}/24", "dev", "vth")
        sh("ip", "-n", th, "link", "set", "vth", "up")
        sh("ip", "-n", th, "link", "set", "lo", "up")

    def teardown(self):
        for ns in (self.br, self.th):
            sh("ip", "netns", "del", ns, check=False,
               stderr=subprocess.DEVNULL)

    def run_in(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)

    def link(self, dev):
        """A TAP's queue length and transmit drops (frames towards the
        QEMU that the TAP had no room for)."""
        out = subprocess.run(["ip", "-n", self.br, "-s", "-j", "link",
                              "show", "dev", dev], check=True,
                             capture_output=True, text=True).stdout
        info = json.loads(out)[0]
        return info.get("txqlen"), info["stats64"]["tx"]["dropped"]

    def host_udp_rcvbuf_errors(self):
        """The traffic host's UDP receive buffer drops (echoes lost)."""
        out = subprocess.run(["ip", "netns", "exec", self.th, "cat",
                              "/proc/net/snmp"], check=True,
                             capture_output=True, text=True).stdout
        return snmp(out, "Udp", "RcvbufErrors")


def snmp(text, proto, field):
    lines = [ln.split() for ln in text.splitlines()
             if ln.startswith(proto + ":")]
    return int(dict(zip(lines[0][1:], lines[1][1:]))[field])


def accelerator():
    """KVM only when asked and usable; TCG otherwise (see README)."""
    if os.environ.get("LAB_KVM") == "1" and os.access("/dev/kvm", os.W_OK):
        return "kvm"
    return "tcg"


def vhost():
    """The taps' vhost-net, when asked (make vhost-lab: in the vhost bed)"""
    return os.environ.get("LAB_VHOST") == "1"


def queues():
    """The queue pairs of the guest's NIC (LAB_QUEUES, default 1): more
    than one makes the taps multiqueue"""
    n = os.environ.get("LAB_QUEUES", "1")
    if not n.isdigit() or not 1 <= int(n) <= 8:
        sys.exit(f"lab.py: LAB_QUEUES={n}: 1 to 8 queue pairs")
    return int(n)


def git(*args):
    return subprocess.run(["git", "-C", TOP] + list(args),
                          capture_output=True, text=True).stdout.strip()


def qemu_stack():
    """QEMU's series, in the order they apply (scripts/lib.sh's QEMU_STACK)"""
    with open(os.path.join(TOP, "scripts", "lib.sh")) as f:
        m = re.search(r"^QEMU_STACK=\((.*)\)$", f.read(), re.M)
    return tuple(m.group(1).split())


def series_sha256(*names):
    """A short hash of the patches of series @names (patches/NAME), in
    order"""
    h = hashlib.sha256()
    for name in names:
        series = os.path.join(TOP, "patches", name)
        with open(os.path.join(series, "series")) as f:
            for patch in f.read().split():
                with open(os.path.join(series, patch), "rb") as p:
                    h.update(p.read())
    return h.hexdigest()[:16]


def environment(args):
    """What a run depends on besides its own settings: the same for every
    run of an invocation."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    try:
        with open(os.path.join(GUEST, "kernel-version")) as f:
            guest_kernel = f.read().strip()
    except FileNotFoundError:
        guest_kernel = "?"
    version = subprocess.run([QEMU, "--version"], capture_output=True,
                             text=True).stdout.splitlines()
    return dict({
        "host": {"cpu": cpu, "cores": os.cpu_count(),
                 "mem_mib": mem_kib >> 10, "kernel": platform.release()},
        "workspace": git("rev-parse", "--short=12", "HEAD") +
                     ("+changes" if git("status", "--porcelain", "--",
                                        "lab", "patches") else ""),
        "series_sha256": series_sha256(*qemu_stack()),
        "qemu": version[0] if version else "?",
        "accel": accelerator(), "machine": MACHINE, "vhost": vhost(),
        "queues": queues(),
        "guest": {"kernel": guest_kernel, "mem_mib": args.mem, "vcpus": 1,
                  "dirty": f"{args.dirty_pages} pages/s over "
                           f"{args.dirty_mib} MiB" if args.dirty_mib
                           else "none"},
    }, **({"note": args.note} if args.note else {}))


def start_vm(topo, rundir, name, tap, extra, args, oob=False):
    log = os.path.join(rundir, f"{name}.log")
    common = [
        "-machine", MACHINE, "-accel", accelerator(),
        "-m", str(args.mem), "-smp", "1",
        "-kernel", os.path.join(GUEST, "vmlinuz"),
        "-initrd", os.path.join(GUEST, "initrd"),
        "-append", f"console=ttyS0 quiet panic=-1 lab.ip={GUEST_IP}/24 "
                   + (f"lab.dirty={args.dirty_mib},{args.dirty_pages} "
                      if args.dirty_mib else "")
                   + f"lab.profile={topo.profile}",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no"
                   + (",vhost=on,vhostforce=on" if vhost() else "")
                   + (f",queues={queues()}" if queues() > 1 else ""),
        "-device", f"virtio-net-pci,netdev=n0,mac={GUEST_MAC},romfile="
                   + (f",mq=on,vectors={2 * queues() + 2}" if queues() > 1
                      else ""),
        "-serial", f"file:{os.path.join(rundir, name + '.console')}",
        "-msg", "timestamp=on", "-D", os.path.join(rundir, f"{name}.trace"),
    ] + traces() + extra
    if args.dump:
        # What reaches the NIC (after netpass's filter, at the head)
        common += ["-object", f"filter-dump,id=dump0,netdev=n0,queue=tx,"
                   f"file={os.path.join(rundir, name + '.pcap')}"]
    for t in args.trace or []:
        common += ["-trace", t]
    return Qemu(QEMU, name, rundir, common, log=log,
                prefix=["ip", "netns", "exec", topo.br], oob=oob)


def wait_console(rundir, name, text, timeout):
    path = os.path.join(rundir, f"{name}.console")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                if text in f.read():
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.2)
    return False


def traffic_cmd(kind, rate, count, out, drain_ms=DRAIN_MS, dst=GUEST_IP,
                size=None):
    tool = "udpblast" if kind == "udp" else "tcprr"
    return [os.path.join(BIN, tool), "-d", dst, "-p", ECHO_PORT,
            "-r", str(rate), "-n", str(count), "-w", str(drain_ms),
            "-o", out] + (["-s", str(size)] if size else [])


def guest_answers(topo, rundir, timeout=30):
    """Probe until the guest echoes (ARP and the bridge need a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = topo.run_in(topo.th, traffic_cmd(
            "udp", 200, 40, os.path.join(rundir, "probe.rec"), 300),
            stdout=subprocess.PIPE, text=True)
        summary = json.loads(p.communicate()[0])
        if summary["echoed"] > 0:
            return True
    return False


# Ask udpecho for the guest's counters (see lab/tools/udpecho.c), from
# the traffic host; a few tries, as any datagram may be lost.
ASK_GUEST = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(5):
    s.sendto(b"STAT", (sys.argv[1], int(sys.argv[2])))
    try:
        print(s.recv(2048).decode())
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
"""


def guest_counters(topo):
    p = subprocess.run(["ip", "netns", "exec", topo.th, sys.executable,
                        "-c", ASK_GUEST, GUEST_IP, ECHO_PORT],
                       capture_output=True, text=True, timeout=30)
    if p.returncode:
        raise RuntimeError("the guest did not report its counters")
    return {k: int(v) for k, v in
            (kv.split("=") for kv in p.stdout.split()[1:])}


def trace_events(rundir, name, event):
    """@event's lines in RUNDIR/NAME.trace: {its arguments: epoch ns of
    the first line with them}"""
    found = {}
    pat = re.compile(rf"^(\S+) {event} (.*)$")
    try:
        with open(os.path.join(rundir, f"{name}.trace")) as f:
            for line in f:
                m = pat.match(line)
                if m:
                    ts = datetime.datetime.fromisoformat(
                        m.group(1).replace("Z", "+00:00"))
                    found.setdefault(m.group(2).strip(),
                                     int(ts.timestamp() * 1e6) * 1000)
    except FileNotFoundError:
        pass
    return found


def checkpoints(rundir, name):
    """vmstate_downtime_checkpoint trace events: {checkpoint: epoch ns}
    (on the destination, with vhost-net, also "dst-vhost-started": its
    first vhost_dev_start, which cannot come before the VM runs; until
    then QEMU's own path, netpass's hold included, carries the guest's
    frames. The event comes at the start's entry: a start that fails and
    falls back on QEMU's path is counted too)."""
    found = trace_events(rundir, name, "vmstate_downtime_checkpoint")
    if name == "dst":
        starts = trace_events(rundir, name, "vhost_dev_start").values()
        if starts:
            found["dst-vhost-started"] = min(starts)
    return found


# What QEMU traces for the lab: the checkpoints, and vhost's start
def traces():
    return ["-trace", "vmstate_downtime_checkpoint"] + (
        ["-trace", "vhost_dev_start"] if vhost() else [])


def wait_status(qmp, states, timeout):
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = qmp.cmd("query-migrate")
        if info.get("status") in states:
            break
        time.sleep(0.05)
    return info


def settings(vm, keys):
    """The capabilities on, and the parameters the lab set, as QEMU has
    them."""
    caps = sorted(c["capability"] for c in
                  vm.qmp.cmd("query-migrate-capabilities") if c["state"])
    params = vm.qmp.cmd("query-migrate-parameters")
    return caps, {k: params[k] for k in sorted(keys) if k in params}


def read_records(path):
    """udpblast's or tcprr's records: [(seq, send_ns, answer_ns)]"""
    with open(path) as f:
        return [tuple(int(x) for x in line.split()[:3]) for line in f]


def netpass_cost(n):
    """What netpass counts for a frame of @n bytes it keeps: its header
    (sizeof(NetpassFrame) on x86_64) and the allocator's size word, the
    block rounded to 16 bytes"""
    return (16 + n + 8 + 15) // 16 * 16

# netpass's counters of frames it lost, and of the copies it removed on
# purpose (frames that the other host's guest got too)
NETPASS_LOSSES = ("dropped-bound", "dropped-late", "dropped-gone",
                  "dropped-invalid", "dropped-unused")
NETPASS_COPIES = ("dropped-early", "dropped-duplicate")


def netpass_sum(rec, keys):
    return sum((rec.get(side) or {}).get(k, 0) for side in
               ("netpass_src", "netpass_dst") for k in keys)


def unicast_loss(rec, d, tap_dst):
    """Where the datagrams of a run to the guest's address were lost."""
    # Every datagram that reached the guest was received by udpecho (some
    # of them twice: dupes) or dropped by its socket, the buffer full.
    # (The NIC's own drops are not counted in: they are frames of any
    # protocol, such as the RARP announce of the destination itself.)
    reached_guest = d["rx"] - d["dupes"] + d["udp_rcvbuf_errors"]
    host = rec["sent"] - reached_guest
    dst_tap = min(max(tap_dst, 0), max(host, 0))
    return {
        # On the host, before the guest's NIC: the source's side (its TAP
        # queue, netpass's bound), and the destination's TAP queue.
        "host_source": host - dst_tap,
        "host_dst_tap": dst_tap,
        # In the guest: its UDP socket's buffer, its echo.
        "guest_socket": d["udp_rcvbuf_errors"],
        "guest_echo": d["txfail"],
        # Echoed by the guest, never back at the traffic host.
        "way_back": d["rx"] - d["dupes"] - d["txfail"] - rec["echoed"],
    }


def traffic_counters(topo):
    """What a run compares before and after: the guest's counters, the
    drops of both TAPs, the traffic host's socket errors"""
    return {"guest": guest_counters(topo),
            "taps": [topo.link(t)[1] for t in ("tap-src", "tap-dst")],
            "host": topo.host_udp_rcvbuf_errors()}


def traffic_start(topo, args, rundir, setup, kind, rate, dst=GUEST_IP):
    """The counters before, and the traffic host's sender started (its
    records in RUNDIR/traffic.rec); the setup it ran in, into @setup"""
    before = traffic_counters(topo)
    setup["tap_qlen"] = topo.link("tap-src")[0]
    setup["guest_rcvbuf"] = before["guest"]["rcvbuf"]
    proc = topo.run_in(topo.th, traffic_cmd(
        kind, rate, int(rate * args.seconds),
        os.path.join(rundir, "traffic.rec"), dst=dst),
        stdout=subprocess.PIPE, text=True)
    return before, proc


def traffic_end(topo, args, proc):
    """The sender's summary once it is done, and the counters after"""
    summary = json.loads(proc.communicate(timeout=args.seconds + 60)[0])
    return summary, traffic_counters(topo)


def traffic_results(rec, rundir, summary, before, after, stop, start, rep):
    """What the traffic of rec["traffic"] saw, into @rec, the switchover
    being from the source's @stop to the destination's @start (epoch
    ns); returns how many requests the guest answered"""
    if rec["traffic"] == "udp":
        rec.update({k: summary[k] for k in (
            "sent", "send_failed", "echoed", "lost", "reordered",
            "duplicated")})
        rec["blackout_ms"] = summary["longest_gap_ms"]
        udp_results(rec, rundir, stop, start, before, after, rep == 0)
        answered = rec["echoed"]
    else:
        rec["tcp"] = dict(summary, guest_retransmissions=(
            after["guest"]["tcp_retrans"] - before["guest"]["tcp_retrans"]))
        del rec["tcp"]["start_ns"]
        answered = summary["answered"]
    recs = read_records(os.path.join(rundir, "traffic.rec"))
    rec["answers_after"] = any(a > start for _, _, a in recs)
    return answered


def udp_results(rec, rundir, stop, start, before, after, keep_timeline):
    """Losses of a UDP run: when (the switchover window, or outside it)
    and where (host, destination TAP, guest, way back); @before and
    @after: traffic_counters()."""
    recs = read_records(os.path.join(rundir, "traffic.rec"))
    echoes = sorted(e for _, _, e in recs if e)
    # The window: from the source's stop to the first echo after the
    # destination started.
    end = next((e for e in echoes if e > start), None)
    if end is None:
        # A migration longer than the traffic (a slow machine: the vhost
        # bed's nested guests): nothing was sent once the guest ran again
        last = max((s for _, s, _ in recs), default=None)
        if last is not None and start > last:
            raise RuntimeError(
                f"the destination started {(start - last) / 1e9:.1f} s "
                "after the last datagram: the migration outlasted the "
                "traffic (give --seconds more)")
        raise RuntimeError("no echo after the destination started")
    lost = [s for _, s, e in recs if not e]
    rec["window_ms"] = round((end - stop) / 1e6, 1)
    rec["lost_window"] = sum(stop <= s <= end for s in lost)
    rec["lost_before"] = sum(s < stop for s in lost)
    rec["lost_after"] = sum(s > end for s in lost)

    d = {k: after["guest"][k] - before["guest"][k] for k in before["guest"]}
    rec["guest_dupes"] = d["dupes"]
    tap_src = after["taps"][0] - before["taps"][0]
    tap_dst = after["taps"][1] - before["taps"][1]
    if rec.get("to") == "broadcast":
        # Both hosts get every datagram: the guest may receive more than
        # was sent, the host's TAPs drop copies (a QEMU that does not
        # read its TAP: the destination before its migration, the source
        # after it), and the difference of unicast_loss() says nothing.
        # What the guest's counters still prove: datagrams lost that its
        # socket, its echo and the way back do not explain were lost on
        # the host (at least that many; exactly that many if no copy
        # reached the socket), and datagrams that reached its socket
        # beyond those sent were copies (at least that many, seen by
        # udpecho or dropped by the full socket).
        explained = (d["udp_rcvbuf_errors"] + d["txfail"] +
                     d["rx"] - d["dupes"] - d["txfail"] - rec["echoed"])
        rec["loss"] = {
            "host_at_least": max(rec["sent"] - rec["echoed"] - explained,
                                 0),
            "guest_socket": d["udp_rcvbuf_errors"],
            "guest_echo": d["txfail"],
            "way_back": d["rx"] - d["dupes"] - d["txfail"] - rec["echoed"],
        }
        rec["copies_at_guest_at_least"] = max(
            d["rx"] + d["udp_rcvbuf_errors"] - rec["sent"], 0)
        rec["netpass_copies"] = netpass_sum(rec, NETPASS_COPIES)
        # (the source's dropped-late are copies here: the destination's
        # TAP had them too)
        rec["netpass_dropped"] = netpass_sum(rec, NETPASS_LOSSES)
    else:
        rec["loss"] = unicast_loss(rec, d, tap_dst)
    rec["counters"] = {
        "guest": d, "tap_src_dropped": tap_src,
        "tap_dst_dropped": tap_dst,
        "host_rcvbuf_errors": after["host"] - before["host"],
    }
    if keep_timeline:
        # Echo delay (ms, -1: lost) of each datagram from 300 ms before
        # the stop to 900 ms after it: what the plot shows.
        near = [(s, e) for _, s, e in recs
                if stop - 300e6 <= s <= stop + 900e6]
        rec["timeline"] = {
            "first_send_ms": round((near[0][0] - stop) / 1e6, 3),
            "start_ms": round((start - stop) / 1e6, 3),
            "delay_ms": [round((e - s) / 1e6) if e else -1
                         for s, e in near]}


def main_thread_faults(rundir, vm, traced):
    """Page requests of a postcopy destination's main thread, from the
    postcopy_ram_fault_thread_request trace (None unless @traced): while
    one waits, the main loop reads no backend"""
    if not traced:
        return None
    pat = re.compile(r"postcopy_ram_fault_thread_request .* pid=(\d+)")
    count = 0
    with open(os.path.join(rundir, f"{vm.name}.trace"),
              errors="replace") as f:
        for line in f:
            m = pat.search(line)
            count += bool(m and int(m.group(1)) == vm.proc.pid)
    return count


EARLY_MARK = b"netpass-early-unicast"
EARLY_SOURCE_MAC = bytes.fromhex("020000000001")
SEND_RAW = ("import socket, sys\n"
            "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
            "s.bind((sys.argv[1], 0))\n"
            "for f in sys.argv[2:]:\n"
            "    s.send(bytes.fromhex(f))\n")


def ip_checksum(header):
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def send_early_unicast(topo, count):
    """Unicast datagrams to the guest written straight into the
    destination's TAP while it has not started, as a network told of the
    migration early would send them (the bridge sends the guest's frames
    to the source's TAP)."""
    mac = bytes.fromhex(GUEST_MAC.replace(":", ""))
    frames = []
    for i in range(count):
        payload = EARLY_MARK + struct.pack("!I", i)
        udp = struct.pack("!HHHH", 40000, int(ECHO_PORT), 8 + len(payload),
                          0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64,
                         17, 0, socket.inet_aton(HOST_IP),
                         socket.inet_aton(GUEST_IP))
        ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
        frames.append(mac + EARLY_SOURCE_MAC + b"\x08\x00" + ip + udp)
    sh("ip", "netns", "exec", topo.br, sys.executable, "-c", SEND_RAW,
       "tap-dst", *[f.hex() for f in frames])


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        yield data[off + 16:off + 16 + caplen]
        off += 16 + caplen


def early_unicast_seen(rundir, count):
    """How the early datagrams reached the destination's NIC (its
    filter-dump, --dump): intact, or with the wrong virtio-net header
    length (the dump strips the current one: the frame is shifted); and
    how many the guest answered (its echo goes to a port the traffic host
    does not listen on: the ICMP error that comes back quotes it)."""
    mac = bytes.fromhex(GUEST_MAC.replace(":", ""))
    ours = EARLY_SOURCE_MAC
    seen = [f for f in pcap_frames(os.path.join(rundir, "dst.pcap"))
            if EARLY_MARK in f]
    sent = [f for f in seen if ours in f[:16]]
    intact = sum(f.startswith(mac + ours) for f in sent)
    return {"sent": count, "intact": intact, "mangled": len(sent) - intact,
            "answered": len(seen) - len(sent)}


def one_migration(topo, args, env, point, rundir, rep):
    """Boot, send traffic, migrate, collect. Returns the run's record.
    point: mode, traffic, rate, features (capabilities set on both
    sides, each needing return-path), and optionally to: "broadcast"."""
    os.makedirs(rundir, exist_ok=True)
    mode, traffic, rate, features = (point["mode"], point["traffic"],
                                     point["rate"], point["features"])
    broadcast = args.broadcast or point.get("to") == "broadcast"
    uri = f"unix:{os.path.join(rundir, 'mig.sock')}"
    src = dst = proc = None
    rec = {"campaign": args.what, "rep": rep, "mode": mode,
           "traffic": traffic, "rate": rate,
           "features": "+".join(features) or "-",
           "profile": topo.profile,
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    setup = dict(env, traffic={"kind": traffic, "rate": rate,
                               "seconds": args.seconds,
                               "warmup_s": args.warmup,
                               "drain_ms": DRAIN_MS,
                               "to": "broadcast" if broadcast
                               else "guest"})
    if broadcast:
        rec["to"] = "broadcast"
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        dst = start_vm(topo, rundir, "dst", "tap-dst",
                       ["-incoming", "defer"], args)
        if args.inject_failure == "boot":
            raise RuntimeError("injected failure after starting the QEMUs")
        if not wait_console(rundir, "src", READY, 120):
            raise RuntimeError("guest did not boot (see src.console)")
        rec["answers_before"] = guest_answers(topo, rundir)
        if not rec["answers_before"]:
            raise RuntimeError("guest does not answer before migration")

        caps = [{"capability": "postcopy-ram", "state": mode == "postcopy"}]
        caps += [{"capability": c, "state": True}
                 for c in (["return-path"] + list(features) if features
                           else [])]
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        if args.blocktime and mode == "postcopy":
            dst.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "postcopy-blocktime", "state": True}])
        # Postcopy runs: slow precopy down so that it cannot complete
        # before migrate-start-postcopy; postcopy itself is unlimited.
        params = {"max-bandwidth": (32 << 20) if mode == "postcopy"
                  else (1 << 30), "downtime-limit": 300}
        if "netpass" in features:
            params["netpass-max-bytes"] = args.netpass_max_bytes
        src.qmp.cmd("migrate-set-parameters", **params)
        if "netpass" in features:
            dst.qmp.cmd("migrate-set-parameters", **{
                "netpass-max-bytes": args.netpass_max_bytes})
        caps_src, params_src = settings(src, params)
        caps_dst, params_dst = settings(dst, params)
        setup.update(caps={"src": caps_src, "dst": caps_dst},
                     params={"src": params_src, "dst": params_dst})
        dst.qmp.cmd("migrate-incoming", uri=uri)

        before, proc = traffic_start(
            topo, args, rundir, setup, traffic, rate,
            SEGMENT_BROADCAST if broadcast else GUEST_IP)
        rec["setup"] = setup
        time.sleep(args.warmup)
        if args.inject_failure == "migrate":
            raise RuntimeError("injected failure during the traffic")
        src.qmp.cmd("migrate", uri=uri)
        if mode == "postcopy":
            wait_status(src.qmp, {"active"}, 30)
            if args.early_unicast:
                send_early_unicast(topo, args.early_unicast)
            time.sleep(0.5)
            src.qmp.cmd("migrate-start-postcopy")
        info = wait_status(src.qmp, {"completed", "failed", "cancelled"},
                           args.timeout)
        dinfo = wait_status(dst.qmp, {"completed", "failed"}, 30)
        rec["status_src"] = info.get("status")
        rec["status_dst"] = dinfo.get("status")
        rec["run_src"] = src.qmp.cmd("query-status")["status"]
        rec["run_dst"] = dst.qmp.cmd("query-status")["status"]
        rec["one_running"] = ((rec["run_src"] == "running") !=
                              (rec["run_dst"] == "running"))
        rec["downtime_reported_ms"] = info.get("downtime")
        rec["total_time_ms"] = info.get("total-time")
        rec["netpass_src"] = info.get("netpass")
        rec["netpass_dst"] = dinfo.get("netpass")
        if args.blocktime and mode == "postcopy":
            rec["blocktime"] = dict(
                {k: dinfo.get(k) for k in (
                    "postcopy-blocktime", "postcopy-latency",
                    "postcopy-non-vcpu-latency", "postcopy-latency-dist")},
                main_thread_faults=main_thread_faults(
                    rundir, dst, any("postcopy_ram_fault_thread_request"
                                     in t for t in args.trace or [])))

        summary, after = traffic_end(topo, args, proc)
        proc = None
        if args.early_unicast and args.dump and mode == "postcopy":
            rec["early_unicast"] = early_unicast_seen(rundir,
                                                      args.early_unicast)

        cs, cd = checkpoints(rundir, "src"), checkpoints(rundir, "dst")
        stop = cs.get("src-vm-stopped")
        start = cd.get(f"dst-{mode}-bh-vm-started")
        if not stop or not start:
            raise RuntimeError(f"no stop or start checkpoint ({mode})")
        rec["true_downtime_ms"] = round((start - stop) / 1e6, 3)
        rec["checkpoints_ms"] = {k: round((v - stop) / 1e6, 3) for k, v in
                                 sorted(list(cs.items()) +
                                        list(cd.items()))}
        answered = traffic_results(rec, rundir, summary, before, after,
                                   stop, start, rep)
        rec["ok"] = (rec["status_src"] == "completed"
                     and rec["run_dst"] == "running"
                     and rec["one_running"] and rec["answers_after"]
                     and answered > 0)
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        if proc:
            proc.kill()
            proc.wait()
        for vm in (src, dst):
            if vm:
                vm.stop()
    rec.setdefault("setup", setup)
    return rec


def steady_rate(topo, args, env, rate, rundir):
    """Echo capacity without migration: loss at a fixed rate."""
    os.makedirs(rundir, exist_ok=True)
    src = None
    rec = {"campaign": "capacity", "rate": rate, "profile": topo.profile,
           "setup": env}
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        if not wait_console(rundir, "src", READY, 120) or \
                not guest_answers(topo, rundir):
            return dict(rec, ok=False, error="guest not ready")
        p = topo.run_in(topo.th, traffic_cmd(
            "udp", rate, int(rate * args.seconds),
            os.path.join(rundir, "traffic.rec")),
            stdout=subprocess.PIPE, text=True)
        s = json.loads(p.communicate()[0])
        return dict(rec, sent=s["sent"], lost=s["lost"], ok=True)
    finally:
        if src:
            src.stop()


def summary_table(recs):
    """One line per point: enough to follow a campaign as it runs."""
    rows = ["profile  mode      traffic feat        rate   N ok  "
            "lost(window) med/max  stall/blackout ms med  "
            "true downtime ms med"]
    def key_of(r):
        return (r["profile"], r["mode"], r["traffic"] +
                ("-bcast" if r.get("to") == "broadcast" else ""),
                r["features"], r["rate"])
    keys = sorted({key_of(r) for r in recs})
    for key in keys:
        rs = [r for r in recs if key_of(r) == key]
        ok = [r for r in rs if r.get("ok")]
        head = "{:8} {:9} {:7} {:11} {:5} {:3} {:2}".format(
            *key, len(rs), len(ok))
        if not ok:
            rows.append(head + "  (no successful run)")
            continue
        med = statistics.median
        if key[2].startswith("udp"):
            lw = [r["lost_window"] for r in ok]
            stall = med(r["blackout_ms"] for r in ok)
            lost = f"{med(lw):.0f}/{max(lw)}"
        else:
            stall = med(r["tcp"]["longest_rtt_ms"] for r in ok)
            lost = "-"
        rows.append(f"{head}  {lost:>17}  {stall:21.1f}  "
                    f"{med(r['true_downtime_ms'] for r in ok):20.1f}")
    return "\n".join(rows)


def run_line(r):
    head = (f"{r['profile']:7} {r['mode']:8} {r['traffic']}"
            f"{'-bcast' if r.get('to') == 'broadcast' else ''} "
            f"{r['features']:10} {r['rate']:5}/s run {r['rep'] + 1}: ")
    if "status_src" not in r:
        return head + f"FAILED: {r.get('error')}"
    line = (head + f"{r['status_src']} (source {r['run_src']}, "
            f"destination {r['run_dst']}), downtime "
            f"{r['downtime_reported_ms']} ms reported / "
            f"{r.get('true_downtime_ms')} ms true; ")
    if r["traffic"] == "udp" and "loss" in r:
        line += (f"sent {r['sent']}, lost {r['lost']} (in the window "
                 f"{r['lost_window']}, outside "
                 f"{r['lost_before'] + r['lost_after']}; "
                 + ", ".join(f"{k} {v}" for k, v in r["loss"].items() if v)
                 + f"), reordered {r['reordered']}, dup {r['duplicated']}")
    elif "tcp" in r:
        t = r["tcp"]
        line += (f"{t['sent']} requests, longest round trip "
                 f"{t['longest_rtt_ms']:.0f} ms, retransmissions "
                 f"{t['retransmissions']}")
    if not r.get("ok"):
        line += f" -- FAILED: {r.get('error', 'see ' + r['rundir'])}"
    return line


def results_dir(args):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = args.out or os.path.join(WORK, "lab", "results", stamp)
    os.makedirs(d, exist_ok=True)
    return d


def record_files(args, out):
    """Where a campaign's records go: its runs.jsonl, and --publish's."""
    files = [open(os.path.join(out, "runs.jsonl"), "w")]
    if args.publish:
        os.makedirs(os.path.dirname(os.path.abspath(args.publish)),
                    exist_ok=True)
        files.append(open(args.publish, "a"))
    return files


def write_record(files, r):
    """@r as a line of each of @files; its rundir, a local path, only in
    the first (the campaign's own runs.jsonl)"""
    for f in files:
        f.write(json.dumps({k: v for k, v in r.items()
                            if k != "rundir" or f is files[0]},
                           sort_keys=True) + "\n")
        f.flush()


def campaign(args, profiles, points, reps, run=None, env=None):
    """Every profile x point, reps times (or the point's own "reps"), in
    rounds (so that a slow spell of the machine spreads over all points);
    records and a table. @run: what one run is (one_migration() unless
    given), @env: the environment() it records."""
    out = results_dir(args)
    env = env or environment(args)
    recs = []
    files = record_files(args, out)
    try:
        for rep in range(reps):
            for profile in profiles:
                for p in points:
                    if rep >= p.get("reps", reps):
                        continue
                    rd = os.path.join(out, "{}-{}-{}{}-{}-{}-{}".format(
                        profile, p["mode"], p["traffic"],
                        "-bcast" if p.get("to") == "broadcast" else "",
                        "+".join(p["features"]) or "base", p["rate"], rep))
                    # A bridge, TAPs and traffic host of its own: nothing
                    # learnt or queued in an earlier run leaks into it.
                    with Topology(profile) as topo:
                        r = (run or one_migration)(topo, args, env, p, rd,
                                                   rep)
                    r["rundir"] = rd
                    recs.append(r)
                    write_record(files, r)
                    print(run_line(r), flush=True)
    finally:
        for f in files:
            f.close()
    print()
    print(summary_table(recs))
    print(f"records: {os.path.join(out, 'runs.jsonl')}")
    return recs


def rss_kib(vm):
    """The QEMU's resident memory, KiB"""
    with open(f"/proc/{vm.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {vm.name}")


# Mappings at least this big are the guest's RAM and TCG's translation
# buffer, which the guest's run fills; the rest is QEMU's own memory
# (malloc's heap and arenas, stacks, libraries)
BIG_MAPPING_KIB = 128 << 10


def own_kib(vm):
    """The QEMU's resident memory outside its big mappings, KiB"""
    total = size = 0
    with open(f"/proc/{vm.proc.pid}/smaps") as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:") and size < BIG_MAPPING_KIB:
                total += int(line.split()[1])
    return total


def sample_rss(vm, seconds, until=None, limit=120, every=0.01):
    """(VmRSS, own_kib()) every @every s: for @seconds, or if @until is
    given, until @until() is true (asked every 0.1 s) and @seconds more;
    never past @limit s (then it raises). [KiB]"""
    out = []
    now = time.monotonic()
    end, give_up, asked = (None if until else now + seconds), now + limit, 0
    while end is None or now < end:
        if now > give_up:
            raise RuntimeError(f"{vm.name}: not done after {limit} s")
        out.append((rss_kib(vm), own_kib(vm)))
        time.sleep(every)
        now = time.monotonic()
        if end is None and now - asked >= 0.1:
            asked = now
            if until():
                end = now + seconds
    return out


def growth(base, during, i):
    """Peak of @during over the highest of @base, of sample_rss()'s i-th"""
    b, p = max(x[i] for x in base), max(x[i] for x in during)
    return {"base_max": b, "peak": p, "growth": p - b}


# Frames of a UDP datagram with a payload of @size bytes, as netpass
# keeps them: Ethernet, IPv4 and UDP headers, and the tap's virtio-net
# header (12 bytes)
def frame_len(size):
    return 14 + 20 + 8 + size + 12


def memflood_one(topo, args, env, rundir, rep, features):
    """A flood of tiny frames at far more than netpass-max-bytes during a
    switchover held open (pause-before-switchover): each side's resident
    memory against the bound.  With netpass off, the same run gives what
    the switchover itself costs each side (the last RAM pass, the device
    state): netpass's share is the difference."""
    os.makedirs(rundir, exist_ok=True)
    bound, size = args.netpass_max_bytes, args.flood_size
    count = int(args.udp_rate * args.seconds)
    on = "netpass" in features
    rec = {"campaign": "memflood", "rep": rep, "mode": "precopy",
           "features": "+".join(features) or "-",
           "profile": topo.profile, "rate": args.udp_rate, "size": size,
           "sent_frames": count, "bound": bound,
           "offered_cost": count * netpass_cost(frame_len(size)),
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    setup = dict(env, traffic={"kind": "udp", "rate": args.udp_rate,
                               "seconds": args.seconds, "payload": size,
                               "to": "guest, during pre-switchover"})
    uri = f"unix:{os.path.join(rundir, 'mig.sock')}"
    src = dst = None
    rec_proc = [None]
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        dst = start_vm(topo, rundir, "dst", "tap-dst",
                       ["-incoming", "defer"], args)
        if not wait_console(rundir, "src", READY, 120) or \
                not guest_answers(topo, rundir):
            raise RuntimeError("guest not ready")
        caps = [{"capability": c, "state": True}
                for c in ["return-path"] + list(features)]
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=caps)
            if on:
                vm.qmp.cmd("migrate-set-parameters", **{
                    "netpass-max-bytes": bound})
        src.qmp.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "pause-before-switchover", "state": True}])
        params = {"max-bandwidth": 1 << 30, "downtime-limit": 300}
        src.qmp.cmd("migrate-set-parameters", **params)
        caps_src, params_src = settings(src, params)
        caps_dst, params_dst = settings(dst, {})
        np_params = {"netpass-max-bytes": bound} if on else {}
        setup.update(caps={"src": caps_src, "dst": caps_dst},
                     params={"src": dict(params_src, **np_params),
                             "dst": np_params})
        rec["setup"] = setup
        dst.qmp.cmd("migrate-incoming", uri=uri)
        src.qmp.cmd("migrate", uri=uri)
        info = wait_status(src.qmp, {"pre-switchover", "failed"},
                           args.timeout)
        if info.get("status") != "pre-switchover":
            raise RuntimeError(f"source {info.get('status')}")
        # The source's VM is stopped and netpass captures: a baseline,
        # then the flood, then until its counters stop moving
        base = sample_rss(src, 0.5)
        proc = rec_proc[0] = topo.run_in(topo.th, traffic_cmd(
            "udp", args.udp_rate, count,
            os.path.join(rundir, "traffic.rec"), 200, size=size),
            stdout=subprocess.PIPE, text=True)
        during = sample_rss(src, 0.5, until=lambda: proc.poll() is not None)
        summary = json.loads(proc.communicate(timeout=60)[0])
        rec["sent"] = summary["sent"]
        rec["offered_cost"] = summary["sent"] * netpass_cost(
            frame_len(size))
        src_np = src.qmp.cmd("query-migrate").get("netpass") or {}
        rec["src_rss_kib"] = growth(base, during, 0)
        rec["src_own_kib"] = growth(base, during, 1)
        dbase = sample_rss(dst, 0.5)
        src.qmp.cmd("migrate-continue", state="pre-switchover")
        done = {}

        def completed():
            if "src" not in done:
                s = src.qmp.cmd("query-migrate").get("status")
                if s in ("completed", "failed", "cancelled"):
                    done["src"] = s
            return "src" in done
        dduring = sample_rss(dst, 1.0, until=completed, limit=args.timeout)
        dinfo = wait_status(dst.qmp, {"completed", "failed"}, 30)
        info = src.qmp.cmd("query-migrate")
        rec["status_src"] = info.get("status")
        rec["status_dst"] = dinfo.get("status")
        rec["netpass_src"] = info.get("netpass") or src_np
        rec["netpass_dst"] = dinfo.get("netpass")
        rec["dst_rss_kib"] = growth(dbase, dduring, 0)
        rec["dst_own_kib"] = growth(dbase, dduring, 1)
        kept = rec["netpass_src"].get("captured-frames", 0)
        # What reached netpass (the TAP's own queue may drop some first)
        rec["reached_cost"] = (kept + rec["netpass_src"].get(
            "dropped-bound", 0)) * netpass_cost(frame_len(size))
        # The flood's frames all have the same length
        rec["kept_cost"] = kept * netpass_cost(frame_len(size))
        # A measurement: the figures are in the record, the table
        rec["ok"] = (rec["status_src"] == "completed" and
                     rec["status_dst"] == "completed")
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        if rec_proc[0] and rec_proc[0].poll() is None:
            rec_proc[0].kill()
            rec_proc[0].wait()
        for vm in (src, dst):
            if vm:
                vm.stop()
    rec.setdefault("setup", setup)
    return rec


def memflood_campaign(args, reps, feature_sets):
    out = results_dir(args)
    env = environment(args)
    files = record_files(args, out)
    recs = []
    try:
        for rep in range(reps):
            for fs in feature_sets:
                name = "+".join(fs) or "off"
                with Topology((args.profiles or "default")
                              .split(",")[0]) as t:
                    r = memflood_one(t, args, env, os.path.join(
                        out, f"memflood-{name}-{rep}"), rep, fs)
                recs.append(r)
                write_record(files, r)
                print(f"memflood {r['features']} run {rep + 1}: " + (
                    f"FAILED: {r.get('error')}" if "error" in r else
                    f"bound {r['bound']} B, offered "
                    f"{r['offered_cost']} B ({r['sent']} frames), reached "
                    f"{r['reached_cost']} B, kept "
                    f"{r['kept_cost']} B; source RSS +"
                    f"{r['src_rss_kib']['growth']} KiB (own +"
                    f"{r['src_own_kib']['growth']}), destination RSS +"
                    f"{r['dst_rss_kib']['growth']} KiB (own +"
                    f"{r['dst_own_kib']['growth']}); "
                    f"{r['netpass_src']}"), flush=True)
    finally:
        for f in files:
            f.close()
    return recs


def smoke_verdict(recs):
    """CI's correctness checks; True if all hold."""
    good = True
    for r in recs:
        checks = {"completed": r.get("status_src") == "completed",
                  "exactly one side runs the guest": r.get("one_running"),
                  "answers before and after": r.get("answers_before") and
                  r.get("answers_after")}
        if r["features"] == "netpass":
            checks["nothing lost, duplicated or reordered"] = (
                r.get("lost") == 0 and r.get("duplicated") == 0 and
                r.get("reordered") == 0)
        print(f"smoke {r['features']}: " + ", ".join(
            f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
            + f" (sent {r.get('sent')}, lost {r.get('lost')}, "
              f"reordered {r.get('reordered')}, duplicated "
              f"{r.get('duplicated')}{', ' + r['error'] if 'error' in r else ''})")
        good &= all(checks.values())
    return good


# --- Scenario 4: faults at the start of postcopy -------------------------

class Forwarder:
    """The migration's connections, through the lab: the source connects
    to a socket of ours, we connect to the destination's (each a unix
    path, or a (host, port) over TCP). On the first, the main channel,
    we read the return path message by message (be16 type, be16 length,
    data) so that we can stop the destination's acknowledgement of the
    postcopy package (PONG 0x42) from reaching the source: @at_ack "cut"
    cuts every channel just before it; "hold" keeps them and drops the
    acknowledgement and all that follows it on the return path (a
    destination that went silent after it loaded the package, or a link
    that stopped delivering), while the source's streams still flow;
    None forwards everything."""

    PONG, PACKAGED = 2, 0x42

    def __init__(self, listen, target, at_ack=None):
        import socket
        import threading
        self.at_ack = at_ack
        self.cut_at = self.held_at = None
        family = socket.AF_UNIX if isinstance(listen, str) else \
            socket.AF_INET
        self.ls = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(listen)
        self.ls.listen(1)
        self.target = target
        self.src = self.dst = None
        self.channels = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import threading
        self.src, self.dst = self._accept()
        threading.Thread(target=self._pump, args=(self.src, self.dst),
                         daemon=True).start()
        threading.Thread(target=self._others, daemon=True).start()
        self._return_path()

    def _accept(self):
        import socket
        a, _ = self.ls.accept()
        b = socket.socket(self.ls.family, socket.SOCK_STREAM)
        b.connect(self.target)
        with self.lock:
            self.channels.append((a, b))
        return a, b

    def _others(self):
        """Channels after the first (postcopy-preempt's): passed on as
        they are, both ways, and cut with the first"""
        import threading
        try:
            while True:
                a, b = self._accept()
                for x, y in ((a, b), (b, a)):
                    threading.Thread(target=self._pump, args=(x, y),
                                     daemon=True).start()
        except OSError:
            pass

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            # The destination is gone: its host would answer with a
            # reset, and the source's writes fail, as over TCP
            self._shut(a, 2)
        self._shut(b, 1)

    @staticmethod
    def _shut(s, how):
        import socket
        try:
            s.shutdown(socket.SHUT_WR if how == 1 else socket.SHUT_RDWR)
        except OSError:
            pass

    def _return_path(self):
        buf = b""
        try:
            while True:
                data = self.dst.recv(65536)
                if not data:
                    break
                buf += data
                out = b""
                while len(buf) >= 4:
                    mlen = 4 + int.from_bytes(buf[2:4], "big")
                    if len(buf) < mlen:
                        break
                    mtype = int.from_bytes(buf[0:2], "big")
                    if (self.at_ack and self.held_at is None and
                            mtype == self.PONG and mlen >= 8 and
                            int.from_bytes(buf[4:8], "big") == self.PACKAGED):
                        self.src.sendall(out)
                        if self.at_ack == "cut":
                            self.cut()
                            return
                        self.held_at = time.monotonic_ns()
                        out = buf = b""
                        break
                    out += buf[:mlen]
                    buf = buf[mlen:]
                if self.held_at is not None:
                    buf = out = b""
                    continue
                self.src.sendall(out)
        except OSError:
            pass
        # The destination closed or died: over TCP the source's writes
        # would then fail too (a reset), not block
        self._shut(self.src, 2)

    def cut(self):
        with self.lock:
            if self.cut_at is None:
                self.cut_at = time.monotonic_ns()
            for pair in self.channels:
                for s in pair:
                    self._shut(s, 2)

    def close(self):
        self.cut()
        self.ls.close()


FAULTS = ("kill-loading", "reject", "cut-before-ack", "freeze")


def console_checks(rundir, name, after_line=0):
    """dirtymem's memory checks on a side's console: (ok, wrong) counts,
    from line after_line on."""
    ok = wrong = 0
    try:
        with open(os.path.join(rundir, f"{name}.console"),
                  errors="replace") as f:
            lines = f.read().splitlines()[after_line:]
    except FileNotFoundError:
        return 0, 0, 0
    for line in lines:
        if re.search(r"dirtymem: check \d+ ok", line):
            ok += 1
        elif re.search(r"dirtymem: check \d+: \d+ pages wrong", line):
            wrong += 1
    return ok, wrong, len(lines)


def console_lines(rundir, name):
    return console_checks(rundir, name)[2]


def alive(vm):
    return vm is not None and vm.proc.poll() is None


def query(vm, what, timeout=None):
    """A command that may get no answer within @timeout s: None then (a
    frozen or hung QEMU, or a dead one)."""
    try:
        return vm.qmp.call(what, timeout=timeout)
    except Exception:
        return None


def fault_migration(topo, args, env, fault, rundir, rep):
    """One postcopy migration with a fault at its start, the lab acting
    as management (as libvirt would: the destination starts with -S and
    is continued once the source is in postcopy-active; a source paused
    before the acknowledgement whose destination never ran is cancelled;
    a silent destination is paused after --pause-after seconds, then
    recovered). Returns the run's record: who runs the guest afterwards,
    whether its memory checks out, and when it answered again."""
    os.makedirs(rundir, exist_ok=True)
    sock = os.path.join(rundir, "mig.sock")
    fwd_sock = os.path.join(rundir, "fwd.sock")
    src = dst = proc = fwd = None
    rec = {"campaign": "faults", "rep": rep, "mode": "postcopy",
           "fault": fault, "traffic": "udp", "rate": args.udp_rate,
           "profile": topo.profile, "features": "-",
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    setup = dict(env, traffic={"kind": "udp", "rate": args.udp_rate,
                               "seconds": args.seconds,
                               "warmup_s": args.warmup,
                               "drain_ms": DRAIN_MS},
                 management={"destination": "-S, 'cont' in postcopy-active",
                             "pause_after_s": args.pause_after})
    actions = []
    try:
        src = start_vm(topo, rundir, "src", "tap-src",
                       ["-device", "virtio-rng-pci"] if fault == "reject"
                       else [], args)
        dst = start_vm(topo, rundir, "dst", "tap-dst",
                       ["-incoming", "defer", "-S"], args)
        if not wait_console(rundir, "src", READY, 120):
            raise RuntimeError("guest did not boot (see src.console)")
        rec["answers_before"] = guest_answers(topo, rundir)
        if not rec["answers_before"]:
            raise RuntimeError("guest does not answer before migration")
        caps = [{"capability": c, "state": True}
                for c in ("postcopy-ram", "return-path")]
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        params = {"max-bandwidth": 32 << 20, "downtime-limit": 300}
        if args.fault_keepalive:
            params["postcopy-rp-keepalive-period"] = args.fault_keepalive
        src.qmp.cmd("migrate-set-parameters", **params)
        caps_src, params_src = settings(src, params)
        caps_dst, params_dst = settings(dst, params)
        setup.update(caps={"src": caps_src, "dst": caps_dst},
                     params={"src": params_src, "dst": params_dst})
        rec["setup"] = setup
        dst.qmp.cmd("migrate-incoming", uri=f"unix:{sock}",
                    **{"exit-on-error": False})
        fwd = Forwarder(fwd_sock, sock,
                        "cut" if fault == "cut-before-ack" else None)

        proc = topo.run_in(topo.th, traffic_cmd(
            "udp", args.udp_rate, int(args.udp_rate * args.seconds),
            os.path.join(rundir, "traffic.rec")),
            stdout=subprocess.PIPE, text=True)
        time.sleep(args.warmup)
        src.qmp.cmd("migrate", uri=f"unix:{fwd_sock}")
        wait_status(src.qmp, {"active"}, 30)
        time.sleep(0.5)
        src.qmp.cmd("migrate-start-postcopy")

        fault_at = None
        if fault in ("kill-loading", "freeze"):
            # As soon as the package went out: the destination loads it
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                st = src.qmp.cmd("query-migrate").get("status")
                if st != "active":
                    break
            fault_at = time.monotonic_ns()
            src_lines = console_lines(rundir, "src")
            os.kill(dst.proc.pid, signal.SIGKILL if fault == "kill-loading"
                    else signal.SIGSTOP)
            actions.append(f"{'SIGKILL' if fault == 'kill-loading' else 'SIGSTOP'}"
                           f" destination, source {st}")

        # Management: watch the source, act as the docs say
        deadline = time.monotonic() + args.timeout
        device_since = None
        src_lines = console_lines(rundir, "src")
        states = []
        t_states = time.monotonic()
        while time.monotonic() < deadline:
            st = src.qmp.cmd("query-migrate").get("status")
            if not states or states[-1][1] != st:
                states.append((round(time.monotonic() - t_states, 3), st))
                rec["source_states"] = states
            if fault == "cut-before-ack" and fault_at is None and \
                    fwd.cut_at is not None:
                fault_at = fwd.cut_at
                src_lines = console_lines(rundir, "src")
            if st in ("completed", "failed", "cancelled"):
                break
            if st == "postcopy-active" and alive(dst) and \
                    (query(dst, "query-status") or {}).get("status") == \
                    "paused":
                dst.qmp.cmd("cont")
                actions.append("cont destination")
            if st == "postcopy-device":
                device_since = device_since or time.monotonic()
                if time.monotonic() - device_since > args.pause_after:
                    src.qmp.cmd("migrate-pause")
                    actions.append("migrate-pause source (silent "
                                   "destination)")
                    device_since = None
            else:
                device_since = None
            if st == "postcopy-paused" and fault_at and \
                    "source_paused_ms" not in rec:
                rec["source_paused_ms"] = round(
                    (time.monotonic_ns() - fault_at) / 1e6)
            if st == "postcopy-paused":
                if fault == "freeze" and alive(dst) and \
                        "SIGCONT destination" not in actions:
                    os.kill(dst.proc.pid, signal.SIGCONT)
                    actions.append("SIGCONT destination")
                dstate = None
                settle = time.monotonic() + 5
                while alive(dst) and time.monotonic() < settle:
                    reply = query(dst, "query-migrate", timeout=2)
                    if reply is None:
                        actions.append("destination's monitor does not "
                                       "answer")
                        break
                    dstate = reply.get("status")
                    if dstate in ("postcopy-paused", "failed"):
                        break
                    time.sleep(0.05)
                ran = "dst-postcopy-bh-vm-started" in checkpoints(
                    rundir, "dst") and "cont destination" in actions
                if dstate == "postcopy-paused":
                    # The destination has the guest: recover
                    fwd.close()
                    rsock = os.path.join(rundir, f"rec{len(actions)}.sock")
                    dst.qmp.cmd("migrate-recover", uri=f"unix:{rsock}")
                    src.qmp.cmd("migrate", uri=f"unix:{rsock}",
                                resume=True)
                    actions.append("recover")
                elif not ran:
                    # It never ran the guest (-S, never continued):
                    # give the guest back to the source
                    if alive(dst):
                        dst.proc.kill()
                        dst.proc.wait()
                        actions.append("kill destination (never ran)")
                    src.qmp.cmd("migrate_cancel")
                    actions.append("migrate_cancel source")
                else:
                    actions.append("destination ran and is gone: "
                                   "guest lost")
                    break
                wait_status(src.qmp, {"postcopy-active", "completed",
                                      "cancelled", "failed"}, 30)
                continue
            time.sleep(0.01)
        if alive(dst) and src.qmp.cmd("query-migrate").get("status") == \
                "completed" and (query(dst, "query-status") or {}).get(
                    "status") == "paused":
            wait_status(dst.qmp, {"completed"}, 30)
            dst.qmp.cmd("cont")
            actions.append("cont destination")
        rec["actions"] = actions
        rec["status_src"] = src.qmp.cmd("query-migrate").get("status")
        rec["status_dst"] = ((query(dst, "query-migrate") or {})
                             .get("status") if alive(dst) else "killed")
        time.sleep(1)
        rec["run_src"] = src.qmp.cmd("query-status")["status"]
        rec["run_dst"] = ((query(dst, "query-status") or {}).get("status")
                          if alive(dst) else "killed")
        rec["one_running"] = ((rec["run_src"] == "running") !=
                              (rec["run_dst"] == "running"))
        rec["dst_ran"] = "dst-postcopy-bh-vm-started" in checkpoints(
            rundir, "dst")

        summary = json.loads(proc.communicate(
            timeout=args.seconds + 60)[0])
        proc = None
        rec.update({k: summary[k] for k in ("sent", "echoed", "lost",
                                            "duplicated", "reordered")})
        recs = read_records(os.path.join(rundir, "traffic.rec"))
        stop = checkpoints(rundir, "src").get("src-vm-stopped")
        rec["answers_after"] = any(a > (stop or 0) for _, _, a in recs)
        # Time from the fault (or the source's stop) until the guest
        # answered again, wherever it runs
        t0 = fault_at if fault_at else stop
        if t0 and fault_at:
            # fault_at is monotonic, the records are CLOCK_REALTIME ns
            t0 = time.time_ns() - (time.monotonic_ns() - fault_at)
        after = [a for _, _, a in recs if t0 and a > t0]
        rec["answer_again_ms"] = (round((min(after) - t0) / 1e6, 1)
                                  if after else None)
        # The guest's own memory check, on the side that runs it
        side = "src" if rec["run_src"] == "running" else "dst"
        time.sleep(args.check_wait)
        ok, wrong, _ = console_checks(rundir, side,
                                      src_lines if side == "src" else 0)
        rec["memory_checks"] = {"side": side, "ok": ok, "wrong": wrong}
        rec["memory_intact"] = ok > 0 and wrong == 0
        rec["ok"] = bool(rec["one_running"] and rec["memory_intact"] and
                         rec["answers_after"])
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
        rec["actions"] = actions
    finally:
        if proc:
            proc.kill()
            proc.wait()
        if fwd:
            fwd.close()
        for vm in (src, dst):
            if vm:
                if vm.proc.poll() is None:
                    try:
                        os.kill(vm.proc.pid, signal.SIGCONT)
                    except OSError:
                        pass
                vm.stop()
    rec.setdefault("setup", setup)
    return rec


def fault_campaign(args, faults, reps):
    """Every fault, reps times, in rounds; records and one line a run."""
    out = results_dir(args)
    env = environment(args)
    recs = []
    files = record_files(args, out)
    try:
        for rep in range(reps):
            for fault in faults:
                rd = os.path.join(out, f"fault-{fault}-{rep}")
                with Topology("default") as topo:
                    r = fault_migration(topo, args, env, fault, rd, rep)
                recs.append(r)
                write_record(files, r)
                print(f"{fault} #{rep}: src {r.get('status_src')}/"
                      f"{r.get('run_src')}, dst {r.get('status_dst')}/"
                      f"{r.get('run_dst')}, one running "
                      f"{r.get('one_running')}, memory "
                      f"{r.get('memory_checks')}, answers again "
                      f"{r.get('answer_again_ms')} ms, actions "
                      f"{r.get('actions')}"
                      + (f", ERROR {r['error']}" if "error" in r else ""),
                      flush=True)
    finally:
        for f in files:
            f.close()
    print(f"records: {os.path.join(out, 'runs.jsonl')}")
    return recs


# Scenario 5: a link that dies silently in postcopy
TRANSPORTS = ("tcp", "fd", "proxy")
LOADS = ("idle", "inflight")
MIG_PORT, PROXY_PORT, RECOVER_PORT = 4444, 4445, 4450


def tcp_pair_in_netns(ns, port):
    """A connected TCP pair over 127.0.0.1:port inside netns @ns, as a
    management layer would make and hand over with fd:.  setns() moves
    one thread only: a thread of our own makes the sockets, which stay
    in the namespace they were made in."""
    import ctypes
    import socket
    import threading
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}

    def work():
        try:
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:     # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.bind(("127.0.0.1", port))
            ls.listen(1)
            a = socket.create_connection(("127.0.0.1", port))
            b, _ = ls.accept()
            ls.close()
            out["pair"] = (a, b)
        except Exception as e:
            out["error"] = e

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["pair"]


def link_drop(topo, port, on, ways=("dport", "sport")):
    """Drop every packet to or from @port in the namespace, silently (no
    reset, no ICMP): a link that died.  nftables' output hook sees both
    directions of a connection over the loopback.  @ways: "dport" drops
    what goes to the side listening on @port, "sport" what it sends."""
    if on:
        nft = ["ip", "netns", "exec", topo.br, "nft"]
        sh(*nft, "add", "table", "inet", "labdrop")
        sh(*nft, "add", "chain", "inet", "labdrop", "out",
           "{ type filter hook output priority 0; }")
        for field in ways:
            sh(*nft, "add", "rule", "inet", "labdrop", "out", "tcp", field,
               str(port), "drop")
    else:
        sh("ip", "netns", "exec", topo.br, "nft", "delete", "table",
           "inet", "labdrop", check=False, stderr=subprocess.DEVNULL)


def ram_stat(vm, key):
    return (vm.qmp.cmd("query-migrate").get("ram") or {}).get(key)


def linkfail_migration(topo, args, env, transport, load, period, rundir,
                       rep):
    """One postcopy migration whose link dies silently (tc drops it) in
    postcopy-active, idle (a -S destination asks for no page) or in
    flight (the destination runs the guest, which faults on pages not
    yet there). Measures, from the drop, when each side reaches
    postcopy-paused by itself, up to --off-cap seconds without the
    keepalive; then the lab recovers as management would (pausing first
    the sides that did not pause), and checks that the migration
    completes, the guest answers and its memory checks out."""
    os.makedirs(rundir, exist_ok=True)
    src = dst = fwd = None
    rec = {"campaign": "linkfail", "rep": rep, "mode": "postcopy",
           "transport": transport, "load": load, "keepalive_ms": period,
           "profile": topo.profile, "features": "-",
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    cap = args.off_cap if not period else max(30, 6 * period / 1000)
    setup = dict(env, link={"drop": "nftables drop in the namespace's "
                                    "output hook, both ways",
                            "cap_s": cap,
                            "recovery": "tcp, a new port"})
    actions = []
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        dst = start_vm(topo, rundir, "dst", "tap-dst",
                       ["-incoming", "defer"] +
                       (["-S"] if load == "idle" else []), args)
        if not wait_console(rundir, "src", READY, 120):
            raise RuntimeError("guest did not boot (see src.console)")
        caps = [{"capability": c, "state": True}
                for c in ("postcopy-ram", "return-path")]
        for vm in (src, dst):
            vm.qmp.cmd("migrate-set-capabilities", capabilities=caps)
        params = {"max-bandwidth": 32 << 20, "downtime-limit": 300,
                  "max-postcopy-bandwidth": args.postcopy_bandwidth,
                  "postcopy-rp-keepalive-period": period}
        src.qmp.cmd("migrate-set-parameters", **params)
        caps_src, params_src = settings(src, params)
        caps_dst, params_dst = settings(dst, params)
        setup.update(caps={"src": caps_src, "dst": caps_dst},
                     params={"src": params_src, "dst": params_dst})
        rec["setup"] = setup

        dst_uri = src_uri = f"tcp:127.0.0.1:{MIG_PORT}"
        if transport == "fd":
            a, b = tcp_pair_in_netns(topo.br, MIG_PORT)
            src.qmp.getfd(a.fileno(), "mig")
            dst.qmp.getfd(b.fileno(), "mig")
            a.close()
            b.close()
            dst_uri = src_uri = "fd:mig"
        dst.qmp.cmd("migrate-incoming", uri=dst_uri,
                    **{"exit-on-error": False})
        if transport == "proxy":
            fwd = topo.run_in(topo.br, [sys.executable, os.path.join(
                TOP, "lab", "tcpfwd.py"), str(PROXY_PORT), str(MIG_PORT)],
                stdout=subprocess.PIPE, text=True)
            fwd.stdout.readline()
            src_uri = f"tcp:127.0.0.1:{PROXY_PORT}"
        src.qmp.cmd("migrate", uri=src_uri)
        wait_status(src.qmp, {"active"}, 30)
        time.sleep(0.5)
        src.qmp.cmd("migrate-start-postcopy")
        wait_status(src.qmp, {"postcopy-active"}, 60)
        wait_status(dst.qmp, {"postcopy-active"}, 60)
        # In flight: let the destination's guest fault for a while
        time.sleep(1.5)
        rec["page_requests_before"] = ram_stat(src, "postcopy-requests")

        link_drop(topo, MIG_PORT, True)
        t0 = time.monotonic()
        actions.append("drop")
        paused = {}
        while time.monotonic() - t0 < cap and len(paused) < 2:
            for name, vm in (("src", src), ("dst", dst)):
                if name in paused:
                    continue
                st = (query(vm, "query-migrate", timeout=5) or {}).get(
                    "status")
                if st == "postcopy-paused":
                    paused[name] = round((time.monotonic() - t0) * 1000)
                elif st in ("failed", "completed", "cancelled"):
                    raise RuntimeError(f"{name} ended {st} on the drop")
            time.sleep(0.02)
        rec["src_paused_ms"] = paused.get("src")
        rec["dst_paused_ms"] = paused.get("dst")
        rec["gave_up_s"] = None if len(paused) == 2 else cap
        for name, vm in (("src", src), ("dst", dst)):
            if name not in paused:
                # What management does once it has noticed
                vm.qmp.cmd("migrate-pause")
                actions.append(f"migrate-pause {name}")
                wait_status(vm.qmp, {"postcopy-paused"}, 30)
        link_drop(topo, MIG_PORT, False)
        actions.append("undrop")

        src.qmp.cmd("migrate-set-parameters",
                    **{"max-postcopy-bandwidth": 0})
        ruri = f"tcp:127.0.0.1:{RECOVER_PORT}"
        dst.qmp.cmd("migrate-recover", uri=ruri)
        src.qmp.cmd("migrate", uri=ruri, resume=True)
        actions.append("recover")
        wait_status(src.qmp, {"completed"}, 120)
        wait_status(dst.qmp, {"completed"}, 120)
        rec["recovered"] = True
        rec["page_requests_after"] = ram_stat(src, "postcopy-requests")
        if load == "idle":
            dst.qmp.cmd("cont")
            actions.append("cont destination")
        rec["run_src"] = src.qmp.cmd("query-status")["status"]
        rec["run_dst"] = dst.qmp.cmd("query-status")["status"]
        rec["one_running"] = (rec["run_src"] != "running" and
                              rec["run_dst"] == "running")
        rec["answers_after"] = guest_answers(topo, rundir)
        time.sleep(args.check_wait)
        ok, wrong, _ = console_checks(rundir, "dst")
        rec["memory_checks"] = {"side": "dst", "ok": ok, "wrong": wrong}
        rec["memory_intact"] = ok > 0 and wrong == 0
        bound = 3 * period + 500
        rec["bound_ms"] = bound if period else None
        rec["within_bound"] = (bool(period) and len(paused) == 2 and
                               max(paused.values()) <= bound)
        rec["ok"] = bool(rec["recovered"] and rec["one_running"] and
                         rec["answers_after"] and rec["memory_intact"] and
                         (rec["within_bound"] or not period))
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        rec["actions"] = actions
        link_drop(topo, MIG_PORT, False)
        if fwd:
            fwd.kill()
            fwd.wait()
        for vm in (src, dst):
            if vm:
                vm.stop()
    rec.setdefault("setup", setup)
    return rec


def linkfail_campaign(args, reps):
    out = results_dir(args)
    env = environment(args)
    recs = []
    files = record_files(args, out)
    transports = args.transports.split(",")
    loads = args.loads.split(",")
    try:
        for rep in range(reps):
            for transport in transports:
                for load in loads:
                    for period in (0, args.keepalive_period):
                        rd = os.path.join(out, f"linkfail-{transport}-"
                                          f"{load}-{period}-{rep}")
                        with Topology("default") as topo:
                            r = linkfail_migration(topo, args, env,
                                                   transport, load, period,
                                                   rd, rep)
                        recs.append(r)
                        write_record(files, r)
                        print(f"{transport} {load} keepalive {period} "
                              f"#{rep}: paused src {r.get('src_paused_ms')}"
                              f" dst {r.get('dst_paused_ms')} ms, gave up "
                              f"{r.get('gave_up_s')}, recovered "
                              f"{r.get('recovered')}, answers "
                              f"{r.get('answers_after')}, memory "
                              f"{r.get('memory_checks')}, requests "
                              f"{r.get('page_requests_before')}, ok "
                              f"{r.get('ok')}"
                              + (f", ERROR {r['error']}" if "error" in r
                                 else ""), flush=True)
    finally:
        for f in files:
            f.close()
    print(f"records: {os.path.join(out, 'runs.jsonl')}")
    return recs


def stop_on_term(*_):
    """Unwind, so that every run cleans up; a second SIGTERM (make relays
    one) must not interrupt that."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(1)


def points_of(modes, traffics, rates, feature_sets):
    return [{"mode": m, "traffic": t, "rate": rates[t], "features": fs}
            for m in modes for t in traffics for fs in feature_sets]


def main():
    ap = argparse.ArgumentParser(
        description="the switchover lab (see the docstring)")
    ap.add_argument("what", choices=["capacity", "demo", "bench", "matrix",
                                     "downtime", "flood", "memflood",
                                     "smoke", "faults", "linkfail",
                                     "libvirt", "libvirt-refusals",
                                     "libvirt-postcopy-device", "report"])
    ap.add_argument("--mem", type=int, default=256, help="guest MiB")
    ap.add_argument("--dirty-mib", type=int, default=64,
                    help="the guest's dirtying buffer, 0 for none")
    ap.add_argument("--dirty-pages", type=int, default=2000,
                    help="pages the guest dirties per second")
    ap.add_argument("--seconds", type=float, default=8,
                    help="traffic duration per migration")
    ap.add_argument("--warmup", type=float, default=2,
                    help="seconds of traffic before migrating")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--reps", type=int, default=20, help="N per point")
    ap.add_argument("--reps-off", type=int, default=None,
                    help="matrix: N per point with netpass off (default: "
                    "--reps)")
    ap.add_argument("--flood-size", type=int, default=24,
                    help="memflood: UDP payload bytes (24 to 64)")
    ap.add_argument("--rates", default="2000,5000",
                    help="matrix: comma list of UDP rates, datagrams/s")
    ap.add_argument("--udp-rate", type=int, default=2000,
                    help="datagrams/s")
    ap.add_argument("--tcp-rate", type=int, default=1000,
                    help="requests/s")
    ap.add_argument("--modes", default="precopy,postcopy")
    ap.add_argument("--profiles", default=None,
                    help="comma list of: default, tuned")
    ap.add_argument("--traffic", default=None, help="comma list: udp, tcp")
    ap.add_argument("--out", default=None, help="results directory")
    ap.add_argument("--publish", metavar="FILE",
                    help="also append the records to FILE (docs/results/)")
    ap.add_argument("--features", default=None,
                    help="bench: comma list of feature sets, '-' for none "
                         "(default: -,netpass)")
    ap.add_argument("--note", default=None,
                    help="a remark kept in every record (an experiment)")
    ap.add_argument("--netpass-max-bytes", type=int, default=4 << 20)
    ap.add_argument("--broadcast", action="store_true",
                    help="UDP to the segment's broadcast address, which "
                    "the bridge floods to both QEMUs (the guest echoes)")
    ap.add_argument("--dump", action="store_true",
                    help="record what reaches each NIC in "
                    "RUNDIR/{src,dst}.pcap (an investigation, not a "
                    "published run: it slows the QEMUs)")
    ap.add_argument("--early-unicast", type=int, default=0, metavar="N",
                    help="postcopy runs: N unicast datagrams to the guest "
                    "written into the destination's TAP before it starts "
                    "(a network told of the migration early); with --dump, "
                    "how they reach its NIC in the record")
    ap.add_argument("--blocktime", action="store_true",
                    help="postcopy runs: postcopy-blocktime on the "
                    "destination, its page fault latencies in the record "
                    "(with --trace postcopy_ram_fault_thread_request, the "
                    "main thread's page requests too)")
    ap.add_argument("--trace", action="append",
                    help="a QEMU trace event pattern to enable too "
                    "(RUNDIR/{src,dst}.trace)")
    ap.add_argument("--inject-failure", choices=["boot", "migrate"],
                    help="fail each run on purpose (tests the cleanup)")
    ap.add_argument("--faults", default=",".join(FAULTS),
                    help="faults: comma list of " + ", ".join(FAULTS))
    ap.add_argument("--pause-after", type=float, default=2,
                    help="faults: seconds a source may wait in "
                         "postcopy-device before management pauses it")
    ap.add_argument("--fault-keepalive", type=int, default=0,
                    help="faults: postcopy-rp-keepalive-period on the "
                         "source, ms (0: off)")
    ap.add_argument("--check-wait", type=float, default=5,
                    help="faults: seconds to let the guest check its "
                         "memory after the migration")
    ap.add_argument("--transports", default=",".join(TRANSPORTS),
                    help="linkfail: comma list of " + ", ".join(TRANSPORTS))
    ap.add_argument("--loads", default=",".join(LOADS),
                    help="linkfail: comma list of " + ", ".join(LOADS))
    ap.add_argument("--keepalive-period", type=int, default=1000,
                    help="linkfail: postcopy-rp-keepalive-period, ms, of "
                         "the runs with it on")
    ap.add_argument("--off-cap", type=float, default=45,
                    help="linkfail: seconds to wait for a pause with the "
                         "keepalive off before giving up")
    ap.add_argument("--postcopy-bandwidth", type=int, default=4 << 20,
                    help="linkfail: max-postcopy-bandwidth until the "
                         "drop, bytes/s (postcopy must still run then)")
    ap.add_argument("--cases", default=None,
                    help="libvirt-postcopy-device, libvirt-refusals: comma "
                         "list of cases (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="report: compare instead of writing")
    args = ap.parse_args()
    if args.what == "report":
        import report
        return report.main(check=args.check)
    if os.geteuid() != 0:
        sys.exit("lab.py: needs root (network namespaces, TAP)")
    signal.signal(signal.SIGTERM, stop_on_term)

    modes = args.modes.split(",")
    if not set(modes) <= {"precopy", "postcopy"}:
        ap.error(f"--modes: {args.modes}: precopy and postcopy only")
    profiles = (args.profiles or "").split(",") if args.profiles else None
    if profiles and not set(profiles) <= set(PROFILES):
        ap.error(f"--profiles: {args.profiles}")
    traffics = args.traffic.split(",") if args.traffic else None
    rates = {"udp": args.udp_rate, "tcp": args.tcp_rate}
    netpass = ((), ("netpass",))
    if args.features:
        netpass = [tuple(f.split("+")) if f != "-" else ()
                   for f in args.features.split(",")]
    if args.what == "capacity":
        out = results_dir(args)
        env = environment(args)
        with Topology((profiles or ["default"])[0]) as topo:
            for rate in (1000, 2000, 5000, 10000):
                r = steady_rate(topo, args, env, rate,
                                os.path.join(out, f"capacity-{rate}"))
                print(json.dumps(r), flush=True)
                if args.publish:
                    with open(args.publish, "a") as f:
                        f.write(json.dumps(r, sort_keys=True) + "\n")
        return 0
    if args.what == "faults":
        faults = args.faults.split(",")
        if not set(faults) <= set(FAULTS):
            ap.error(f"--faults: {args.faults}")
        if args.seconds == 8:
            args.seconds = 25
        recs = fault_campaign(args, faults, args.reps)
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "memflood":
        recs = memflood_campaign(args, args.reps, netpass)
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "linkfail":
        recs = linkfail_campaign(args, args.reps)
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "libvirt-refusals":
        import lvlab
        only = args.cases.split(",") if args.cases else None
        lvlab.check_ready(old=not only or any("old" in c for c in only))
        out = results_dir(args)
        recs = lvlab.refusals(args, out, only)
        files = record_files(args, out)
        for r in recs:
            write_record(files, r)
        for f in files:
            f.close()
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "libvirt-postcopy-device":
        import lvlab
        lvlab.check_ready()
        cases = (args.cases.split(",") if args.cases
                 else list(lvlab.PCDEVICE_CASES))
        if not set(cases) <= set(lvlab.PCDEVICE_CASES):
            ap.error(f"--cases: {args.cases}")
        out = results_dir(args)
        recs = lvlab.postcopy_device(args, out, cases)
        files = record_files(args, out)
        for r in recs:
            write_record(files, r)
        for f in files:
            f.close()
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "libvirt":
        import lvlab
        lvlab.check_ready()
        pts = points_of(modes, ["udp"], rates, netpass)
        for p in pts:
            if not p["features"] and args.reps_off is not None:
                p["reps"] = args.reps_off
        recs = campaign(args, profiles or ["tuned"], pts, args.reps,
                        run=lvlab.libvirt_migration,
                        env=lvlab.environment(args))
        return 0 if recs and all(r.get("ok") for r in recs) else 1
    if args.what == "demo":
        recs = campaign(args, profiles or ["default"], points_of(
            modes, traffics or ["udp"], rates, netpass), 1)
    elif args.what == "bench":
        recs = campaign(args, profiles or ["default", "tuned"], points_of(
            modes, traffics or ["udp", "tcp"], rates, netpass), args.reps)
    elif args.what == "matrix":
        # Issue 11's matrix: UDP to the guest and to the segment's
        # broadcast address, each rate, netpass off and on.
        pts = []
        for to in ("guest", "broadcast"):
            for rate in (int(x) for x in args.rates.split(",")):
                for p in points_of(modes, ["udp"], {"udp": rate}, netpass):
                    p["to"] = to
                    if not p["features"] and args.reps_off is not None:
                        p["reps"] = args.reps_off
                    pts.append(p)
        recs = campaign(args, profiles or ["default", "tuned"], pts,
                        args.reps)
    elif args.what == "flood":
        args.netpass_max_bytes = 64 << 10
        rates["udp"] = 20000
        recs = campaign(args, profiles or ["tuned"], points_of(
            modes, ["udp"], rates, [("netpass",)]), args.reps)
    elif args.what == "downtime":
        rates["udp"] = 1000
        recs = campaign(args, profiles or ["default"], points_of(
            modes, ["udp"], rates, [(), ("vm-started",)]), args.reps)
    else:
        args.seconds, args.warmup = 5, 1.5
        rates["udp"] = 1000
        recs = campaign(args, ["tuned"], points_of(
            ["precopy"], ["udp"], rates, netpass), 1)
        return 0 if smoke_verdict(recs) else 1
    return 0 if recs and all(r.get("ok") for r in recs) else 1


if __name__ == "__main__":
    sys.exit(main())
