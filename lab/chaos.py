#!/usr/bin/python3
"""A randomized fault campaign on real guests (issue 24): `make chaos`.

usage: chaos.py [--reps N] [--seed S] [--faults K,...] [--modes M,...]
                [--publish FILE] [--out DIR] [--udp-rate R] [--note TEXT]

Each run boots the lab's guest (lab.py's topology, guest and helpers),
migrates it between two QEMUs over TCP inside the lab's namespace, and
throws one fault at it.  Everything random comes from the run's seed,
which its record keeps: run i of a campaign has seed S + i, and
`chaos.py --seed SEED --reps 1` replays the choices of a run (the
timings of a real machine vary).  Per run, at random:

  mode        precopy or postcopy (migrate-start-postcopy after 1-3 s)
  features    vm-started on/off, netpass on/off, keepalive
              (postcopy-rp-keepalive-period 1000 ms) on/off; the
              destination started with -S (as libvirt does) or not
  fault       kill (SIGKILL), freeze-while (SIGSTOP, SIGCONT after
              0.5-10 s), freeze-for-good, drop-while / drop-for-good
              (nftables drops the migration's packets towards that
              side, 0.5-10 s or for ever), cancel (migrate_cancel),
              pause (migrate-pause); on the source or the destination
  when        during precopy, at switchover (the source's STOP, or
              postcopy's start), during postcopy, at postcopy's end
              (less than 1 MiB of RAM left to send), after completion

The lab then acts as management, with documented actions only (see
Manager), every wait bounded, and checks five invariants from both
QEMUs' QMP events (the `events` capability on), their final state, the
guest's own memory check and its network (see check_invariants).

One JSON record per run goes to runs.jsonl in the results directory
(and, with --publish FILE, to FILE), then a table by fault and outcome;
lab/report.py renders the records of docs/results/chaos.jsonl into
docs/chaos.md (`lab/lab.py report`).

Exit: 0 every invariant held in every run, 1 an invariant failed or a
run could not be carried out, 2 usage.
"""
import argparse
import datetime
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import lab as L
import report

# The migration's connection, and those of the recoveries (each its own)
MIG_PORT, RECOVER_PORT = 4444, 4450

MODES = ("precopy", "postcopy")
FAULTS = ("kill", "freeze-while", "freeze-for-good", "drop-while",
          "drop-for-good", "cancel", "pause")
WHENS = {"precopy": ("precopy", "switchover", "after"),
         "postcopy": ("precopy", "switchover", "postcopy", "postcopy-end",
                      "after")}
KEEPALIVE_MS = 1000
# Faults that lose a side for good: the only ones that may explain a
# guest that no longer runs anywhere
LOSSES = ("kill", "freeze-for-good")

# Management's bounds (seconds)
MANAGE_S = 150          # a run's migration and recovery, at most
PAUSE_AFTER_S = 3       # a source waiting in postcopy-device, then pause
STALL_S = 8             # nothing moved (events, bytes): cancel or pause
STUCK_S = 15            # a destination that never ran, stuck: quit it
TOLERANCE_S = 15        # a QEMU that does not answer, even out of band,
                        # is taken for dead (longer than any freeze-while)
RECOVER_TRIES = 5
RECOVER_WAIT_S = 10     # for a recovery to take before trying again
QMP_S = 5               # any command's answer

TRACE = ["migrate_set_state", "migration_completion*", "postcopy_pause*",
         "migration_watchdog_expired", "source_return_path_thread_*end",
         "loadvm_postcopy_handle_run", "process_incoming_migration_co_end"]

POSTCOPY = ("postcopy-device", "postcopy-active", "postcopy-paused",
            "postcopy-recover-setup", "postcopy-recover")

# A QEMU that crashed or asserted says so in its log
FATAL = re.compile(r"Assertion|core dumped|Aborted|Segmentation fault|"
                   r"Unexpected error|\*\* ERROR|hw_error|Bail out|BUG")
GUEST_FATAL = re.compile(r"Kernel panic|Oops|BUG:|general protection")


def plan(seed, faults, modes=MODES):
    """A run's random choices, always drawn in the same order"""
    rng = random.Random(seed)
    p = {"seed": seed, "mode": rng.choice(modes),
         "features": {"vm-started": rng.random() < 0.5,
                      "netpass": rng.random() < 0.5,
                      "keepalive_ms": rng.choice((0, KEEPALIVE_MS))},
         "dst_S": rng.random() < 0.5,
         "precopy_s": round(rng.uniform(1, 3), 3)}
    kind, side = rng.choice(faults), rng.choice(("src", "dst"))
    when = rng.choice(WHENS[p["mode"]])
    # The delay after the moment: from the source's STOP a precopy
    # switchover lasts about 10 ms here, postcopy's start until the
    # source sees the acknowledgement about 100 ms; postcopy 2-4 s; and
    # its last MiB is sent about 125 ms before its completion starts
    delay = {"precopy": rng.uniform(0, 2500),
             "switchover": rng.uniform(0, 15 if p["mode"] == "precopy"
                                       else 120),
             "postcopy": rng.uniform(0, 2500),
             "postcopy-end": rng.uniform(0, 200),
             "after": rng.uniform(0, 1000)}[when]
    duration = rng.uniform(0.5, 10)
    p["fault"] = {"kind": kind, "side": side, "when": when,
                  "delay_ms": round(delay),
                  "duration_s": (round(duration, 2) if kind.endswith(
                      "-while") else None)}
    if p["mode"] == "precopy":
        del p["precopy_s"]
    return p


class Side:
    """One QEMU as management sees it: its process, its QMP events"""

    def __init__(self, name, vm):
        self.name, self.vm = name, vm
        self.killed = None          # (by, realtime) once the lab killed it
        self.frozen_for_good = None  # realtime of the freeze
        self.unanswered_since = None
        self.cont_sent = False

    def gone(self):
        return self.vm.proc.poll() is not None

    def events(self, name=None):
        return [e for e in list(self.vm.qmp.events)
                if name is None or e["event"] == name]

    def status(self):
        """The migration status of the last MIGRATION event"""
        ev = self.events("MIGRATION")
        return ev[-1]["data"]["status"] if ev else None

    def seen(self, status):
        return any(e["data"]["status"] == status
                   for e in self.events("MIGRATION"))

    def ran(self):
        """Did this side ever resume the guest (a RESUME event)?"""
        return bool(self.events("RESUME"))

    def running(self, initially):
        state = initially
        for e in self.events():
            if e["event"] in ("STOP", "RESUME"):
                state = e["event"] == "RESUME"
        return state

    def answers(self):
        """Does it answer at all? query-yank is out of band: a QEMU
        whose main loop waits (a vCPU on a missing page, under TCG)
        still answers it"""
        try:
            self.vm.qmp.call("query-yank", timeout=1, oob=True)
            return True
        except Exception:
            return False

    def kill(self, by):
        if self.vm.proc.poll() is None:
            self.vm.proc.kill()
            self.vm.proc.wait()
            self.killed = (by, time.time())


def ev_time(e):
    return e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6


class Fault(threading.Thread):
    """The fault of a run, injected from a thread of its own at its
    moment, while management goes on"""

    def __init__(self, run):
        super().__init__(daemon=True)
        self.run_, self.f = run, dict(run.plan["fault"])
        self.abort = threading.Event()
        self.triggered = threading.Event()
        self.done = threading.Event()

    def postcopy_end(self):
        """Is less than 1 MiB of RAM left to send in postcopy-active?"""
        src = self.run_.src
        if src.status() != "postcopy-active":
            return False
        try:
            ram = src.vm.qmp.call("query-migrate", timeout=1).get("ram")
        except Exception:
            return False
        return ram is not None and ram.get("remaining", 1 << 20) < 1 << 20

    def moment_came(self):
        """Wait for the fault's moment; False if it never came (the
        migration ended before it, or the source is gone)"""
        src, when = self.run_.src, self.f["when"]
        deadline = time.monotonic() + MANAGE_S
        if when == "postcopy-end":
            while not self.abort.is_set() and not src.gone() and \
                    time.monotonic() < deadline:
                if self.postcopy_end():
                    return True
                time.sleep(0.02)
            return False
        want = {"precopy": ("MIGRATION", "active"),
                "switchover": ("STOP", None),
                "postcopy": ("MIGRATION", "postcopy-active"),
                "after": ("MIGRATION", "completed")}[when]
        while not self.abort.is_set() and not src.gone() and \
                time.monotonic() < deadline:
            if src.vm.qmp.wait_event(
                    lambda e: (e["event"], e.get("data", {}).get("status"))
                    == want, 0.2, self.run_.migrate_events):
                return True
        return False

    def trigger(self):
        """The moment, then the plan's delay; False if it never came"""
        if not self.moment_came():
            return False
        self.triggered.set()
        return not self.abort.wait(self.f["delay_ms"] / 1000)

    def run(self):
        try:
            if self.trigger():
                self.inject()
            else:
                self.f["injected"] = False
        except Exception as e:
            self.f["error"] = str(e)
        finally:
            self.done.set()

    def inject(self):
        r, f = self.run_, self.f
        side = r.sides[f["side"]]
        kind = f["kind"]
        f["injected"] = True
        f["at_ms"] = r.ms(time.time())
        f["src_status"], f["dst_status"] = (r.src.status(),
                                            r.dst.status())
        f["src_running"] = r.src.running(True)
        if side.gone():
            f["result"] = "side already gone"
            return
        if kind == "kill":
            side.kill("fault")
        elif kind.startswith("freeze"):
            side.vm.proc.send_signal(signal.SIGSTOP)
            if kind == "freeze-for-good":
                side.frozen_for_good = time.time()
            else:
                self.abort.wait(f["duration_s"])
                # (send_signal does nothing once the process is reaped)
                side.vm.proc.send_signal(signal.SIGCONT)
                f["undone_ms"] = r.ms(time.time())
        elif kind.startswith("drop"):
            # Towards the source: what the listening destination sends
            ways = ("dport",) if f["side"] == "dst" else ("sport",)
            L.link_drop(r.topo, MIG_PORT, True, ways)
            if kind == "drop-while":
                self.abort.wait(f["duration_s"])
                L.link_drop(r.topo, MIG_PORT, False)
                f["undone_ms"] = r.ms(time.time())
        else:
            name = "migrate_cancel" if kind == "cancel" else "migrate-pause"
            try:
                side.vm.qmp.call(name, timeout=QMP_S, oob=kind == "pause")
                f["result"] = "accepted"
            except Exception as e:
                f["result"] = str(e)


class Manager:
    """Management, as an operator or libvirt following the README and
    docs/devel/migration (postcopy.rst, vm-started.rst):

    - a -S destination is continued once the source reports
      postcopy-active, or completion (precopy: once the destination
      completed too);
    - a precopy failure: the source runs again by itself; a destination
      that never ran is quit; a source left stopped is continued only if
      the destination never ran;
    - postcopy-paused on both sides: migrate-recover on the destination,
      migrate with resume on the source (RECOVER_TRIES);
      a destination still in postcopy-active is paused first (out of
      band, as a blocked main loop needs);
    - a source in postcopy-device for PAUSE_AFTER_S: migrate-pause;
    - a source paused whose destination is gone or failed without
      running the guest: make sure it never will (quit it), then
      migrate_cancel on the source;
    - nothing moving for STALL_S: precopy is cancelled, postcopy paused;
    - a destination that never ran, stuck for STUCK_S (its source gone,
      or the source paused before it had the package): quit;
    - a QEMU that answers nothing, not even out of band, for
      TOLERANCE_S: taken for dead and killed (fenced);
    - a source that completed whose destination never ran and is gone:
      the source is continued (libvirt's Finish failing).
    Management knows only what QMP and the processes tell it (events,
    states, answers, exits), never which fault the lab threw.  Each
    step is one action or a wait, or says why nothing is left to do."""

    def __init__(self, run):
        self.r = run
        self.actions = []
        self.tried = {}
        self.recoveries = 0
        self.last_recovery = None
        self.uri = None
        self.last_pause = {}
        self.progress_key = None
        self.progress_at = time.monotonic()
        self.device_since = None
        self.postcopy_started = False

    def act(self, what, fn):
        t = time.time()
        try:
            out = fn()
            result = "ok" if out in (None, {}, True) else str(out)
        except Exception as e:
            result = f"error: {e}"
        self.actions.append(f"+{self.r.ms(t)} {what}: {result}")
        return result

    def once(self, key, what, fn):
        """Act once for @key; then None while its effect may still come
        (an accepted command, for 5 s), else what it gave"""
        if key not in self.tried:
            self.tried[key] = (time.monotonic(), self.act(what, fn))
            return None
        at, result = self.tried[key]
        if result == "ok" and time.monotonic() - at < 5:
            return None
        return result

    def qmp(self, side, name, oob=False, **args):
        return lambda: side.vm.qmp.call(name, args, timeout=QMP_S, oob=oob)

    def quit(self, side, why):
        self.act(f"quit {side.name} ({why})", lambda: side.kill("management"))

    def stalled(self):
        return time.monotonic() - self.progress_at

    def note_progress(self):
        r = self.r
        transferred = None
        if not r.src.gone() and r.src.status() in (
                "active", "device", "postcopy-active", "postcopy-recover"):
            try:
                transferred = (r.src.vm.qmp.call(
                    "query-migrate", timeout=1).get("ram") or {}).get(
                        "transferred")
            except Exception:
                pass
        key = (len(r.src.vm.qmp.events), len(r.dst.vm.qmp.events),
               transferred, len(self.actions), r.src.gone(), r.dst.gone())
        if key != self.progress_key:
            self.progress_key, self.progress_at = key, time.monotonic()

    def fence(self):
        """Kill a side that has answered nothing for TOLERANCE_S"""
        for side in (self.r.src, self.r.dst):
            if side.gone():
                continue
            if side.answers():
                side.unanswered_since = None
            elif side.unanswered_since is None:
                side.unanswered_since = time.monotonic()
            elif time.monotonic() - side.unanswered_since > TOLERANCE_S:
                self.quit(side, f"answers nothing for {TOLERANCE_S} s")

    def step(self):
        """One decision: why nothing is left to do, or None"""
        self.note_progress()
        why = self.decide()
        if why is None and self.stalled() > 2:
            self.fence()
        return why

    def decide(self):
        r = self.r
        s, d = r.src, r.dst
        ss = s.status()
        if s.gone() and not s.seen("completed"):
            return self.source_lost()
        if ss == "completed" or s.gone():
            return self.to_destination()
        if ss in ("failed", "cancelled"):
            return self.source_failed()
        if ss == "postcopy-paused":
            return self.source_paused()
        if ss == "postcopy-device":
            self.device_since = self.device_since or time.monotonic()
            if time.monotonic() - self.device_since > PAUSE_AFTER_S:
                self.device_since = None
                self.act("migrate-pause src (waits in postcopy-device)",
                         self.qmp(s, "migrate-pause", oob=True))
            return None
        self.device_since = None
        if ss in ("postcopy-active", "postcopy-recover",
                  "postcopy-recover-setup"):
            if r.plan["dst_S"] and ss == "postcopy-active" and \
                    not d.cont_sent and not d.gone():
                d.cont_sent = True
                self.act("cont dst (source in postcopy-active)",
                         self.qmp(d, "cont"))
            elif self.stalled() > STALL_S:
                self.pause_both("nothing moves")
            return None
        # setup, active, device, pre-switchover, cancelling: precopy
        if r.plan["mode"] == "postcopy" and ss == "active" and \
                not self.postcopy_started and \
                time.monotonic() - r.migrate_at >= r.plan["precopy_s"]:
            self.postcopy_started = True
            self.act("migrate-start-postcopy src",
                     self.qmp(s, "migrate-start-postcopy"))
        elif self.stalled() > STALL_S and ss != "cancelling":
            self.once("cancel-stalled", "migrate_cancel src (nothing "
                      "moves)", self.qmp(s, "migrate_cancel"))
        return None

    def pause_both(self, why):
        """migrate-pause on each side not paused yet, at most every 5 s"""
        for side in (self.r.src, self.r.dst):
            last = self.last_pause.get(side.name, 0)
            if not side.gone() and side.status() in (
                    "postcopy-active", "postcopy-recover",
                    "postcopy-recover-setup") and \
                    time.monotonic() - last > 5:
                self.last_pause[side.name] = time.monotonic()
                self.act(f"migrate-pause {side.name} ({why})",
                         self.qmp(side, "migrate-pause", oob=True))

    def source_lost(self):
        """The source is gone before completing its migration"""
        d = self.r.dst
        if d.gone():
            return "both sides gone"
        ds = d.status()
        if ds == "completed":
            return self.to_destination()
        if ds in POSTCOPY:
            return ("source gone in postcopy: the destination cannot "
                    "complete")
        if d.ran():
            return "source gone; the destination ran"
        if ds == "failed" or self.stalled() > STUCK_S:
            self.quit(d, f"its migration {ds}, the source is gone")
        return None

    def to_destination(self):
        """The source completed (or is gone after completing): the
        destination takes the guest, or gives it back"""
        r = self.r
        s, d = r.src, r.dst
        ds = d.status()
        if d.gone():
            if d.ran():
                return "the destination had the guest and is gone"
            if s.gone():
                return "both sides gone"
            if not s.running(True):
                if self.once("cont-src", "cont src (the destination "
                             "never ran and is gone)",
                             self.qmp(s, "cont")) is None:
                    return None
                return "the source does not run again"
            return "the source runs the guest again"
        if d.ran():
            return "the destination runs the guest" \
                if ds == "completed" else None
        if ds == "failed" or (ds != "completed" and
                              self.stalled() > STUCK_S):
            self.quit(d, f"its migration {ds}, never ran")
        elif ds == "completed" and r.plan["dst_S"] and not d.cont_sent:
            d.cont_sent = True
            self.act("cont dst (the migration completed)",
                     self.qmp(d, "cont"))
        return None

    def source_failed(self):
        r = self.r
        s, d = r.src, r.dst
        if d.ran():
            return ("the destination ran the guest" if not d.gone()
                    else "the destination ran the guest and is gone")
        if not d.gone():
            self.quit(d, f"the migration {s.status()}, it never ran")
            return None
        if not s.running(True):
            if self.once("cont-src", "cont src (stopped after a failure; "
                         "the destination never ran)",
                         self.qmp(s, "cont")) is None:
                return None
            return "the source does not run again"
        return "the source runs the guest again"

    def source_paused(self):
        r = self.r
        s, d = r.src, r.dst
        ds = d.status()
        if d.gone() or ds == "failed":
            if d.ran():
                return ("the destination ran the guest and is "
                        + ("gone" if d.gone() else "failed"))
            if not d.gone():
                self.quit(d, f"{ds}, it never ran; before cancelling")
                return None
            if self.once("cancel-paused", "migrate_cancel src (paused, "
                         "the destination never ran and is gone)",
                         self.qmp(s, "migrate_cancel")) is None:
                return None
            return "the source cannot cancel (the destination " \
                   "acknowledged) and the destination is gone"
        waited = not self.last_recovery or \
            time.monotonic() - self.last_recovery > RECOVER_WAIT_S
        if ds in ("postcopy-paused", "postcopy-recover-setup"):
            if not waited:
                return None
            if self.recoveries >= RECOVER_TRIES:
                return f"not recovered after {RECOVER_TRIES} tries"
            self.recover(ds == "postcopy-paused")
            return None
        if ds in ("postcopy-active", "postcopy-recover"):
            if ds == "postcopy-active" or waited:
                self.pause_both("the source paused")
            return None
        # The destination never reached postcopy: it loads the package,
        # or never got it
        if not d.ran() and self.stalled() > STUCK_S:
            self.quit(d, f"{ds}, stuck, never ran")
        return None

    def recover(self, new):
        """migrate-recover on the destination (@new; otherwise it
        listens already, on the last URI), migrate resume on the
        source"""
        r = self.r
        self.recoveries += 1
        self.last_recovery = time.monotonic()
        if new:
            self.uri = f"tcp:127.0.0.1:{RECOVER_PORT + self.recoveries}"
            if self.act(f"migrate-recover dst {self.uri}", self.qmp(
                    r.dst, "migrate-recover", oob=True,
                    uri=self.uri)) != "ok":
                return
        self.act(f"migrate resume src {self.uri}", self.qmp(
            r.src, "migrate", uri=self.uri, resume=True))

    def run(self, fault):
        """Decide until settled for 1 s since the fault is over,
        MANAGE_S at most; a fault whose moment has not come 3 s after
        the run settled never will (a migration that ended before it)"""
        deadline = self.r.migrate_at + MANAGE_S
        settled_at = over_at = None
        while time.monotonic() < deadline:
            if over_at is None and fault.done.is_set():
                over_at = time.monotonic()
            why = self.step()
            now = time.monotonic()
            settled_at = (settled_at or now) if why else None
            if settled_at and over_at and \
                    now - max(settled_at, over_at) >= 1:
                return why
            if settled_at and not fault.triggered.is_set() and \
                    now - settled_at > 3:
                fault.abort.set()
            time.sleep(0.05)
        return None


class Run:
    """One run: boot, migrate, fault, manage, check"""

    def __init__(self, topo, args, env, plan, rundir):
        self.topo, self.args, self.env = topo, args, env
        self.plan, self.rundir = plan, rundir
        self.sides = {}
        self.t0 = None
        self.migrate_at = None
        self.migrate_events = 0

    @property
    def src(self):
        return self.sides["src"]

    @property
    def dst(self):
        return self.sides["dst"]

    def ms(self, t):
        """Realtime @t in ms from the migrate command"""
        return round((t - self.t0) * 1000) if self.t0 else None

    def start(self):
        a, p = self.args, self.plan
        for name, extra in (("src", []),
                            ("dst", ["-incoming", "defer"] +
                             (["-S"] if p["dst_S"] else []))):
            vm = L.start_vm(self.topo, self.rundir, name, f"tap-{name}",
                            extra, a, oob=True)
            self.sides[name] = Side(name, vm)
        if not L.wait_console(self.rundir, "src", L.READY, 120):
            raise RuntimeError("guest did not boot (see src.console)")
        if not L.guest_answers(self.topo, self.rundir):
            raise RuntimeError("guest does not answer before migration")
        f = p["features"]
        caps = ["events", "return-path"] + \
            (["postcopy-ram"] if p["mode"] == "postcopy" else []) + \
            [c for c in ("vm-started", "netpass") if f[c]]
        for s in self.sides.values():
            s.vm.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": c, "state": True} for c in caps])
        # Precopy lasts about 3 s, postcopy 2-4 s: long enough to land
        # faults in them (the guest's vCPU waits meanwhile for the pages
        # it touches)
        params = {"max-bandwidth": 32 << 20, "downtime-limit": 300,
                  "max-postcopy-bandwidth": 8 << 20}
        if f["keepalive_ms"]:
            params["postcopy-rp-keepalive-period"] = f["keepalive_ms"]
        self.src.vm.qmp.cmd("migrate-set-parameters", **params)
        caps_src, params_src = L.settings(self.src.vm, params)
        caps_dst, params_dst = L.settings(self.dst.vm, params)
        return {"caps": {"src": caps_src, "dst": caps_dst},
                "params": {"src": params_src, "dst": params_dst}}

    def execute(self):
        """The run's record (everything but the crash check)"""
        p = self.plan
        rec = {"campaign": "chaos", "seed": p["seed"], "mode": p["mode"],
               "features": p["features"], "dst_S": p["dst_S"],
               "fault": dict(p["fault"]),
               "date": datetime.datetime.now(datetime.timezone.utc)
                       .strftime("%Y-%m-%dT%H:%M:%SZ")}
        if "precopy_s" in p:
            rec["precopy_s"] = p["precopy_s"]
        rec["setup"] = dict(self.env, management={
            "manage_s": MANAGE_S, "pause_after_s": PAUSE_AFTER_S,
            "stall_s": STALL_S, "stuck_s": STUCK_S,
            "tolerance_s": TOLERANCE_S, "recover_tries": RECOVER_TRIES,
            "exit_on_error": False, "channel": "tcp over the namespace's "
            "loopback"}, traffic={"kind": "udp", "rate": self.args.udp_rate})
        rec["setup"].update(self.start())
        self.dst.vm.qmp.cmd("migrate-incoming", uri=f"tcp:127.0.0.1:"
                            f"{MIG_PORT}", **{"exit-on-error": False})
        traffic = None
        if self.args.udp_rate:
            traffic = self.topo.run_in(self.topo.th, L.traffic_cmd(
                "udp", self.args.udp_rate, self.args.udp_rate * 600,
                os.path.join(self.rundir, "traffic.rec"), 0),
                stdout=subprocess.DEVNULL)
        fault = Fault(self)
        manager = Manager(self)
        self.console_at = {"src": L.console_lines(self.rundir, "src"),
                           "dst": 0}
        try:
            self.migrate_events = len(self.src.vm.qmp.events)
            fault.start()
            self.t0, self.migrate_at = time.time(), time.monotonic()
            self.src.vm.qmp.cmd("migrate", uri=f"tcp:127.0.0.1:{MIG_PORT}")
            settled = manager.run(fault)
        finally:
            fault.abort.set()
            fault.join(15)
            if traffic:
                traffic.kill()
                traffic.wait()
        rec["fault"].update(fault.f)
        rec["actions"] = manager.actions
        rec["settled"] = settled or f"not settled within {MANAGE_S} s"
        # A side frozen for good is a host that hung: the lab reaps it
        for s in self.sides.values():
            if s.frozen_for_good and not s.gone():
                s.kill("lab (frozen for good)")
        rec["final"] = {n: self.final_state(s)
                        for n, s in self.sides.items()}
        runs = [n for n, f in rec["final"].items() if f["runs_guest"]]
        rec["outcome"] = {0: "none", 2: "both"}.get(len(runs),
                                                    runs and runs[0])
        rec["guest"] = {n: self.guest_check(n) for n in runs}
        return rec

    def final_state(self, side):
        out = {"alive": not side.gone(), "killed_by": side.killed and
               side.killed[0], "ran": side.ran()}
        if side.gone():
            out["runs_guest"] = False
            return out
        st = L.query(side.vm, "query-status", QMP_S)
        mig = L.query(side.vm, "query-migrate", QMP_S) or {}
        out["runstate"] = st["status"] if st else "no answer"
        out["status"] = mig.get("status", side.status())
        for k in ("destination-started", "error-desc"):
            if k in mig:
                out[k] = mig[k]
        # A destination whose postcopy did not finish is stuck, whatever
        # its run state says: it waits for pages that will not come
        out["runs_guest"] = bool(st and st["running"] and (
            side.name == "src" and out["status"] not in POSTCOPY or
            side.name == "dst" and out["status"] == "completed"))
        return out

    def guest_check(self, name):
        """The running copy: a dirtymem check after the migration (the
        guest checks all its pages every 2 s), none wrong since it
        started, no guest crash, and its network answering"""
        at = L.console_lines(self.rundir, name)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ok, wrong, _ = L.console_checks(self.rundir, name, at)
            if ok + wrong:
                break
            time.sleep(0.2)
        ok, wrong, _ = L.console_checks(self.rundir, name,
                                        self.console_at[name])
        lines = console_text(self.rundir, name, self.console_at[name])
        return {"checks_after": L.console_checks(self.rundir, name, at)[0],
                "ok": ok, "wrong": wrong,
                "guest_crash": [ln for ln in lines
                                if GUEST_FATAL.search(ln)][:5],
                "answers": L.guest_answers(self.topo, self.rundir, 20)}

    def stop(self):
        """Quit the QEMUs (SIGTERM; SIGKILL after 10 s): how each ended,
        {name: {"code": exit status, "how": ...}}"""
        out = {}
        for n, s in self.sides.items():
            p = s.vm.proc
            how = ("killed by " + s.killed[0]) if s.killed else "by itself"
            if p.poll() is None:
                how = "quit (SIGTERM)"
                if s.frozen_for_good:
                    s.kill("lab (frozen for good)")
                    how = "killed by lab (frozen for good)"
                else:
                    p.send_signal(signal.SIGCONT)
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        s.kill("lab (did not quit in 10 s)")
                        how = "did not quit on SIGTERM in 10 s"
            out[n] = {"code": p.returncode, "how": how}
            s.vm.qmp.close()
        return out


def console_text(rundir, name, after_line):
    try:
        with open(os.path.join(rundir, f"{name}.console"),
                  errors="replace") as f:
            return f.read().splitlines()[after_line:]
    except FileNotFoundError:
        return []


def timeline(run, side):
    """A side's events, ms from the migrate command; MIGRATION_PASS and
    the NIC's filter events counted, not listed"""
    out, passes = [], 0
    for e in side.vm.qmp.events:
        if e["event"] == "MIGRATION_PASS":
            passes += 1
        elif e["event"] != "NIC_RX_FILTER_CHANGED":
            st = e.get("data", {}).get("status")
            out.append(f"{run.ms(ev_time(e))} {e['event']}"
                       + (f" {st}" if st else ""))
    if side.frozen_for_good:
        out.append(f"{run.ms(side.frozen_for_good)} frozen for good")
    if side.killed:
        out.append(f"{run.ms(side.killed[1])} killed by {side.killed[0]}")
    return {"events": out, "passes": passes}


def running_intervals(run, side, initially, end):
    """When a side ran the guest, by its STOP and RESUME events (a kill
    or a freeze for good ends it): [(from, to)], realtime"""
    out, since = [], (float("-inf") if initially else None)
    stops = [t for t in (side.killed and side.killed[1],
                         side.frozen_for_good) if t]
    for e in side.vm.qmp.events:
        if e["event"] == "RESUME" and since is None:
            since = ev_time(e)
        elif e["event"] == "STOP" and since is not None:
            out.append((since, ev_time(e)))
            since = None
    if since is not None:
        out.append((since, min(stops + [end])))
    return out


def log_lines(rundir, name):
    try:
        with open(os.path.join(rundir, f"{name}.log"),
                  errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def explain_loss(rec, run):
    """A documented reason for a run that ends with no copy running, or
    None.  Only a side lost for good (killed, frozen for good) loses
    the guest, and only when that side held what the other lacked:
    - the source, before its migration completed (precopy: the only
      whole copy; postcopy: pages the destination does not have yet);
    - the destination, once it ran the guest, or once the source saw
      it acknowledge the postcopy package (cancel is refused from then
      on: postcopy.rst), or after the migration completed."""
    f = rec["fault"]
    if f["kind"] not in LOSSES or not f.get("injected") or \
            f.get("result") == "side already gone":
        return None
    t = run.t0 + f["at_ms"] / 1000
    src, dst = run.src, run.dst

    def before(side, pred):
        return any(pred(e) and ev_time(e) < t for e in side.vm.qmp.events)

    def status(s):
        return lambda e: e["event"] == "MIGRATION" and \
            e["data"]["status"] == s
    completed = before(src, status("completed"))
    if f["side"] == "src":
        if completed:
            return None
        if before(src, status("postcopy-device")) or \
                before(src, status("postcopy-active")):
            return ("source lost in postcopy: the destination lacks "
                    "pages only the source had (postcopy's documented "
                    "loss)")
        return "source lost before the migration completed: the only " \
               "whole copy"
    if before(dst, lambda e: e["event"] == "RESUME") or completed and \
            dst.ran():
        return "destination lost after it ran the guest"
    if before(src, status("postcopy-active")):
        return ("destination lost after the source saw its "
                "acknowledgement: the source must not resume "
                "(postcopy.rst)")
    return None


def check_invariants(rec, run, end, exits):
    """The five invariants: (passed, evidence) each"""
    src, dst = run.src, run.dst
    inv, evidence = {}, {}
    # 1. No RESUME of the source after the destination's first
    first = [ev_time(e) for e in dst.events("RESUME")][:1]
    late = [run.ms(ev_time(e)) for e in src.events("RESUME")
            if first and ev_time(e) > first[0]]
    inv["no_source_resume_after_destination"] = not late
    if late:
        evidence["source_resumed_ms"] = late
        evidence["destination_first_resume_ms"] = run.ms(first[0])
    # 2. Never two copies running: the timelines, and the end
    overlap = [(run.ms(max(a, c)), run.ms(min(b, d)))
               for a, b in running_intervals(run, src, True, end)
               for c, d in running_intervals(run, dst, False, end)
               if min(b, d) > max(a, c)]
    both = all(f.get("runstate") == "running" for f in rec["final"].values())
    inv["one_copy_running"] = not overlap and not both
    if both:
        evidence["both_runstates_running"] = True
    if overlap:
        evidence["both_running_ms"] = overlap
    # 3. The running copy: memory intact, network answering
    g = rec["guest"]
    inv["guest_intact"] = (all(
        c["checks_after"] > 0 and c["wrong"] == 0 and c["answers"] and
        not c["guest_crash"] for c in g.values()) if g else None)
    # 4. No crash or assertion: exits the lab did not cause, fatal lines
    crash = []
    for n, side in run.sides.items():
        code, how = exits[n]["code"], exits[n]["how"]
        # (a QEMU whose main loop waits, under TCG, on a page that will
        # never come cannot quit: a hang, counted apart as quit_hung)
        if how.startswith("killed") or how.startswith("did not quit"):
            pass
        elif how != "quit (SIGTERM)" or code != 0:
            crash.append(f"{n} {how}, exit status {code}" + (
                f" (signal {signal.Signals(-code).name})" if code and
                code < 0 else ""))
        for ln in log_lines(run.rundir, n):
            if FATAL.search(ln):
                crash.append(f"{n}.log: {ln.strip()}")
    inv["no_crash"] = not crash
    if crash:
        evidence["crash"] = crash[:10]
    # 5. No copy running: a documented case, named
    rec["explanation"] = None
    if rec["outcome"] == "none":
        rec["explanation"] = explain_loss(rec, run)
        inv["loss_explained"] = rec["explanation"] is not None
    else:
        inv["loss_explained"] = None
    rec["invariants"] = inv
    rec["evidence"] = evidence
    rec["ok"] = all(v is not False for v in inv.values())


def one_run(args, env, p, rundir):
    os.makedirs(rundir, exist_ok=True)
    rec = None
    run = None
    with L.Topology("default") as topo:
        run = Run(topo, args, env, p, rundir)
        try:
            rec = run.execute()
        except Exception as e:
            rec = {"campaign": "chaos", "seed": p["seed"],
                   "mode": p["mode"], "features": p["features"],
                   "dst_S": p["dst_S"], "fault": p["fault"],
                   "setup": env, "error": f"{type(e).__name__}: {e}",
                   "ok": False}
        finally:
            end = time.time()
            exits = run.stop() if run.sides else {}
    if "error" in rec:
        return rec
    rec["exits"] = exits
    rec["quit_hung"] = [n for n, e in exits.items()
                        if e["how"].startswith("did not quit")]
    rec["timeline"] = {n: timeline(run, s) for n, s in run.sides.items()}
    rec["qemu_messages"] = {
        n: [ln.split(" ", 1)[-1] for ln in log_lines(rundir, n)
            if "qemu-system-x86_64:" in ln][:12] for n in run.sides}
    check_invariants(rec, run, end, exits)
    return rec


def run_line(i, r):
    f = r["fault"]
    feats = ",".join(k for k in ("vm-started", "netpass")
                     if r["features"][k]) + \
        (",keepalive" if r["features"]["keepalive_ms"] else "")
    head = (f"#{i} seed {r['seed']}: {r['mode']} [{feats or '-'}"
            f"{', -S' if r['dst_S'] else ''}] {f['kind']} {f['side']} "
            f"at {f['when']}")
    if "error" in r:
        return f"{head}: RUN FAILED: {r['error']}"
    failed = [k for k, v in r["invariants"].items() if v is False]
    return (f"{head} (landed {report.chaos_landed(r)}): runs "
            f"{r['outcome']}"
            + (f" ({r['explanation']})" if r.get("explanation") else "")
            + (f" -- INVARIANT FAILED: {', '.join(failed)}" if failed
               else ""))


def build_hash():
    h = hashlib.sha256()
    with open(L.QEMU, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser(description="a randomized fault "
                                 "campaign (see the docstring)")
    ap.add_argument("--reps", type=int, default=10, help="runs")
    ap.add_argument("--seed", type=int, default=None,
                    help="the first run's seed (default: at random); "
                    "run i has SEED + i")
    ap.add_argument("--faults", default=",".join(FAULTS),
                    help="comma list of: " + ", ".join(FAULTS))
    ap.add_argument("--modes", default=",".join(MODES),
                    help="comma list of: " + ", ".join(MODES))
    ap.add_argument("--udp-rate", type=int, default=500,
                    help="datagrams/s to the guest during each run (0: "
                    "none), so that netpass has frames to carry")
    ap.add_argument("--out", default=None, help="results directory")
    ap.add_argument("--publish", metavar="FILE",
                    help="also append the records to FILE (docs/results/)")
    ap.add_argument("--note", default=None,
                    help="a remark kept in every record")
    ap.add_argument("--mem", type=int, default=256, help="guest MiB")
    args = ap.parse_args()
    faults, modes = args.faults.split(","), args.modes.split(",")
    if not set(faults) <= set(FAULTS) or not set(modes) <= set(MODES) \
            or args.reps < 1:
        ap.error(f"--faults {args.faults} / --modes {args.modes} / "
                 f"--reps {args.reps}")
    if os.geteuid() != 0:
        sys.exit("chaos.py: needs root (network namespaces, TAP)")
    signal.signal(signal.SIGTERM, L.stop_on_term)
    # What lab.py's guest and environment() take
    args.dirty_mib, args.dirty_pages = 64, 2000
    # The trace events that explain a run's end (RUNDIR/{src,dst}.trace)
    args.dump, args.trace = False, TRACE
    seed = args.seed if args.seed is not None else \
        random.SystemRandom().randrange(1 << 31)
    out = L.results_dir(args)
    env = L.environment(args)
    env["qemu_build"] = {"dir": L.BUILD, "sha256": build_hash()}
    env["campaign_seed"] = seed
    print(f"chaos: {args.reps} runs from seed {seed} ({L.QEMU}); "
          f"records in {out}", flush=True)
    recs = []
    files = L.record_files(args, out)
    try:
        for i in range(args.reps):
            p = plan(seed + i, faults, modes)
            rd = os.path.join(out, f"chaos-{i:03d}-{seed + i}")
            t = time.monotonic()
            r = one_run(args, env, p, rd)
            r["rep"], r["run_s"] = i, round(time.monotonic() - t, 1)
            r["rundir"] = rd
            recs.append(r)
            L.write_record(files, r)
            print(run_line(i, r) + f" [{r['run_s']} s]", flush=True)
    finally:
        for f in files:
            f.close()
    print()
    print(report.chaos_table(recs, markdown=False))
    bad = [r for r in recs if not r.get("ok")]
    for r in bad:
        print(f"replay: lab/chaos.py --seed {r['seed']} --reps 1   ("
              + ", ".join(report.chaos_failed(r)) + f"; {r['rundir']})")
    print(f"records: {os.path.join(out, 'runs.jsonl')}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
