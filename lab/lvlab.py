"""The lab's libvirt driver: the same guest, TAPs, bridge and traffic as
lab.py's runs, but migrated by `virsh migrate` between two libvirt daemons,
as operators and KubeVirt migrate.

Each run starts two libvirtd from work/build-libvirt (the libvirt series),
inside the lab's bridge namespace (the QEMUs they start use its TAPs), each
in a mount and UTS namespace of its own: its own hostname, host UUID, and
/etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt, bind-mounted from RUNDIR/lv-{src,dst} (the capabilities
cache from the campaign's directory, so that QEMU is probed once). libvirt
refuses a migration between daemons with the same host UUID; these two are
two hosts to it. virsh runs outside and reaches each daemon through its
socket; the migration stream goes over TCP on the namespace's loopback.

The source daemon runs the guest as a persistent domain (define, start: it
stays there, shut off, with its job statistics, once migrated) whose
QEMU is the patched one; the domain has the lab's kernel, initrd and
command line, a virtio NIC on tap-src (tap-dst on the destination, given
with migrate --xml), its serial console in a file, and, through
<qemu:commandline>, the trace events the lab reads and a second QMP
monitor that the lab only queries (status, capabilities while the
migration runs, the destination's run state). Everything that decides the
migration goes through virsh: migrate [--postcopy] [--netpass],
migrate-postcopy, domjobinfo --completed (downtime and the netpass
counters, each side its own).

True downtime: libvirt starts every destination paused (-S) and continues
it once the migration completed, so the destination starts at its first
vm_state_notify "running 1", not at dst-*-bh-vm-started (which marks the
end of the load there).
"""
import datetime
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import lab as L
from qmp import QMP

LVBUILD = os.environ.get("LV_BUILD_DIR",
                         os.path.join(L.WORK, "build-libvirt"))
RUN = os.path.join(LVBUILD, "run")
VIRSH = os.path.join(LVBUILD, "tools", "virsh")
LIBVIRTD = os.path.join(LVBUILD, "src", "libvirtd")
# An older libvirt, without the series (make libvirt-old): Debian
# bookworm's, unpacked, not installed
OLD_ROOT = os.path.join(L.WORK, "libvirt-old")
OLD_LIBDIR = os.path.join(OLD_ROOT, "usr", "lib", "x86_64-linux-gnu")
OLD_LIBVIRTD = os.path.join(OLD_ROOT, "usr", "sbin", "libvirtd")
DOMAIN = "lab"
# The directories of a daemon, each bind-mounted over the system one
DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt",
        "lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt",
        "log": "/var/log/libvirt"}

LIBVIRTD_CONF = """\
unix_sock_group = "root"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
host_uuid = "{uuid}"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""
# Root, no security driver, no cgroups and no QEMU mount namespace: the lab
# owns the machine; QEMU's stdout goes to a file (no virtlogd)
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
"""


class Daemon:
    """One libvirtd, a host to libvirt: its own hostname, UUID and state.
    With @old, the older libvirt's (its modules and its data, the CPU
    map, in its mount namespace), else the series' (from @build, another
    build directory of it: its own modules, wherever it was built)."""

    def __init__(self, topo, root, cache, hostname, old=False, build=None):
        self.name = hostname
        self.old = old
        self.root = root
        dirs = {k: os.path.join(root, k) for k in DIRS}
        dirs["cache"] = cache
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(dirs["etc"], "libvirtd.conf"), "w") as f:
            f.write(LIBVIRTD_CONF.format(uuid=uuid.uuid4()))
        with open(os.path.join(dirs["etc"], "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        self.uri = (f"qemu+unix:///system?socket="
                    f"{os.path.join(dirs['run'], 'libvirt-sock')}")
        mounts = "".join(f"mkdir -p {DIRS[k]}; mount --bind {dirs[k]} "
                         f"{DIRS[k]}\n" for k in DIRS)
        if old:
            share = os.path.join(OLD_ROOT, "usr", "share", "libvirt")
            mounts += (f"mkdir -p /usr/share/libvirt; mount --bind {share} "
                       f"/usr/share/libvirt\n")
            # Debian's libvirt looks up its built-in QEMU user before it
            # reads qemu.conf (which says root): the package would have
            # created it; here it exists in the daemon's namespace only
            for db, line in (("passwd", "libvirt-qemu:x:64055:64055::"
                              "/var/lib/libvirt:/usr/sbin/nologin"),
                             ("group", "libvirt-qemu:x:64055:")):
                with open(f"/etc/{db}") as f:
                    text = f.read()
                with open(os.path.join(root, db), "w") as f:
                    f.write(text + ("" if text.endswith("\n") else "\n")
                            + line + "\n")
                mounts += (f"mount --bind {os.path.join(root, db)} "
                           f"/etc/{db}\n")
            run = (f"env LD_LIBRARY_PATH={OLD_LIBDIR} LIBVIRT_DRIVER_DIR="
                   f"{OLD_LIBDIR}/libvirt/connection-driver "
                   f"LIBVIRT_STORAGE_FILE_DIR={OLD_LIBDIR}/libvirt/"
                   f"storage-file {OLD_LIBVIRTD}")
        elif build:
            run = (f"env LIBVIRT_DRIVER_DIR={build}/src {build}/run "
                   f"{build}/src/libvirtd")
        else:
            run = f"{RUN} {LIBVIRTD}"
        self.script = (f"set -e\n{mounts}hostname {hostname}\n"
                       f"exec {run} --pid-file /run/libvirt/libvirtd.pid\n")
        self.netns = topo.br
        self.log = os.path.join(root, "libvirtd.out")
        self._start("w")

    def _start(self, mode):
        with open(self.log, mode) as logf:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "--mount",
                 "--uts", "--propagation", "private", "sh", "-c",
                 self.script],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while self.virsh("uri", check=False).returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"libvirtd {self.name} did not start "
                                   f"(see {self.log})")
            time.sleep(0.2)

    def restart(self):
        """Stop the daemon and start it again, as an operator's restart:
        it reconnects to the domains it left running"""
        self.stop()
        self._start("a")

    def virsh(self, *args, check=True, timeout=60):
        p = subprocess.run([RUN, VIRSH, "-q", "-c", self.uri] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode:
            raise RuntimeError(f"virsh {' '.join(args)} on {self.name}: "
                               f"{p.stderr.strip()}")
        return p

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def default_nics():
    """The lab's NIC: the topology's TAP, with LAB_QUEUES queues"""
    return (("tap", L.queues()),)


def domain_xml(rundir, name, profile, args, nics):
    """The lab guest as a libvirt domain: what lab.start_vm() gives QEMU.
    @nics: its NICs, each (the TAP's name before -NAME, queues), or
    ("vdpa", N) for /dev/vhost-vdpa-N (the vhost bed's VDUSE NICs). The
    first has the guest's MAC, the guest configures it. On KVM, libvirt
    gives a virtio NIC vhost-net unless told otherwise: the driver is
    named, vhost with LAB_VHOST=1 (as libvirt's default), else QEMU's
    own."""
    def p(f):
        return os.path.join(rundir, f"{name}.{f}")
    kvm = L.accelerator() == "kvm"
    interfaces = ""
    for i, (base, n) in enumerate(nics):
        mac = f"      <mac address='{L.GUEST_MAC}'/>\n" if i == 0 else ""
        if base == "vdpa":
            interfaces += (
                "    <interface type='vdpa'>\n" + mac
                + f"      <source dev='/dev/vhost-vdpa-{n}'/>\n"
                "      <model type='virtio'/>\n"
                "      <rom enabled='no'/>\n"
                "    </interface>\n")
            continue
        driver = ((f" name='{'vhost' if L.vhost() else 'qemu'}'"
                   if kvm else "")
                  + (f" queues='{n}'" if n > 1 else ""))
        interfaces += (
            "    <interface type='ethernet'>\n" + mac
            + f"      <target dev='{base}-{name}' managed='no'/>\n"
            "      <model type='virtio'/>\n"
            + (f"      <driver{driver}/>\n" if driver else "")
            + "      <rom enabled='no'/>\n"
            "    </interface>\n")
    cmdline = (f"console=ttyS0 quiet panic=-1 lab.ip={L.GUEST_IP}/24 "
               + (f"lab.dirty={args.dirty_mib},{args.dirty_pages} "
                  if args.dirty_mib else "") + f"lab.profile={profile}")
    qemu_args = (["-msg", "timestamp=on", "-D", p("trace")] + L.traces()
                 + ["-trace", "vm_state_notify",
                    "-qmp", f"unix:{p('qmp')},server=on,wait=off"])
    for t in args.trace or []:
        qemu_args += ["-trace", t]
    qargs = "".join(f"    <qemu:arg value='{a}'/>\n" for a in qemu_args)
    return f"""\
<domain type='{'kvm' if kvm else 'qemu'}' \
xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>{args.mem}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='{L.MACHINE}'>hvm</type>
    <kernel>{os.path.join(L.GUEST, 'vmlinuz')}</kernel>
    <initrd>{os.path.join(L.GUEST, 'initrd')}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{L.QEMU}</emulator>
{interfaces}    <serial type='file'>
      <source path='{p("console")}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
{qargs}  </qemu:commandline>
</domain>
"""


def boot(topo, rundir, cache, args, daemons, src_qemu=L.QEMU,
         dst_qemu=L.QEMU, old=(), nics=None, builds=None):
    """Two daemons (appended to @daemons, for the caller to stop), the
    older libvirt's for the roles in @old, and the lab guest booted on
    the source's on @src_qemu as a persistent domain
    (once migrated away it stays there, inactive, with its completed
    job's statistics), with @nics (see domain_xml(); default_nics() if
    None); RUNDIR/dst.xml, the destination's: the source's migratable XML
    with the destination's TAPs, vDPA devices (the next one: vduse1 for
    vduse0), files and QEMU. @builds: a build directory of the series
    for a role ("src", "dst"), if not the usual one. Returns the two
    daemons."""
    nics = nics or default_nics()
    for role in ("src", "dst"):
        suffix = "-old" if role in old else ""
        daemons.append(Daemon(topo, os.path.join(rundir, f"lv-{role}"),
                              os.path.join(cache, f"lvcache-{role}{suffix}"),
                              f"lab-{role}", old=role in old,
                              build=(builds or {}).get(role)))
    src, dst = daemons
    xml = domain_xml(rundir, "src", topo.profile, args, nics)
    with open(os.path.join(rundir, "src.xml"), "w") as f:
        f.write(xml.replace(L.QEMU, src_qemu))
    src.virsh("define", os.path.join(rundir, "src.xml"))
    src.virsh("start", DOMAIN)
    xml = src.virsh("dumpxml", "--migratable", DOMAIN).stdout
    for a, b in [(f"'{base}-src'", f"'{base}-dst'") if base != "vdpa" else
                 (f"'/dev/vhost-vdpa-{n}'", f"'/dev/vhost-vdpa-{n + 1}'")
                 for base, n in nics] + [
            ("src.console", "dst.console"), ("src.trace", "dst.trace"),
            ("src.qmp", "dst.qmp"), (src_qemu, dst_qemu)]:
        xml = xml.replace(a, b)
    with open(os.path.join(rundir, "dst.xml"), "w") as f:
        f.write(xml)
    if not L.wait_console(rundir, "src", L.READY, 120):
        raise RuntimeError("guest did not boot (see src.console)")
    return src, dst


def running_at(rundir, name):
    """When the QEMU's vCPUs first ran (vm_state_notify "running 1"),
    epoch ns, or None"""
    times = [t for args, t in
             L.trace_events(rundir, name, "vm_state_notify").items()
             if args.startswith("running 1 ")]
    return min(times, default=None)


def jobstats(daemon):
    """virsh domjobinfo --completed: as virsh shows it, and with
    --rawstats as {field: value}"""
    text = daemon.virsh("domjobinfo", DOMAIN, "--completed",
                        "--keep-completed", check=False).stdout
    p = daemon.virsh("domjobinfo", DOMAIN, "--completed", "--rawstats",
                     check=False)
    out = {"text": text}
    for line in p.stdout.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            v = v.strip()
            out[k.strip()] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return out


def event_downtime(text):
    """The downtime in virsh event's job-completed lines, or None"""
    m = re.search(r"^\s*downtime: (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def netpass_of(stats):
    """The netpass counters of job statistics, netpass_x_y as x-y (the
    form of QEMU's names in lab.py's records; libvirt's series before v4
    gave all of QEMU's thirteen, v4 gives five), or None without any"""
    got = {k[len("netpass_"):].replace("_", "-"): v
           for k, v in stats.items() if k.startswith("netpass_")}
    return got or None


def caps_of(qmp):
    return sorted(c["capability"] for c in
                  qmp.cmd("query-migrate-capabilities") if c["state"])


def libvirt_migration(topo, args, env, point, rundir, rep):
    """lab.one_migration()'s run, migrated by virsh between two daemons."""
    os.makedirs(rundir, exist_ok=True)
    mode, rate, features = point["mode"], point["rate"], point["features"]
    netpass = "netpass" in features
    rec = {"campaign": args.what, "rep": rep, "mode": mode,
           "traffic": "udp", "rate": rate, "driver": "libvirt",
           "features": "+".join(features) or "-", "profile": topo.profile,
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ")}
    setup = dict(env, traffic={"kind": "udp", "rate": rate,
                               "seconds": args.seconds,
                               "warmup_s": args.warmup,
                               "drain_ms": L.DRAIN_MS, "to": "guest"},
                 channel="TCP over the bridge namespace's loopback, "
                         "two libvirtd in it")
    daemons, qmps, proc, mig, event = [], [], None, None, None
    try:
        src, dst = boot(topo, rundir, os.path.dirname(rundir), args,
                        daemons)
        # The source's JOB_COMPLETED event: its downtime must be the one
        # domjobinfo --completed shows
        event = subprocess.Popen(
            [RUN, VIRSH, "-q", "-c", src.uri, "event", DOMAIN,
             "--event", "job-completed", "--timeout", str(int(args.timeout))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sq = QMP(os.path.join(rundir, "src.qmp"))
        qmps.append(sq)
        rec["answers_before"] = L.guest_answers(topo, rundir)
        if not rec["answers_before"]:
            raise RuntimeError("guest does not answer before migration")

        before, proc = L.traffic_start(topo, args, rundir, setup, "udp",
                                       rate)
        setup["libvirt_flags"] = (["--live"] +
                                  (["--postcopy"] if mode == "postcopy"
                                   else []) +
                                  (["--netpass"] if netpass else []))
        rec["setup"] = setup
        time.sleep(args.warmup)
        # Postcopy runs: precopy slowed down so that it cannot complete
        # before migrate-postcopy; postcopy itself unlimited
        mig = subprocess.Popen(
            [RUN, VIRSH, "-q", "-c", src.uri, "migrate"]
            + setup["libvirt_flags"]
            + ["--bandwidth", "32" if mode == "postcopy" else "1024",
               "--migrateuri", "tcp://127.0.0.1",
               "--listen-address", "127.0.0.1",
               "--xml", os.path.join(rundir, "dst.xml"), DOMAIN, dst.uri],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        L.wait_status(sq, {"active"}, 30)
        # What libvirt enabled, on both sides, while the migration runs
        dq = QMP(os.path.join(rundir, "dst.qmp"))
        qmps.append(dq)
        setup["caps"] = {"src": caps_of(sq), "dst": caps_of(dq)}
        if mode == "postcopy":
            time.sleep(0.5)
            src.virsh("migrate-postcopy", DOMAIN)
        out = mig.communicate(timeout=args.timeout)[0]
        rec["virsh_migrate"] = out.strip()
        rec["status_src"] = "completed" if mig.returncode == 0 else "failed"
        mig = None
        dinfo = L.wait_status(dq, {"completed", "failed"}, 30)
        rec["status_dst"] = dinfo.get("status")
        state = src.virsh("domstate", DOMAIN, check=False)
        rec["run_src"] = (state.stdout.strip() if state.returncode == 0
                          else "gone")
        rec["run_dst"] = dq.cmd("query-status")["status"]
        rec["one_running"] = ((rec["run_src"] == "running") !=
                              (rec["run_dst"] == "running"))
        js, jd = jobstats(src), jobstats(dst)
        rec["jobinfo"] = {"src": js, "dst": jd}
        if rep:
            for j in (js, jd):
                del j["text"]
        rec["downtime_reported_ms"] = js.get("downtime")
        rec["event_downtime_ms"] = event_downtime(
            event.communicate(timeout=30)[0])
        event = None
        rec["total_time_ms"] = js.get("time_elapsed")
        rec["netpass_src"], rec["netpass_dst"] = netpass_of(js), netpass_of(jd)

        summary, after = L.traffic_end(topo, args, proc)
        proc = None

        cs, cd = L.checkpoints(rundir, "src"), L.checkpoints(rundir, "dst")
        stop = cs.get("src-vm-stopped")
        start = running_at(rundir, "dst")
        if not stop or not start:
            raise RuntimeError("no stop checkpoint or destination start")
        rec["true_downtime_ms"] = round((start - stop) / 1e6, 3)
        rec["checkpoints_ms"] = dict(
            {k: round((v - stop) / 1e6, 3) for k, v in
             sorted(list(cs.items()) + list(cd.items()))},
            **{"dst-vcpus-running": rec["true_downtime_ms"]})
        L.traffic_results(rec, rundir, summary, before, after, stop, start,
                          rep)
        # libvirt must have enabled vm-started on both sides (both have
        # it), and netpass on both exactly when asked
        want = {"vm-started"} | ({"netpass"} if netpass else set())
        negotiated = all(want <= set(setup["caps"][s]) and
                         (netpass or "netpass" not in setup["caps"][s])
                         for s in ("src", "dst"))
        if not negotiated:
            rec["error"] = f"capabilities not as asked: {setup['caps']}"
        rec["ok"] = (rec["status_src"] == "completed"
                     and rec["event_downtime_ms"] == js.get("downtime")
                     and rec["run_dst"] == "running" and rec["one_running"]
                     and rec["answers_after"] and rec["echoed"] > 0
                     and negotiated
                     and (rec["netpass_src"] is not None) == netpass
                     and (rec["netpass_dst"] is not None) == netpass)
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        for p in (proc, mig, event):
            if p:
                p.kill()
                p.wait()
        for q in qmps:
            q.close()
        for d in daemons:
            d.virsh("destroy", DOMAIN, check=False)
            d.stop()
    rec.setdefault("setup", setup)
    return rec


def environment(args):
    """lab.environment() and the libvirt side: its version and series"""
    env = L.environment(args)
    out = subprocess.run([RUN, VIRSH, "--version"], capture_output=True,
                         text=True).stdout.strip()
    env["libvirt"] = out or "?"
    env["libvirt_series_sha256"] = L.series_sha256("libvirt")
    return env


def old_version():
    """The older libvirt's Debian version (make libvirt-old)"""
    with open(os.path.join(OLD_ROOT, "VERSION")) as f:
        return f.read().strip()


def check_ready(old=False):
    for f in (RUN, VIRSH, LIBVIRTD):
        if not os.path.exists(f):
            raise SystemExit(f"lab.py libvirt: no {f} (make libvirt-build)")
    if old and not os.path.exists(OLD_LIBVIRTD):
        raise SystemExit(f"lab.py libvirt: no {OLD_LIBVIRTD} "
                         "(make libvirt-old)")
    if not shutil.which("unshare"):
        raise SystemExit("lab.py libvirt: no unshare (util-linux)")
    # qemuInterfaceOpenVhostNet(): vhost-net for KVM domains only
    if L.vhost() and L.accelerator() != "kvm":
        raise SystemExit("lab.py libvirt: LAB_VHOST=1 needs KVM (LAB_KVM=1 "
                         "and /dev/kvm): libvirt gives vhost-net to KVM "
                         "domains only")


BASE_QEMU = os.path.join(L.WORK, "base", "build", "qemu-system-x86_64")


def refusals(args, out, only=None):
    """What virsh migrate --netpass refuses, and migrations without it
    to or from an unpatched QEMU or an older libvirt (make libvirt-old):
    each case's outcome, as a record (only the cases named in @only, if
    given). The source runs the lab guest on the patched QEMU, with the
    series' libvirt, unless the case says otherwise; no traffic. A
    migration that must complete must do so with neither netpass nor
    vm-started on, on either side, unless the case names the
    capabilities it needs on both."""
    unsupported = "unsupported flags (0x200000)"
    offline = "netpass is not supported with offline migration"
    cases = [
        # name, what differs from the default, flags, expected error (a
        # string, or strings that must all be in it)
        ("tunnelled", {}, ["--p2p", "--tunnelled", "--netpass"],
         "netpass is not supported with tunnelled migration"),
        # Issue 24, item 18: the definition alone, of a running domain and
        # of one that is shut off
        ("offline", {}, ["--offline", "--persistent", "--netpass"], offline),
        ("offline-inactive", {"inactive": True},
         ["--offline", "--persistent", "--netpass"], offline),
        # Item 17: an interface netpass does not cover (vhost-vdpa: only
        # the vhost bed has one, make vhost-libvirt), alone and beside one
        # it covers (then the source's daemon warns, naming it)
        ("netpass-uncovered", {"nics": [("vdpa", 0)]}, ["--netpass"],
         ["netpass covers none of the domain's interfaces",
          ": vhost-vdpa"]),
        ("netpass-partly-covered", {"nics": [("tap", L.queues()),
                                             ("vdpa", 0)],
                                    "caps": {"netpass", "vm-started"},
                                    "warns": ": vhost-vdpa"},
         ["--netpass"], None),
        ("destination-unpatched", {"dst_qemu": BASE_QEMU}, ["--netpass"],
         "netpass is not supported by the QEMU binary on the destination "
         "host"),
        ("source-unpatched", {"src_qemu": BASE_QEMU}, ["--netpass"],
         "netpass is not supported by the QEMU binary on the source host"),
        ("compat-destination-unpatched", {"dst_qemu": BASE_QEMU}, [], None),
        # libvirt 9.0 knows no VIR_MIGRATE_NETPASS (1 << 21)
        ("old-libvirt-destination", {"old": ("dst",)}, ["--netpass"],
         unsupported),
        ("old-libvirt-source", {"old": ("src",)}, ["--netpass"],
         unsupported),
        ("compat-old-libvirt-destination", {"old": ("dst",)}, [], None),
        ("compat-old-libvirt-source", {"old": ("src",)}, [], None),
    ]
    recs = []
    for name, how, flags, expected in cases:
        if only and name not in only:
            continue
        vdpa = ("/dev/vhost-vdpa-0", "/dev/vhost-vdpa-1")
        if any(base == "vdpa" for base, _ in how.get("nics", ())) and \
                not all(os.path.exists(d) for d in vdpa):
            print(f"{name}: skipped: no /dev/vhost-vdpa-0 and -1 (they are "
                  "the vhost bed's: make vhost-libvirt)", flush=True)
            continue
        if "--offline" not in flags:
            flags = ["--live"] + flags
        src_qemu = how.get("src_qemu", L.QEMU)
        dst_qemu = how.get("dst_qemu", L.QEMU)
        rundir = os.path.join(out, f"refusal-{name}")
        os.makedirs(rundir, exist_ok=True)
        rec = {"campaign": "libvirt-refusals", "case": name,
               "flags": flags, "src_qemu": os.path.relpath(src_qemu, L.TOP),
               "dst_qemu": os.path.relpath(dst_qemu, L.TOP),
               "old_libvirt": {r: (old_version() if r in how.get("old", ())
                                   else None) for r in ("src", "dst")},
               "expected_error": expected,
               "nics": how.get("nics") or default_nics(),
               "accel": L.accelerator(), "vhost": L.vhost(),
               "workspace": L.git("rev-parse", "--short=12", "HEAD"),
               "libvirt_series_sha256": L.series_sha256("libvirt"),
               "series_sha256": L.series_sha256(*L.qemu_stack())}
        daemons, qmps, mig = [], [], None
        try:
            with L.Topology("tuned") as topo:
                try:
                    src, dst = boot(topo, rundir, out, args, daemons,
                                    src_qemu, dst_qemu, how.get("old", ()),
                                    how.get("nics"))
                    if how.get("inactive"):
                        src.virsh("destroy", DOMAIN)
                    # (tunnelled: the stream goes through the daemons)
                    where = ([] if "--tunnelled" in flags else
                             ["--migrateuri", "tcp://127.0.0.1",
                              "--listen-address", "127.0.0.1"])
                    # Slow enough to see what the QEMUs have on meanwhile
                    mig = subprocess.Popen(
                        [RUN, VIRSH, "-q", "-c", src.uri, "migrate"] + flags
                        + where + ["--bandwidth", "32",
                                   "--xml", os.path.join(rundir, "dst.xml"),
                                   DOMAIN, dst.uri],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True)
                    if not expected:
                        sq = QMP(os.path.join(rundir, "src.qmp"))
                        qmps.append(sq)
                        L.wait_status(sq, {"active"}, 30)
                        dq = QMP(os.path.join(rundir, "dst.qmp"))
                        qmps.append(dq)
                        rec["caps"] = {"src": caps_of(sq),
                                       "dst": caps_of(dq)}
                    rec["output"] = mig.communicate(
                        timeout=args.timeout)[0].strip()
                    rec["exit"] = mig.returncode
                    st = src.virsh("domstate", DOMAIN, check=False)
                    rec["src_state"] = st.stdout.strip() or "gone"
                    dt = dst.virsh("domstate", DOMAIN, check=False)
                    rec["dst_state"] = (dt.stdout.strip()
                                        if dt.returncode == 0 else "none")
                    if expected:
                        # Refused before anything ran on the destination;
                        # the guest still runs on the source (or stays
                        # shut off there)
                        rec["ok"] = (rec["exit"] != 0 and
                                     all(e in rec["output"] for e in
                                         ([expected] if isinstance(
                                             expected, str) else expected))
                                     and rec["src_state"] ==
                                     ("shut off" if how.get("inactive")
                                      else "running") and
                                     rec["dst_state"] == "none")
                    else:
                        want = how.get("caps", set())
                        rec["ok"] = (rec["exit"] == 0 and
                                     rec["dst_state"] == "running" and
                                     rec["src_state"] == "shut off" and
                                     all(set(rec["caps"][s]) &
                                         {"netpass", "vm-started"} == want
                                         for s in ("src", "dst")))
                        if "warns" in how:
                            with open(os.path.join(rundir, "lv-src", "log",
                                                   "libvirtd.log")) as f:
                                rec["warning"] = [
                                    line.strip() for line in f
                                    if how["warns"] in line]
                            rec["ok"] = rec["ok"] and bool(rec["warning"])
                finally:
                    if mig and mig.poll() is None:
                        mig.kill()
                        mig.wait()
                    for q in qmps:
                        q.close()
                    for d in daemons:
                        d.virsh("destroy", DOMAIN, check=False)
                        d.stop()
        except Exception as e:
            rec["ok"] = False
            rec["error"] = str(e)
        print(f"{name}: {'ok' if rec['ok'] else 'FAILED'}: exit "
              f"{rec.get('exit')}, {rec.get('output', rec.get('error'))}"
              + (f", capabilities {rec['caps']}" if "caps" in rec else ""),
              flush=True)
        recs.append(rec)
    return recs


# Issue 24, item 16: a failure or an abort while the source QEMU is in
# postcopy-device, before the destination acknowledged the package. The
# migration goes through lab/ackgate.py (the source connects to
# 127.0.0.1:GATE_PORT, the destination listens on 127.0.0.2), which cuts
# or holds back that acknowledgement. Case: what the gate does at the
# acknowledgement ("pass": nothing), the virsh domjobabort flags (None: no
# abort) and the source's migration state it is given in (after a second
# there), and the outcome expected: "source" (the migration fails, the
# guest runs on the source, nothing is left on the destination) or
# "recovered" (both sides keep the failed post-copy migration, and
# --postcopy-resume completes it: the guest runs on the destination).
# The last case is the one libvirt always had (an abort in post-copy),
# for its recovery.
GATE_PORT = 49300
PCDEVICE_CASES = {
    "cut-before-ack": ("cut", None, None, "source"),
    "abort-before-ack": ("hold", [], "postcopy-device", "source"),
    "abort-postcopy-before-ack": ("hold", ["--postcopy"], "postcopy-device",
                                  "recovered"),
    "abort-postcopy-after-ack": ("pass", ["--postcopy"], "postcopy-active",
                                 "recovered"),
    # The source's libvirtd restarts in the Perform phase, the destination
    # (-S, never resumed) not having acknowledged the package; with
    # -dst-frozen, the destination's libvirtd is frozen meanwhile (a host
    # that hangs), so that the source reconnects to a QEMU still in
    # postcopy-device, not one that paused once the destination was killed
    "restart-before-ack": ("hold", "restart", "postcopy-device", "source"),
    "restart-before-ack-dst-frozen": ("hold", "restart-dst-frozen",
                                      "postcopy-device", "source"),
}
# The abort kinds that restart the source's libvirtd instead of aborting
RESTARTS = ("restart", "restart-dst-frozen")


def domstate(daemon):
    p = daemon.virsh("domstate", "--reason", DOMAIN, check=False)
    return p.stdout.strip() if p.returncode == 0 else "none"


def settled_domstate(daemon, timeout=60):
    """The domain's state once a restarted daemon settled its migration
    (no longer paused by it), or as it is after @timeout seconds"""
    deadline = time.monotonic() + timeout
    while domstate(daemon).startswith("paused (migrat") and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    return domstate(daemon)


def qemu_state(qmp):
    """(migration status, run state) of a QEMU through the lab's own
    monitor, or None once it is gone"""
    try:
        return (qmp.cmd("query-migrate").get("status"),
                qmp.cmd("query-status")["status"])
    except Exception:
        return None


def postcopy_device_case(topo, args, name, rundir, cache):
    """One case of PCDEVICE_CASES: its record"""
    at_ack, abort, abort_in, expected = PCDEVICE_CASES[name]
    rec = {"campaign": "libvirt-postcopy-device", "case": name,
           "gate": at_ack, "abort": abort, "expected": expected,
           "date": datetime.datetime.now(datetime.timezone.utc)
                   .strftime("%Y-%m-%dT%H:%M:%SZ"),
           "workspace": L.git("rev-parse", "--short=12", "HEAD"),
           "libvirt_series_sha256": L.series_sha256("libvirt"),
           "libvirtd": LIBVIRTD, "qemu": L.QEMU}
    daemons, qmps, procs = [], [], []
    try:
        src, dst = boot(topo, rundir, cache, args, daemons)
        sq = QMP(os.path.join(rundir, "src.qmp"))
        qmps.append(sq)
        rec["answers_before"] = L.guest_answers(topo, rundir)
        gate = topo.run_in(topo.br, [
            "python3", os.path.join(L.TOP, "lab", "ackgate.py"),
            str(GATE_PORT), f"127.0.0.2:{GATE_PORT}", at_ack],
            stdout=subprocess.PIPE, text=True)
        procs.append(gate)
        gate.stdout.readline()
        flags = ["--live", "--postcopy"]
        # Precopy cannot complete before migrate-postcopy, nor postcopy
        # before an abort in postcopy-active. While the acknowledgement is
        # held, postcopy sends all of RAM: under TCG a destination vCPU
        # that faults on a missing page once its paused migration is
        # resumed may hold the BQL, and its monitor answers nothing more
        # (issue 24, item 23)
        slow = ["--postcopy-bandwidth", "8"] \
            if abort_in == "postcopy-active" else []
        mig = subprocess.Popen(
            [RUN, VIRSH, "-q", "-c", src.uri, "migrate"] + flags +
            ["--bandwidth", "32"] + slow +
            ["--migrateuri", f"tcp://127.0.0.1:{GATE_PORT}",
             "--listen-address", "127.0.0.2",
             "--xml", os.path.join(rundir, "dst.xml"), DOMAIN, dst.uri],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(mig)
        L.wait_status(sq, {"active"}, 30)
        time.sleep(0.5)
        src.virsh("migrate-postcopy", DOMAIN)
        # The source's migration states until virsh migrate returns
        states, t0, aborted = [], time.monotonic(), False
        deadline = t0 + args.timeout
        while mig.poll() is None and time.monotonic() < deadline:
            st = qemu_state(sq)
            st = st[0] if st else "gone"
            if not states or states[-1][1] != st:
                states.append((round(time.monotonic() - t0, 3), st))
            if abort is not None and not aborted and st == abort_in and \
                    time.monotonic() - t0 - states[-1][0] > 1:
                if abort == "restart":
                    src.restart()
                    rec["restarted"] = True
                elif abort == "restart-dst-frozen":
                    os.kill(dst.proc.pid, signal.SIGSTOP)
                    try:
                        src.restart()
                        rec["restarted"] = True
                        rec["src_after_restart"] = settled_domstate(src)
                    finally:
                        os.kill(dst.proc.pid, signal.SIGCONT)
                else:
                    p = src.virsh("domjobabort", *abort, DOMAIN,
                                  check=False)
                    rec["domjobabort"] = {"exit": p.returncode,
                                          "output": (p.stdout +
                                                     p.stderr).strip()}
                aborted = True
            time.sleep(0.01)
        rec["source_states"] = states
        if mig.poll() is None:
            raise RuntimeError("virsh migrate did not return")
        rec["virsh_migrate"] = {"exit": mig.returncode,
                                "output": mig.communicate()[0].strip()}
        time.sleep(1)
        if abort in RESTARTS:
            settled_domstate(src)
        rec["after"] = {"src": domstate(src), "dst": domstate(dst),
                        "src_qemu": qemu_state(sq)}
        if expected == "recovered" and \
                "post-copy failed" in rec["after"]["src"] and \
                rec["after"]["dst"] != "none":
            gate.kill()
            p = src.virsh("migrate", *flags, "--postcopy-resume",
                          "--postcopy-bandwidth", "1024",
                          "--migrateuri", f"tcp://127.0.0.1:{GATE_PORT + 1}",
                          "--listen-address", "127.0.0.1",
                          DOMAIN, dst.uri, check=False,
                          timeout=args.timeout)
            rec["recovery"] = {"exit": p.returncode,
                               "output": (p.stdout + p.stderr).strip()}
            time.sleep(1)
            rec["after_recovery"] = {"src": domstate(src),
                                     "dst": domstate(dst),
                                     "src_qemu": qemu_state(sq)}
        final = rec.get("after_recovery", rec["after"])
        running = [s for s in ("src", "dst")
                   if final[s].startswith("running")]
        rec["running"] = running
        rec["answers_after"] = L.guest_answers(topo, rundir)
        if expected == "source":
            rec["ok"] = (rec["virsh_migrate"]["exit"] != 0 and
                         running == ["src"] and final["dst"] == "none" and
                         (abort is None or abort in RESTARTS or
                          rec.get("domjobabort", {}).get("exit") == 0) and
                         rec["answers_after"])
        else:
            rec["ok"] = (rec.get("domjobabort", {}).get("exit") == 0 and
                         rec.get("recovery", {}).get("exit") == 0 and
                         running == ["dst"] and
                         final["src"].startswith("shut off") and
                         rec["answers_after"])
    except Exception as e:
        rec["ok"] = False
        rec["error"] = str(e)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for q in qmps:
            q.close()
        for d in daemons:
            d.virsh("destroy", DOMAIN, check=False)
            d.stop()
    return rec


def postcopy_device(args, out, cases):
    """Each case of @cases (PCDEVICE_CASES) in a topology of its own: its
    record, and a line"""
    recs = []
    for name in cases:
        rundir = os.path.join(out, f"pcdevice-{name}")
        os.makedirs(rundir, exist_ok=True)
        with L.Topology("tuned") as topo:
            rec = postcopy_device_case(topo, args, name, rundir, out)
        print(f"{name}: {'ok' if rec['ok'] else 'FAILED'}: "
              f"abort {rec.get('domjobabort')}, virsh migrate "
              f"{rec.get('virsh_migrate')}, after {rec.get('after')}"
              + (f", recovery {rec['recovery']}, after it "
                 f"{rec['after_recovery']}" if "recovery" in rec else "")
              + (f", error {rec['error']}" if "error" in rec else ""),
              flush=True)
        recs.append(rec)
    return recs
