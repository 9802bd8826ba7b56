#!/usr/bin/python3
"""The switchover lab: real guests, real TAP devices, a real bridge.

usage: lab.py {capacity,demo,bench,downtime,flood,smoke} [options]
       lab.py report --out DIR RESULTS-DIR[:MODES]...

  capacity  the guest's echo loss at fixed rates, no migration
  demo      precopy and postcopy at 2k/s, netpass off and on
  bench     precopy and postcopy at 2k, 5k/s, netpass off and on, --reps
  downtime  reported vs true downtime, vm-started off and on, --reps each
  flood     netpass with a 64 KiB bound at 20k/s: bounded, drops counted
  smoke     precopy at 1k/s, netpass off and on; correctness only (CI):
            with netpass no datagram lost, duplicated or reordered
  report    merge earlier results into one table and plot

Topology, inside two network namespaces this script creates and always
removes (nothing is sent outside them):

    traffic host (veth) ---- bridge ----+---- tap-src ---- source QEMU
                                        +---- tap-dst ---- destination QEMU

The traffic host runs udpblast against the guest's udpecho; the two QEMUs
migrate over a unix socket. One JSON record per migration goes to
runs.jsonl in the results directory, with a summary table and a plot.

Exit: 0 success, 1 a run failed (or, for smoke, a correctness check
failed), 2 usage.
"""
import argparse
import datetime
import json
import os
import re
import signal
import statistics
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
READY = "lab: guest ready"      # printed by lab/guest/init

GUEST_IP = "192.0.2.2"          # TEST-NET-1: documentation range, and
HOST_IP = "192.0.2.1"           # it only ever exists inside our namespaces
GUEST_MAC = "52:54:00:6e:70:01"
ECHO_PORT = "7777"


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, **kw)


class Topology:
    """Two namespaces: 'br' (bridge, taps, QEMUs) and 'th' (traffic host)."""

    def __init__(self):
        tag = f"npl{os.getpid()}"
        self.br, self.th = f"{tag}-br", f"{tag}-th"

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
        for tap in ("tap-src", "tap-dst"):
            sh("ip", "-n", br, "tuntap", "add", tap, "mode", "tap",
               "vnet_hdr")
            # The host's queue for a guest that is briefly slow to take
            # frames (postcopy faulting its memory in), so that frames
            # lost after the switchover do not blur the switchover's.
            sh("ip", "-n", br, "link", "set", tap, "txqueuelen", "10000")
            sh("ip", "-n", br, "link", "set", tap, "master", "br0", "up")
        sh("ip", "-n", br, "link", "add", "vbr", "type", "veth",
           "peer", "name", "vth", "netns", th)
        sh("ip", "-n", br, "link", "set", "vbr", "master", "br0", "up")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        sh("ip", "-n", th, "addr", "add", f"{HOST_IP}/24", "dev", "vth")
        sh("ip", "-n", th, "link", "set", "vth", "up")
        sh("ip", "-n", th, "link", "set", "lo", "up")

    def teardown(self):
        for ns in (self.br, self.th):
            sh("ip", "netns", "del", ns, check=False,
               stderr=subprocess.DEVNULL)

    def run_in(self, ns, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns] + cmd, **kw)


def accelerator():
    """KVM only when asked and usable; TCG otherwise (see README)."""
    if os.environ.get("LAB_KVM") == "1" and os.access("/dev/kvm", os.W_OK):
        return "kvm"
    return "tcg"


def start_vm(topo, rundir, name, tap, extra, args):
    log = os.path.join(rundir, f"{name}.log")
    common = [
        "-machine", "pc-q35-10.2", "-accel", accelerator(),
        "-m", str(args.mem), "-smp", "1",
        "-kernel", os.path.join(GUEST, "vmlinuz"),
        "-initrd", os.path.join(GUEST, "initrd"),
        "-append", f"console=ttyS0 quiet panic=-1 lab.ip={GUEST_IP}/24 "
                   f"lab.dirty={args.dirty_mib},{args.dirty_pages}",
        "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={GUEST_MAC},romfile=",
        "-serial", f"file:{os.path.join(rundir, name + '.console')}",
        "-msg", "timestamp=on", "-D", os.path.join(rundir, f"{name}.trace"),
        "-trace", "vmstate_downtime_checkpoint",
    ] + extra
    return Qemu(QEMU, name, rundir, common, log=log,
                prefix=["ip", "netns", "exec", topo.br])


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


def blast(topo, rate, count, drain_ms, out):
    return topo.run_in(topo.th, [
        os.path.join(BIN, "udpblast"), "-d", GUEST_IP, "-p", ECHO_PORT,
        "-r", str(rate), "-n", str(count), "-w", str(drain_ms), "-o", out],
        stdout=subprocess.PIPE, text=True)


def guest_answers(topo, rundir, timeout=30):
    """Probe until the guest echoes (ARP and the bridge need a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = blast(topo, 200, 40, 300, os.path.join(rundir, "probe.rec"))
        summary = json.loads(p.communicate()[0])
        if summary["echoed"] > 0:
            return True
    return False


def checkpoints(rundir, name):
    """vmstate_downtime_checkpoint trace events: {checkpoint: epoch ns}."""
    found = {}
    pat = re.compile(r"^(\S+) vmstate_downtime_checkpoint (\S+)")
    try:
        with open(os.path.join(rundir, f"{name}.trace")) as f:
            for line in f:
                m = pat.match(line)
                if m:
                    ts = datetime.datetime.fromisoformat(
                        m.group(1).replace("Z", "+00:00"))
                    found.setdefault(m.group(2),
                                     int(ts.timestamp() * 1e6) * 1000)
    except FileNotFoundError:
        pass
    return found


def wait_status(qmp, states, timeout):
    deadline = time.monotonic() + timeout
    info = {}
    while time.monotonic() < deadline:
        info = qmp.cmd("query-migrate")
        if info.get("status") in states:
            break
        time.sleep(0.05)
    return info


def build_id(qemu):
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "?"


def one_migration(topo, args, mode, rate, features, rundir, fail_at=None):
    """Boot, send traffic, migrate, collect. Returns the run's record.
    features: capabilities set on both sides (each needs return-path)."""
    os.makedirs(rundir, exist_ok=True)
    uri = f"unix:{os.path.join(rundir, 'mig.sock')}"
    src = dst = traffic = None
    rec = {"mode": mode, "rate": rate, "features": "+".join(features) or "-",
           "accel": accelerator(),
           "qemu": build_id(QEMU), "mem_mib": args.mem,
           "dirty": f"{args.dirty_mib} MiB, {args.dirty_pages} pages/s",
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        dst = start_vm(topo, rundir, "dst", "tap-dst",
                       ["-incoming", "defer"], args)
        if fail_at == "boot":
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
        # Postcopy runs: slow precopy down so that it cannot complete
        # before migrate-start-postcopy; postcopy itself is unlimited.
        src.qmp.cmd("migrate-set-parameters", **{
            "max-bandwidth": (32 << 20) if mode == "postcopy" else (1 << 30),
            "downtime-limit": 300})
        if "netpass" in features:
            for vm in (src, dst):
                vm.qmp.cmd("migrate-set-parameters", **{
                    "netpass-max-bytes": args.netpass_max_bytes})
        dst.qmp.cmd("migrate-incoming", uri=uri)

        count = int(rate * args.seconds)
        traffic = blast(topo, rate, count, 3000,
                        os.path.join(rundir, "echo.rec"))
        time.sleep(args.warmup)
        if fail_at == "migrate":
            raise RuntimeError("injected failure during the traffic")
        src.qmp.cmd("migrate", uri=uri)
        if mode == "postcopy":
            wait_status(src.qmp, {"active"}, 30)
            time.sleep(0.5)
            src.qmp.cmd("migrate-start-postcopy")
        info = wait_status(src.qmp, {"completed", "failed", "cancelled"},
                           args.timeout)
        dinfo = wait_status(dst.qmp, {"completed", "failed"}, 30)
        rec["status_src"] = info.get("status")
        rec["status_dst"] = dinfo.get("status")
        rec["dst_running"] = dst.qmp.cmd("query-status")["status"]
        rec["downtime_src_ms"] = info.get("downtime")
        rec["downtime_dst_ms"] = dinfo.get("downtime")
        rec["destination_started"] = info.get("destination-started")
        rec["total_time_ms"] = info.get("total-time")
        rec["netpass_src"] = info.get("netpass")
        rec["netpass_dst"] = dinfo.get("netpass")

        np_src = rec["netpass_src"] or {}
        rec["forwarded"] = np_src.get("forwarded-frames")
        rec["dropped"] = np_src.get("dropped-frames")
        summary = json.loads(traffic.communicate(
            timeout=args.seconds + 60)[0])
        traffic = None
        rec.update({k: summary[k] for k in (
            "sent", "echoed", "lost", "reordered", "duplicated")})
        rec["blackout_ms"] = summary["longest_gap_ms"]

        cs, cd = checkpoints(rundir, "src"), checkpoints(rundir, "dst")
        stop = cs.get("src-vm-stopped")
        start = cd.get(f"dst-{mode}-bh-vm-started")
        if not start:
            raise RuntimeError(f"the destination did not start in {mode}")
        rec["true_downtime_ms"] = (round((start - stop) / 1e6, 3)
                                   if stop and start else None)
        if rec["true_downtime_ms"] is not None and rec["downtime_src_ms"]:
            rec["downtime_error_ms"] = round(
                rec["downtime_src_ms"] - rec["true_downtime_ms"], 3)
        rec["src_stop_ns"] = stop
        last_echo = max((int(l.split()[2]) for l in
                         open(os.path.join(rundir, "echo.rec"))), default=0)
        rec["answers_after"] = bool(start and last_echo > start)
        rec["ok"] = (rec["status_src"] == "completed"
                     and rec["dst_running"] == "running"
                     and rec["answers_after"]
                     and rec["sent"] == rec["echoed"] + rec["lost"])
        if rec["ok"] and "netpass" in features and args.strict:
            if rec["lost"] or rec["reordered"] or rec["duplicated"]:
                raise RuntimeError("netpass: lost, reordered or duplicated")
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        if traffic:
            traffic.kill()
            traffic.wait()
        for vm in (src, dst):
            if vm:
                vm.stop()
    rec["rundir"] = rundir
    return rec


def steady_rate(topo, args, rate, rundir):
    """Echo capacity without migration: loss at a fixed rate."""
    os.makedirs(rundir, exist_ok=True)
    src = None
    try:
        src = start_vm(topo, rundir, "src", "tap-src", [], args)
        if not wait_console(rundir, "src", READY, 120) or \
                not guest_answers(topo, rundir):
            return {"rate": rate, "ok": False, "error": "guest not ready"}
        p = blast(topo, rate, int(rate * args.seconds), 2000,
                  os.path.join(rundir, "echo.rec"))
        s = json.loads(p.communicate()[0])
        return {"rate": rate, "sent": s["sent"], "lost": s["lost"],
                "loss_pct": round(100.0 * s["lost"] / s["sent"], 2),
                "accel": accelerator(), "ok": True}
    finally:
        if src:
            src.stop()


def table(recs):
    """Median and worst per (mode, rate)."""
    rows = ["mode      features    rate   N  lost med/max  reord max  dup max"
            "  blackout ms med/max  downtime src ms med  true ms med"
            "  error ms med/max  fwd med/max  dropped max"]
    keys = sorted({(r["mode"], r["features"], r["rate"]) for r in recs})
    for mode, feat, rate in keys:
        rs = [r for r in recs if (r["mode"], r["features"], r["rate"]) ==
              (mode, feat, rate) and r.get("ok")]
        head = f"{mode:9} {feat:11} {rate:5}"
        if not rs:
            rows.append(f"{head}   0  (no successful run)")
            continue

        def col(k):
            return [r[k] for r in rs if r.get(k) is not None] or [0]

        def mm(k, fmt="{:.0f}"):
            v = col(k)
            return f"{fmt.format(statistics.median(v))}/{fmt.format(max(v, key=abs))}"
        rows.append(
            f"{head} {len(rs):3}  {mm('lost'):>12}  "
            f"{max(col('reordered')):9}  {max(col('duplicated')):7}  "
            f"{mm('blackout_ms', '{:.1f}'):>20}  "
            f"{statistics.median(col('downtime_src_ms')):19.1f}  "
            f"{statistics.median(col('true_downtime_ms')):11.1f}  "
            f"{mm('downtime_error_ms', '{:.1f}'):>16}"
            f"  {mm('forwarded'):>11}  {max(col('dropped')):11}")
    return "\n".join(rows)


def plot(recs, path):
    """Echo sequence number against time around switchover, one panel per
    mode (columns) and feature set (rows), at the highest rate: echoed
    datagrams as dots, lost ones as red crosses."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    usable = [r for r in recs if r.get("ok") and r.get("src_stop_ns")]
    modes = [m for m in ("precopy", "postcopy")
             if any(r["mode"] == m for r in usable)]
    feats = sorted({r["features"] for r in usable})
    if not usable:
        return False
    fig, axes = plt.subplots(len(feats), len(modes),
                             figsize=(6 * len(modes), 4.5 * len(feats)),
                             squeeze=False)
    panels = []
    for row, feat in zip(axes, feats):
        for ax, mode in zip(row, modes):
            rs = [r for r in usable
                  if (r["mode"], r["features"]) == (mode, feat)]
            if not rs:
                ax.set_axis_off()
                continue
            top = max(r["rate"] for r in rs)
            panels.append((ax, next(r for r in rs if r["rate"] == top)))
    for ax, r in panels:
        t0 = r["src_stop_ns"]
        ok_t, ok_s, lost_t, lost_s = [], [], [], []
        with open(os.path.join(r["rundir"], "echo.rec")) as f:
            for line in f:
                seq, sent, echo, _ = (int(x) for x in line.split())
                if abs(sent - t0) > 1.5e9:
                    continue
                if echo:
                    ok_t.append((echo - t0) / 1e6)
                    ok_s.append(seq)
                else:
                    lost_t.append((sent - t0) / 1e6)
                    lost_s.append(seq)
        ax.plot(ok_t, ok_s, ".", ms=2, label="echoed (at echo time)")
        ax.plot(lost_t, lost_s, "x", color="red", ms=3,
                label=f"lost (at send time): {r['lost']}")
        ax.axvline(0, color="gray", lw=0.8, ls="--")
        if r.get("true_downtime_ms"):
            ax.axvspan(0, r["true_downtime_ms"], color="orange", alpha=0.2,
                       label=f"both paused: {r['true_downtime_ms']:.0f} ms")
        ax.set_title(f"{r['mode']}, {r['rate']}/s, features: "
                     f"{r['features']}, {r['accel'].upper()}")
        ax.set_xlabel("ms since the source VM stopped")
        ax.set_ylabel("datagram sequence number")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def run_line(r, what):
    head = f"{r['mode']:8} {r['features']:10} {r['rate']:5}/s {what}: "
    if "status_src" not in r:
        return head + f"FAILED: {r.get('error', 'see ' + r['rundir'])}"
    line = (head + f"{r['status_src']} (destination {r['dst_running']}), "
            f"total {r['total_time_ms']} ms, downtime {r['downtime_src_ms']}"
            f" ms reported / {r['true_downtime_ms']} ms true; echoes: sent "
            f"{r.get('sent')}, lost {r.get('lost')}, reordered "
            f"{r.get('reordered')}, dup {r.get('duplicated')}, blackout "
            f"{r.get('blackout_ms', 0):.0f} ms")
    if not r.get("ok"):
        line += f" -- FAILED: {r.get('error', 'see ' + r['rundir'])}"
    return line


def results_dir(args):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = args.out or os.path.join(WORK, "lab", "results", stamp)
    os.makedirs(d, exist_ok=True)
    return d


def campaign(args, modes, rates, reps, feature_sets=((),)):
    """Every mode x feature set x rate, reps times; records, table, plot."""
    out = results_dir(args)
    recs = []
    points = [(rep, mode, feats, rate) for rep in range(reps)
              for mode in modes for feats in feature_sets for rate in rates]
    with Topology() as topo, open(os.path.join(out, "runs.jsonl"), "w") as jf:
        for rep, mode, feats, rate in points:
            rd = os.path.join(out, f"{mode}-{'+'.join(feats) or 'base'}"
                                   f"-{rate}-{rep}")
            r = one_migration(topo, args, mode, rate, feats, rd,
                              fail_at=args.inject_failure)
            recs.append(r)
            jf.write(json.dumps(r) + "\n")
            jf.flush()
            print(run_line(r, f"run {rep + 1}/{reps}"), flush=True)
    txt = table(recs)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(txt + "\n")
    print()
    print(txt)
    if plot(recs, os.path.join(out, "switchover.png")):
        print(f"\nplot: {os.path.join(out, 'switchover.png')}")
    print(f"records: {os.path.join(out, 'runs.jsonl')}")
    return recs


def report(args):
    """Merge the runs of several results directories: table and plot."""
    if not args.inputs or not args.out:
        sys.exit("usage: lab.py report --out DIR RESULTS-DIR[:MODES]...")
    recs = []
    for arg in args.inputs:         # DIR or DIR:MODE[,MODE]
        d, _, only = arg.partition(":")
        recs += [r for r in map(json.loads,
                                open(os.path.join(d, "runs.jsonl")))
                 if not only or r["mode"] in only.split(",")]
    os.makedirs(args.out, exist_ok=True)
    txt = table(recs)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(txt + "\n")
    print(txt)
    plot(recs, os.path.join(args.out, "switchover.png"))
    return 0


def main():
    ap = argparse.ArgumentParser(
        description="the switchover lab (see lab/README.md)")
    ap.add_argument("what", choices=["capacity", "demo", "bench", "downtime",
                                     "flood", "smoke", "report"])
    ap.add_argument("inputs", nargs="*",
                    help="report: results directories to merge")
    ap.add_argument("--mem", type=int, default=256, help="guest MiB")
    ap.add_argument("--dirty-mib", type=int, default=64)
    ap.add_argument("--dirty-pages", type=int, default=2000,
                    help="pages the guest dirties per second")
    ap.add_argument("--seconds", type=float, default=8,
                    help="traffic duration per migration")
    ap.add_argument("--warmup", type=float, default=2,
                    help="seconds of traffic before migrating")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--reps", type=int, default=10, help="bench: N per point")
    ap.add_argument("--rates", default=None, help="comma list, datagrams/s")
    ap.add_argument("--modes", default="precopy,postcopy",
                    help="comma list: precopy, postcopy")
    ap.add_argument("--out", default=None, help="results directory")
    ap.add_argument("--netpass-max-bytes", type=int, default=4 << 20)
    ap.add_argument("--strict", action="store_true",
                    help="a netpass run that loses, reorders or duplicates "
                         "a datagram fails")
    ap.add_argument("--inject-failure", choices=["boot", "migrate"],
                    help="fail each run on purpose (tests the cleanup)")
    args = ap.parse_intermixed_args()
    if args.what == "report":
        return report(args)
    if os.geteuid() != 0:
        sys.exit("lab.py: needs root (network namespaces, TAP)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    rates = [int(x) for x in args.rates.split(",")] if args.rates else None
    modes = args.modes.split(",")
    if not set(modes) <= {"precopy", "postcopy"}:
        ap.error(f"--modes: {args.modes}: precopy and postcopy only")
    if args.what == "capacity":
        out = results_dir(args)
        with Topology() as topo:
            for rate in rates or [1000, 2000, 5000, 10000]:
                r = steady_rate(topo, args, rate,
                                os.path.join(out, f"capacity-{rate}"))
                print(json.dumps(r), flush=True)
        return 0
    netpass = ((), ("netpass",))
    if args.what == "demo":
        recs = campaign(args, modes, rates or [2000], 1, netpass)
    elif args.what == "bench":
        recs = campaign(args, modes, rates or [2000, 5000], args.reps,
                        netpass)
    elif args.what == "flood":
        args.netpass_max_bytes = 64 << 10
        recs = campaign(args, modes, rates or [20000], args.reps,
                        (("netpass",),))
    elif args.what == "downtime":
        recs = campaign(args, modes, rates or [1000], args.reps,
                        feature_sets=((), ("vm-started",)))
    else:
        args.seconds, args.warmup, args.strict = 5, 1.5, True
        recs = campaign(args, ["precopy"], rates or [1000], 1, netpass)
        for r in recs:
            print(f"smoke {r['features']}: answers before "
                  f"{r.get('answers_before')}, completed "
                  f"{r.get('status_src') == 'completed'}, answers after "
                  f"{r.get('answers_after')}, sent {r.get('sent')} = echoed "
                  f"{r.get('echoed')} + lost {r.get('lost')}, reordered "
                  f"{r.get('reordered')}, duplicated {r.get('duplicated')}")
    return 0 if recs and all(r.get("ok") for r in recs) else 1


if __name__ == "__main__":
    sys.exit(main())
