"""The lab's published figures, regenerated from the committed records.

Reads docs/results/*.jsonl (one JSON record per migration, written by
lab.py --publish) and writes, byte for byte the same every time:

  - docs/figures.md, between the "lab-report" markers: the setup of the
    runs and every table of figures;
  - patches/netpass/cover.txt and patches/vm-started/cover.txt, between
    the same markers: the figures each cover letter quotes, as plain
    text;
  - docs/figures/*.png: the plots;
  - docs/chaos.md: the fault campaign's tables (chaos.jsonl).

With check=True nothing is written: the exit status says whether the
committed files are what the records give.

Files: bench.jsonl (netpass off and on: UDP loss by place, TCP stalls,
downtime), downtime.jsonl (vm-started: reported against true downtime),
faults.jsonl (scenario 4: faults at the start of postcopy),
linkfail.jsonl (scenario 5: a link that dies silently in postcopy),
faults-keepalive.jsonl (scenario 4's frozen destination, keepalive on),
matrix.jsonl (issue 11's matrix: UDP to the guest and to the segment's
broadcast address, 2k and 5k/s), libvirt.jsonl (issue 13: virsh migrate
between two libvirt daemons), chaos.jsonl (issue 24: the randomized
fault campaign, lab/chaos.py), flood.jsonl, capacity.jsonl,
pacing.jsonl (an experiment on a build that
is not the series, named in its records' setup.note).
"""
import io
import json
import os
import random
import re
import statistics
import sys
import textwrap

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(TOP, "docs", "results")
FIGURES = os.path.join(TOP, "docs", "figures")
README = os.path.join(TOP, "docs", "figures.md")
COVER = os.path.join(TOP, "patches", "netpass", "cover.txt")
VM_COVER = os.path.join(TOP, "patches", "vm-started", "cover.txt")
LV_COVER = os.path.join(TOP, "patches", "libvirt", "cover.txt")
CHAOS_MD = os.path.join(TOP, "docs", "chaos.md")
BEGIN = "<!-- lab-report: begin (lab/lab.py report writes this part " \
        "from docs/results/; do not edit) -->"
END = "<!-- lab-report: end -->"
COVER_BEGIN = "[lab figures: begin, from docs/results/ by lab/lab.py report]"
COVER_END = "[lab figures: end]"

MODES = ("precopy", "postcopy")
PROFILES = ("default", "tuned")


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(values):
    values = list(values)
    return statistics.median(values) if values else None


def pct(values, p):
    """The p-th percentile, nearest rank on the sorted values."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))]


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:.{digits}f}"


def netpass_on(r):
    return "netpass" in r["features"].split("+")


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def text_table(head, rows):
    cells = [head] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths))
                     .rstrip() for r in cells)


def provenance(recs, name):
    """Where a campaign's figures come from: its file, commit and series."""
    return (f"records: {name}, workspace "
            f"{distinct(recs, lambda r: r['setup']['workspace'])}, series "
            f"{distinct(recs, lambda r: r['setup']['series_sha256'][:16])}")


def distinct(recs, get):
    """The values a setting takes over the records, in a stable order."""
    seen = []
    for r in recs:
        try:
            v = get(r)
        except (KeyError, TypeError):
            continue
        v = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) \
            else str(v)
        if v not in seen:
            seen.append(v)
    return " / ".join(seen) if seen else "-"


def setup_table(recs, files):
    def s(*keys):
        return lambda r: _dig(r["setup"], keys)
    dates = sorted(r["date"] for r in recs if "date" in r)
    host = distinct(recs, lambda r: "{cpu}, {cores} cores, {mem} GiB, "
                    "Linux {kernel}".format(
                        mem=round(r["setup"]["host"]["mem_mib"] / 1024),
                        **r["setup"]["host"]))
    rows = [
        ("host", host),
        ("accelerator", distinct(recs, s("accel")).upper()),
        ("QEMU", distinct(recs, s("qemu")) + ", machine " +
         distinct(recs, s("machine"))),
        ("series (sha256 of the patches, first 16)",
         distinct(recs, s("series_sha256"))),
        ("workspace commit", distinct(recs, s("workspace"))),
        ("guest", distinct(recs, lambda r: "Debian {kernel}, {vcpus} "
                           "vCPU, {mem_mib} MiB, dirtying {dirty}".format(
                               **r["setup"]["guest"]))),
        ("profile default", _profile(recs, "default")),
        ("profile tuned", _profile(recs, "tuned")),
        ("capabilities on", per_point(recs, lambda r: _caps(r))),
        ("parameters set (source; the destination sets "
         "netpass-max-bytes too)", per_point(
             recs, lambda r: ", ".join(
                 f"{k} {v}" for k, v in r["setup"]["params"]["src"].items()))),
        ("traffic", distinct(recs, lambda r: "{kind} at {rate}/s, {seconds:g} "
                             "s per migration, migrating after {warmup_s:g} "
                             "s, {drain_ms} ms for late answers".format(
                                 **r["setup"]["traffic"]))),
        ("migration channel", "unix socket, both QEMUs on this host"),
        ("runs", f"{len(recs)} migrations, {dates[0][:10]} to "
                 f"{dates[-1][:10]}, in " + ", ".join(files)),
    ]
    return md_table(("setting", "value"), rows)


def _caps(r):
    caps = r["setup"]["caps"]
    if caps["src"] != caps["dst"]:
        return "source: {}; destination: {}".format(
            ", ".join(caps["src"]) or "none", ", ".join(caps["dst"]) or
            "none")
    return ", ".join(caps["src"]) or "none (both sides)"


def per_point(recs, get):
    """A setting per mode and netpass off/on, as "mode, netpass: value"."""
    out = []
    for mode in MODES:
        for on in (False, True):
            rs = [r for r in recs if r["mode"] == mode and
                  netpass_on(r) == on]
            if rs:
                out.append(f"{mode}, netpass {'on' if on else 'off'}: "
                           + distinct(rs, get))
    return "; ".join(out)


def _dig(d, keys):
    for k in keys:
        d = d[k]
    return d


def _profile(recs, profile):
    rs = [r for r in recs if r.get("profile") == profile]
    if not rs:
        return "-"
    return ("guest socket receive buffer " +
            distinct(rs, lambda r: f"{r['setup']['guest_rcvbuf']} bytes") +
            ", TAP queue " +
            distinct(rs, lambda r: f"{r['setup']['tap_qlen']} frames"))


def points(recs, traffic):
    rs = [r for r in recs if r["traffic"] == traffic]
    for profile in PROFILES:
        for mode in MODES:
            for on in (False, True):
                sel = [r for r in rs if r["profile"] == profile and
                       r["mode"] == mode and netpass_on(r) == on]
                if sel:
                    yield profile, mode, on, sel


def udp_rows(recs):
    rows = []
    recs = [r for r in recs if r.get("to", "guest") == "guest"]
    for profile, mode, on, rs in points(recs, "udp"):
        ok = [r for r in rs if r.get("ok")]
        place = lambda k: med(r["loss"][k] for r in ok)  # noqa: E731
        outside = [r["lost_before"] + r["lost_after"] for r in ok]
        lw = [r["lost_window"] for r in ok]
        rows.append({
            "profile": profile, "mode": mode, "on": on, "ok": len(ok),
            "failed": len(rs) - len(ok),
            "lost_med": med(r["lost"] for r in ok),
            "window_med": med(lw), "window_max": max(lw, default=None),
            "outside_runs": sum(x > 0 for x in outside),
            "outside_med": med(outside),
            "host_src": place("host_source"),
            "host_dst": place("host_dst_tap"),
            "guest": med(r["loss"]["guest_socket"] +
                         r["loss"]["guest_echo"] for r in ok),
            "back": place("way_back"),
            "host_zero": sum(r["loss"]["host_source"] +
                             r["loss"]["host_dst_tap"] == 0 for r in ok),
            "reordered": max((r["reordered"] for r in ok), default=None),
            "dups": max((max(r["duplicated"], r["guest_dupes"])
                         for r in ok), default=None),
            "blackout": med(r["blackout_ms"] for r in ok),
        })
    return rows


def udp_table(rows, markdown=True):
    head = ("profile", "mode", "netpass", "N", "lost in the window: "
            "median / max", "lost outside it: median (runs)",
            "where: host, source side / destination TAP / guest / way "
            "back (medians)", "reordered, duplicated (max)",
            "longest echo gap ms (median)")
    body = []
    for x in rows:
        body.append((
            x["profile"], x["mode"], ("**on**" if markdown else "on")
            if x["on"] else "off",
            f"{x['ok']}" + (f" (+{x['failed']} failed)" if x["failed"]
                            else ""),
            f"{fmt(x['window_med'])} / {fmt(x['window_max'])}",
            f"{fmt(x['outside_med'])} ({x['outside_runs']})",
            f"{fmt(x['host_src'])} / {fmt(x['host_dst'])} / "
            f"{fmt(x['guest'])} / {fmt(x['back'])}",
            f"{fmt(x['reordered'])}, {fmt(x['dups'])}",
            fmt(x["blackout"])))
    return (md_table if markdown else text_table)(head, body)


def tcp_rows(recs):
    rows = []
    for profile, mode, on, rs in points(recs, "tcp"):
        ok = [r for r in rs if r.get("ok")]
        t = lambda k: [r["tcp"][k] for r in ok]  # noqa: E731
        rows.append({
            "profile": profile, "mode": mode, "on": on, "n": len(ok),
            "failed": len(rs) - len(ok),
            "stall_med": med(t("longest_rtt_ms")),
            "stall_max": max(t("longest_rtt_ms"), default=None),
            "retrans_med": med(t("retransmissions")),
            "retrans_max": max(t("retransmissions"), default=None),
            "guest_retrans_med": med(t("guest_retransmissions")),
            "unanswered": sum(r["tcp"]["sent"] - r["tcp"]["answered"]
                              for r in ok),
        })
    return rows


def tcp_table(rows, markdown=True):
    head = ("profile", "mode", "netpass", "N",
            "longest round trip ms: median / max",
            "sender's retransmissions: median / max",
            "guest's retransmissions (median)")
    body = [(x["profile"], x["mode"],
             ("**on**" if markdown else "on") if x["on"] else "off",
             f"{x['n']}" + (f" (+{x['failed']} failed)" if x["failed"]
                            else ""),
             f"{fmt(x['stall_med'])} / {fmt(x['stall_max'])}",
             f"{fmt(x['retrans_med'])} / {fmt(x['retrans_max'])}",
             fmt(x["guest_retrans_med"])) for x in rows]
    return (md_table if markdown else text_table)(head, body)


def bootstrap_diff(a, b, rounds=2000):
    """95% interval of median(b) - median(a), resampling both; seeded, so
    that the report is the same every time."""
    rnd = random.Random(1)
    diffs = sorted(statistics.median(rnd.choices(b, k=len(b))) -
                   statistics.median(rnd.choices(a, k=len(a)))
                   for _ in range(rounds))
    return diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]


# Checkpoints of the pause, in order, and what the time up to each is
PHASES = (("src-non-iterable-saved", "source saved the device state"),
          ("dst-precopy-loadvm-completed", "destination loaded it"),
          ("dst-precopy-bh-vm-started", "destination started"),
          ("dst-postcopy-bh-vm-started", "destination started"))


def _tail(r):
    """The pause after the source's last RAM pass: device state saved,
    sent, loaded, and the destination started. The RAM left for that
    pass is the migration's own (precopy convergence), not netpass's."""
    c = r["checkpoints_ms"]
    start = c.get("dst-precopy-bh-vm-started",
                  c.get("dst-postcopy-bh-vm-started"))
    if start is None or "src-iterable-saved" not in c:
        return None
    return start - c["src-iterable-saved"]


# What the downtime table compares, netpass off and on
DOWNTIME_METRICS = (
    ("true downtime", lambda r: r["true_downtime_ms"]),
    ("after the last RAM pass", _tail))


def downtime_rows(recs):
    rows = []
    for mode in MODES:
        sel = [r for r in recs if r["mode"] == mode and r.get("ok")]
        if not any(netpass_on(r) for r in sel) or \
           all(netpass_on(r) for r in sel):
            continue
        phases = []
        for name, what in PHASES:
            a = [r["checkpoints_ms"][name] for r in sel
                 if not netpass_on(r) and name in r["checkpoints_ms"]]
            b = [r["checkpoints_ms"][name] for r in sel
                 if netpass_on(r) and name in r["checkpoints_ms"]]
            if a and b:
                phases.append((what, med(a), med(b)))
        err = [r["downtime_reported_ms"] - r["true_downtime_ms"]
               for r in sel if netpass_on(r)]
        for metric, get in DOWNTIME_METRICS:
            off = [v for v in (get(r) for r in sel if not netpass_on(r))
                   if v is not None]
            on = [v for v in (get(r) for r in sel if netpass_on(r))
                  if v is not None]
            if not off or not on:
                continue
            lo, hi = bootstrap_diff(off, on)
            rows.append({"mode": mode, "metric": metric,
                         "n_off": len(off), "n_on": len(on),
                         "off": (med(off), pct(off, 25), pct(off, 75)),
                         "on": (med(on), pct(on, 25), pct(on, 75)),
                         "diff": med(on) - med(off), "ci": (lo, hi),
                         "phases": phases,
                         "err": (med(err), max(err, key=abs))})
    return rows


def downtime_table(rows, markdown=True):
    head = ("mode", "pause", "N off / on",
            "netpass off: median [p25, p75] ms",
            "netpass on: median [p25, p75] ms",
            "added by netpass: difference of medians, 95% interval")
    body = [(x["mode"], x["metric"], f"{x['n_off']} / {x['n_on']}",
             "{:.1f} [{:.1f}, {:.1f}]".format(*x["off"]),
             "{:.1f} [{:.1f}, {:.1f}]".format(*x["on"]),
             "{:+.1f} ms [{:+.1f}, {:+.1f}]".format(x["diff"], *x["ci"]))
            for x in rows]
    return (md_table if markdown else text_table)(head, body)


def phase_table(rows):
    head = ("mode", "time since the source stopped, until the", "off (ms)",
            "on (ms)")
    body = [(x["mode"], what, fmt(a, 1), fmt(b, 1))
            for x in rows if x["metric"] == DOWNTIME_METRICS[0][0]
            for what, a, b in x["phases"]]
    return md_table(head, body)


def vm_started_table(recs, markdown=True):
    head = ("mode", "vm-started", "N", "downtime reported (median)",
            "true downtime (median)", "reported - true: median / worst")
    body = []
    for mode in MODES:
        for on in (False, True):
            rs = [r for r in recs if r["mode"] == mode and r.get("ok") and
                  ("vm-started" in r["features"]) == on]
            if not rs:
                continue
            err = [r["downtime_reported_ms"] - r["true_downtime_ms"]
                   for r in rs]
            body.append((mode, "on" if on else "off", len(rs),
                         fmt(med(r["downtime_reported_ms"] for r in rs), 1),
                         fmt(med(r["true_downtime_ms"] for r in rs), 1),
                         "{:+.1f} / {:+.1f}".format(med(err),
                                                    max(err, key=abs))))
    return (md_table if markdown else text_table)(head, body)


def flood_table(recs):
    head = ("mode", "N", "completed", "bound (bytes)",
            "held at most (bytes)", "frames dropped at the bound: min-max")
    body = []
    for mode in MODES:
        rs = [r for r in recs if r["mode"] == mode]
        if not rs:
            continue
        ok = [r for r in rs if r.get("ok")]
        held = [r["netpass_src"]["captured-bytes"] for r in ok]
        # Records before series v8 have one "dropped-frames" counter
        drops = [r["netpass_src"].get("dropped-bound",
                                      r["netpass_src"].get("dropped-frames"))
                 for r in ok]
        body.append((mode, len(rs), len(ok), distinct(
            rs, lambda r: r["setup"]["params"]["src"]["netpass-max-bytes"]),
            max(held, default="-"),
            f"{min(drops)}-{max(drops)}" if drops else "-"))
    return md_table(head, body)


def matrix_host(r):
    """Datagrams of a run lost on the host side: unicast, the difference
    of the guest's counters; broadcast, at least (see lab.py)."""
    loss = r["loss"]
    if r.get("to") == "broadcast":
        return loss["host_at_least"]
    return loss["host_source"] + loss["host_dst_tap"]


def matrix_rows(recs):
    rows = []
    for to in ("guest", "broadcast"):
        for rate in sorted({r["rate"] for r in recs}):
            for profile in PROFILES:
                for mode in MODES:
                    for on in (False, True):
                        rs = [r for r in recs
                              if r.get("to", "guest") == to and
                              r["rate"] == rate and
                              r["profile"] == profile and
                              r["mode"] == mode and netpass_on(r) == on]
                        if not rs:
                            continue
                        ok = [r for r in rs if r.get("ok")]
                        rows.append({
                            "to": to, "rate": rate, "profile": profile,
                            "mode": mode, "on": on, "ok": len(ok),
                            "failed": len(rs) - len(ok),
                            "lost_med": med(r["lost"] for r in ok),
                            "lost_max": max((r["lost"] for r in ok),
                                            default=None),
                            "host_max": max((matrix_host(r) for r in ok),
                                            default=None),
                            "host_zero": sum(matrix_host(r) == 0
                                             for r in ok),
                            "guest_med": med(r["loss"]["guest_socket"] +
                                             r["loss"]["guest_echo"]
                                             for r in ok),
                            "reordered": max((r["reordered"] for r in ok),
                                             default=None),
                            "dups": max((max(r["duplicated"],
                                             r["guest_dupes"])
                                         for r in ok), default=None),
                            "dups_med": med(max(r["duplicated"],
                                                r["guest_dupes"])
                                            for r in ok),
                            "copies": max((r.get(
                                "copies_at_guest_at_least", 0)
                                for r in ok), default=None),
                            "removed": med(r.get("netpass_copies", 0)
                                           for r in ok) if on else None,
                        })
    return rows


def matrix_table(rows):
    head = ("to", "rate/s", "profile", "mode", "netpass", "N",
            "lost: median / max", "host side: max (runs with 0)",
            "guest side: median", "reordered, duplicated: max",
            "copies that reached the guest: max", "copies netpass "
            "removed: median")
    body = []
    for x in rows:
        body.append((
            "broadcast" if x["to"] == "broadcast" else "the guest",
            x["rate"], x["profile"], x["mode"],
            "**on**" if x["on"] else "off",
            f"{x['ok']}" + (f" (+{x['failed']} failed)" if x["failed"]
                            else ""),
            f"{fmt(x['lost_med'])} / {fmt(x['lost_max'])}",
            f"{fmt(x['host_max'])}" + (
                "" if x["to"] == "guest" else " (at least)") +
            f" ({x['host_zero']})",
            fmt(x["guest_med"]),
            f"{fmt(x['reordered'])}, {fmt(x['dups'])}",
            fmt(x["copies"]) if x["to"] == "broadcast" else "-",
            fmt(x["removed"]) if x["on"] else "-"))
    return md_table(head, body)


def _max(values):
    values = [v for v in values if v is not None]
    return max(values) if values else None


def matrix_claims(rows):
    on = [x for x in rows if x["on"]]
    runs = sum(x["ok"] for x in on)
    failed = sum(x["failed"] for x in rows)
    out = [f"- Netpass on, {runs} migrations over {len(on)} points: "
           f"{sum(x['host_zero'] for x in on)} lost nothing on the host "
           "side; reordered at most "
           f"{fmt(_max(x['reordered'] for x in on))}, duplicated at most "
           f"{fmt(_max(x['dups'] for x in on))} datagrams in any run; "
           "copies that reached the guest's socket (broadcast, at "
           "least): at most "
           f"{fmt(_max(x['copies'] for x in on if x['to'] == 'broadcast'))}"
           " per run."]
    off = [x for x in rows if not x["on"] and x["to"] == "broadcast"]
    if off:
        out.append("- Netpass off, broadcast: duplicated datagrams per "
                   "migration, median (max): " + ", ".join(
                       f"{fmt(x['dups_med'])} ({fmt(x['dups'])}) "
                       f"{x['profile']} {x['mode']} {x['rate']}/s"
                       for x in off) + ".")
    if failed:
        out.append(f"- {failed} runs failed (see the records' error).")
    return "\n".join(out)


def libvirt_table(recs, markdown=True):
    """make libvirt-lab: matrix_table()'s figures, and what domjobinfo
    gave on each side"""
    rows = matrix_rows(recs)
    head = ("mode", "virsh migrate", "N", "lost: median / max",
            "host side: max (runs with 0)", "guest side: median",
            "reordered, duplicated: max", "vm-started on both",
            "domjobinfo, source: forwarded median",
            "destination: delivered median",
            "dropped, both: max")
    body = []
    for x in rows:
        ok = [r for r in recs if r.get("ok") and r["mode"] == x["mode"]
              and netpass_on(r) == x["on"] and r["profile"] == x["profile"]
              and r["rate"] == x["rate"]]
        both = sum(all("vm-started" in r["setup"]["caps"][s]
                       for s in ("src", "dst")) for r in ok)

        # Records before libvirt's four counters have QEMU's thirteen:
        # delivered was injected, dropped the drops that lost a frame.
        def counter(side, key, old=None):
            return med((r.get(side) or {}).get(key, (r.get(side) or {}).get(
                old, 0)) for r in ok)
        dropped = _max(sum((r.get(side) or {}).get(k, 0)
                           for side in ("netpass_src", "netpass_dst")
                           for k in ("dropped-frames", "dropped-bound",
                                     "dropped-late", "dropped-gone",
                                     "dropped-invalid", "dropped-unused"))
                       for r in ok)
        body.append((
            x["mode"], "--live" + (" --postcopy" if x["mode"] == "postcopy"
                                   else "") +
            (" **--netpass**" if x["on"] else ""),
            f"{x['ok']}" + (f" (+{x['failed']} failed)" if x["failed"]
                            else ""),
            f"{fmt(x['lost_med'])} / {fmt(x['lost_max'])}",
            f"{fmt(x['host_max'])} ({x['host_zero']})",
            fmt(x["guest_med"]),
            f"{fmt(x['reordered'])}, {fmt(x['dups'])}",
            f"{both} of {len(ok)}",
            (fmt(counter('netpass_src', 'forwarded-frames'))
             if x["on"] else "-"),
            (fmt(counter('netpass_dst', 'delivered-frames', 'injected-frames'))
             if x["on"] else "-"),
            fmt(dropped) if x["on"] else "-"))
    if not markdown:
        return text_table(head, [[str(c).replace("**", "") for c in row]
                                 for row in body])
    return md_table(head, body)


def libvirt_cover_section():
    lv = load("libvirt.jsonl")
    if not lv:
        return "(no records)"
    return "\n".join([
        f"Setup: {distinct(lv, lambda r: r['setup']['host']['cpu'])}, "
        f"{distinct(lv, lambda r: r['setup']['host']['cores'])} cores, "
        f"{distinct(lv, lambda r: r['setup']['accel'].upper())}; "
        f"{distinct(lv, lambda r: r['setup']['libvirt'])} with this "
        f"series, {distinct(lv, lambda r: r['setup']['qemu'])} with the "
        "QEMU series; guest Debian "
        f"{distinct(lv, lambda r: r['setup']['guest']['kernel'])}, "
        f"profile {distinct(lv, lambda r: r['profile'])}; UDP to the "
        f"guest at {distinct(lv, lambda r: r['rate'])}/s; every setting "
        "in each record (docs/results/libvirt.jsonl in the workspace).",
        "", text_table_indent(libvirt_table(lv, markdown=False))])


def memflood_table(recs):
    head = ("netpass", "N", "completed", "bound (bytes)", "reached "
            "netpass: min (x the bound)", "kept (bytes, as counted): max",
            "source, own memory growth: median / max (KiB)",
            "destination, own memory growth: median / max (KiB)",
            "destination, all resident memory: median / max (KiB)")
    body = []
    for feat in ("netpass", "-"):
        rs = [r for r in recs if r.get("features", "netpass") == feat]
        if not rs:
            continue
        ok = [r for r in rs if r.get("ok")]

        def col(key):
            xs = [r[key]["growth"] for r in ok if key in r]
            return f"{fmt(med(xs))} / {fmt(max(xs, default=None))}"
        on = feat == "netpass"
        reached = min((r["reached_cost"] for r in ok), default=None)
        body.append((
            "on" if on else "off", len(rs), len(ok),
            distinct(rs, lambda r: r["bound"]) if on else "-",
            f"{reached} ({reached / ok[0]['bound']:.1f}x)"
            if ok and on else "-",
            max((r["kept_cost"] for r in ok), default="-") if on else "-",
            col("src_own_kib"), col("dst_own_kib"), col("dst_rss_kib")))
    return md_table(head, body)


def capacity_table(recs):
    rates = sorted({r["rate"] for r in recs})
    head = ("profile",) + tuple(f"{x}/s" for x in rates)
    body = []
    for profile in PROFILES:
        rs = {r["rate"]: r for r in recs if r.get("profile") == profile}
        if rs:
            body.append((profile,) + tuple(
                "{:.2f} %".format(100 * rs[x]["lost"] / rs[x]["sent"])
                if x in rs and rs[x].get("ok") else "-" for x in rates))
    return md_table(head, body)


def pacing_table(recs):
    head = ("datagrams injected per ms", "N", "lost in the window: median"
            " / max", "guest socket drops: median / max",
            "lost outside the window: median", "reordered (max)",
            "longest echo gap ms (median)")
    groups = {}
    for r in recs:
        m = re.search(r"at most (\d+) per tick", r["setup"].get("note", ""))
        groups.setdefault(int(m.group(1)) if m else -1, []).append(r)
    body = []
    for pace, rs in sorted(groups.items()):
        ok = [r for r in rs if r.get("ok")]
        lw = [r["lost_window"] for r in ok]
        gs = [r["loss"]["guest_socket"] for r in ok]
        body.append(("all at once (the series)" if pace == 0 else pace,
                     len(ok), f"{fmt(med(lw))} / {max(lw)}",
                     f"{fmt(med(gs))} / {max(gs)}",
                     fmt(med(r["lost_before"] + r["lost_after"]
                             for r in ok)),
                     max(r["reordered"] for r in ok),
                     fmt(med(r["blackout_ms"] for r in ok))))
    return md_table(head, body)


FAULT_NAMES = {
    "kill-loading": "destination killed (SIGKILL) as the package goes out",
    "reject": "destination rejects the device state",
    "cut-before-ack": "connection cut before the acknowledgement",
    "freeze": "destination frozen (SIGSTOP) as the package goes out",
}


def fault_table(recs):
    """Scenario 4: per fault, how the runs ended."""
    rows = []
    for fault in FAULT_NAMES:
        g = [r for r in recs if r.get("fault") == fault]
        if not g:
            continue
        ends = {}
        for r in g:
            key = (f"source {r.get('status_src')}/{r.get('run_src')}, "
                   f"destination {r.get('status_dst')}/{r.get('run_dst')}")
            ends[key] = ends.get(key, 0) + 1
        again = [r["answer_again_ms"] for r in g
                 if r.get("answer_again_ms") is not None]
        rows.append([
            FAULT_NAMES[fault], len(g),
            f"{sum(bool(r.get('one_running')) for r in g)}/{len(g)}",
            f"{sum(bool(r.get('memory_intact')) for r in g)}/{len(g)}",
            (f"{fmt(med(again))} / {fmt(max(again))}" if again else "-"),
            "; ".join(f"{n}x {k}" for k, n in sorted(ends.items())),
            distinct(g, lambda r: ", ".join(r.get("actions") or ["none"])),
        ])
    return md_table(["fault", "N", "exactly one side runs the guest",
                     "guest memory checks out", "answers again after the "
                     "fault, ms: median / max", "end states (migration/run "
                     "state)", "management's actions"], rows)


def fault_keepalive_table(recs):
    t = [r["source_paused_ms"] for r in recs
         if r.get("source_paused_ms") is not None]
    acts = distinct(recs, lambda r: ", ".join(r.get("actions") or ["none"]))
    return md_table(["N", "source paused by itself after, ms: median / max",
                     "exactly one side runs the guest",
                     "guest memory checks out", "management's actions"],
                    [[len(recs),
                      (f"{fmt(med(t))} / {max(t)}" if t else "-") +
                      (f" ({len(recs) - len(t)} never)"
                       if len(t) < len(recs) else ""),
                      f"{sum(bool(r.get('one_running')) for r in recs)}/"
                      f"{len(recs)}",
                      f"{sum(bool(r.get('memory_intact')) for r in recs)}/"
                      f"{len(recs)}", acts]])


def linkfail_table(recs):
    """Scenario 5: per transport, load and keepalive, when each side
    paused by itself after the link died."""
    rows = []
    keys = sorted({(r["transport"], r["load"], r["keepalive_ms"])
                   for r in recs},
                  key=lambda k: (["tcp", "fd", "proxy"].index(k[0]),
                                 k[1] != "idle", k[2]))
    for transport, load, period in keys:
        g = [r for r in recs if (r["transport"], r["load"],
                                 r["keepalive_ms"]) == (transport, load,
                                                        period)]

        def side(name):
            t = [r[f"{name}_paused_ms"] for r in g
                 if r.get(f"{name}_paused_ms") is not None]
            caps = {r["setup"]["link"]["cap_s"] for r in g}
            never = len(g) - len(t)
            txt = f"{fmt(med(t))} / {max(t)}" if t else "-"
            if never:
                txt += (f" ({never} of {len(g)} not within "
                        f"{'/'.join(str(round(c)) for c in sorted(caps))}"
                        " s: gave up)")
            return txt
        rows.append([
            {"tcp": "tcp", "fd": "fd: (TCP socket)",
             "proxy": "tcp via local proxy"}[transport],
            {"idle": "idle (-S, no page asked)",
             "inflight": "page requests in flight"}[load],
            f"{period} ms" if period else "off", len(g),
            side("src"), side("dst"),
            (f"{sum(bool(r.get('within_bound')) for r in g)}/{len(g)} "
             f"(<= {g[0]['bound_ms']} ms)" if period else "-"),
            f"{sum(bool(r.get('recovered')) for r in g)}/{len(g)}",
            f"{sum(bool(r.get('answers_after')) and bool(r.get('memory_intact')) for r in g)}/{len(g)}",
        ])
    return md_table(["transport", "load", "keepalive", "N",
                     "source paused after, ms: median / max",
                     "destination paused after, ms: median / max",
                     "both within 3 periods + 0.5 s", "recovered",
                     "guest answers, memory checks out"], rows)


def plot_switchover(recs, profile, path):
    """Echo sequence against time around the switchover, one panel per
    mode and netpass off/on: the first run of each point."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {}
    for r in recs:
        if (r["traffic"] == "udp" and r["profile"] == profile and
                r.get("ok") and "timeline" in r):
            runs.setdefault((netpass_on(r), r["mode"]), r)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    for row, on in enumerate((False, True)):
        for col, mode in enumerate(MODES):
            ax = axes[row][col]
            r = runs.get((on, mode))
            if not r:
                ax.set_axis_off()
                continue
            t = r["timeline"]
            step = 1000.0 / r["rate"]
            ok_t, ok_s, lost_t, lost_s = [], [], [], []
            for i, d in enumerate(t["delay_ms"]):
                sent = t["first_send_ms"] + i * step
                if d < 0:
                    lost_t.append(sent)
                    lost_s.append(i)
                else:
                    ok_t.append(sent + d)
                    ok_s.append(i)
            ax.plot(ok_t, ok_s, ".", ms=2, label="answered (at the answer)")
            ax.plot(lost_t, lost_s, "x", color="red", ms=3,
                    label=f"lost (when sent): {len(lost_t)} here")
            ax.axvspan(0, t["start_ms"], color="orange", alpha=0.25,
                       label=f"both paused: {t['start_ms']:.0f} ms")
            ax.set_title(f"{mode}, netpass {'on' if on else 'off'} "
                         f"(profile {profile}, {r['rate']}/s)")
            ax.set_xlabel("ms since the source stopped")
            ax.set_ylabel("datagram, in sending order")
            ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_loss_by_place(rows, path):
    """Mean datagrams lost per migration in the switchover window, split
    by place, for every UDP point."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5))
    labels = []
    colors = {"host_src": "tab:red", "host_dst": "tab:orange",
              "guest": "tab:blue"}
    names = {"host_src": "host, source side", "host_dst":
             "host, destination TAP", "guest": "guest's own socket"}
    for x in rows:
        labels.append(f"{x['profile']}\n{x['mode']}\n"
                      f"netpass {'on' if x['on'] else 'off'}")
    bottom = [0.0] * len(rows)
    for key in ("host_src", "host_dst", "guest"):
        vals = [x[key] or 0 for x in rows]
        ax.bar(range(len(rows)), vals, bottom=bottom, color=colors[key],
               label=names[key])
        bottom = [a + b for a, b in zip(bottom, vals)]
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("datagrams lost per migration")
    ax.set_title("UDP: where the datagrams are lost (medians per place, "
                 "whole run)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


CHAOS_INVARIANTS = (
    ("no_source_resume_after_destination",
     "source resumed after the destination did"),
    ("one_copy_running", "two copies ran at once"),
    ("guest_intact", "running copy's memory or network wrong"),
    ("no_crash", "a QEMU crashed or asserted"),
    ("loss_explained", "no copy runs, no documented case"),
)
CHAOS_OUTCOMES = (("src", "source runs"), ("dst", "destination runs"),
                  ("none", "none runs"), ("both", "both run"))


def chaos_failed(r):
    """The invariants run @r broke ("run failed" if it was not carried
    out)"""
    if "error" in r:
        return ["run failed"]
    return [k for k, _ in CHAOS_INVARIANTS if r["invariants"].get(k) is
            False]


def chaos_landed(r):
    """Where a run's fault landed: the source's migration status then
    (and whether its VM had stopped), and the destination's"""
    f = r["fault"]
    if not f.get("injected"):
        return "not injected"
    return (f"{f.get('src_status')}"
            f"{'' if f.get('src_running', True) else ' (stopped)'}/"
            f"{f.get('dst_status')}")


def chaos_evidence(r):
    """A failed run in a line: how it ended and what broke"""
    if "error" in r:
        return r["error"]
    out = [f"settled: {r['settled']}"]
    for n, f in sorted(r["final"].items()):
        out.append(f"{n} " + (f"{f.get('status')}/{f.get('runstate')}"
                              if f["alive"] else
                              f"killed by {f['killed_by']}" if
                              f["killed_by"] else "gone")
                   + (f" ({f['error-desc']})" if f.get("error-desc")
                      else ""))
    out += [f"{k}: {v}" for k, v in sorted(r["evidence"].items())]
    return "; ".join(out).replace("|", "/")


def chaos_table(recs, markdown=True):
    """The fault campaign by fault and outcome: one row per fault kind
    and side, then the total"""
    keys = sorted({(r["fault"]["kind"], r["fault"]["side"]) for r in recs})
    rows = []
    for key in keys + [None]:
        g = [r for r in recs if key is None or
             (r["fault"]["kind"], r["fault"]["side"]) == key]
        done = [r for r in g if "error" not in r]
        row = ["total" if key is None else f"{key[0]} {key[1]}", len(g),
               sum(bool(r["fault"].get("injected")) for r in done)]
        for out, _ in CHAOS_OUTCOMES:
            row.append(sum(r["outcome"] == out for r in done))
        row.append(sum(bool(r.get("explanation")) for r in done))
        for k, _ in CHAOS_INVARIANTS:
            row.append(sum(r["invariants"].get(k) is False for r in done))
        row.append(sum(bool(r.get("quit_hung")) for r in done))
        row.append(len(g) - len(done))
        rows.append(row)
    head = (["fault", "N", "injected"] + [n for _, n in CHAOS_OUTCOMES] +
            ["lost, documented case"] + [n for _, n in CHAOS_INVARIANTS] +
            ["a QEMU did not quit on SIGTERM", "run failed"])
    if not markdown:
        head = (["fault", "N", "inj"] + [k for k, _ in CHAOS_OUTCOMES] +
                ["expl", "inv1", "inv2", "inv3", "inv4", "inv5", "hung",
                 "err"])
    return (md_table if markdown else text_table)(head, rows)


def chaos_moments(recs):
    """Where the faults landed: the source's migration status at the
    injection, by mode, against the outcome"""
    done = [r for r in recs if "error" not in r]
    keys = sorted({(r["mode"], chaos_landed(r).split("/")[0])
                   for r in done})
    rows = []
    for mode, st in keys:
        g = [r for r in done if r["mode"] == mode and
             chaos_landed(r).split("/")[0] == st]
        rows.append([mode, st, len(g)] +
                    [sum(r["outcome"] == o for r in g)
                     for o, _ in CHAOS_OUTCOMES] +
                    [sum(bool(chaos_failed(r)) for r in g)])
    return md_table(["mode", "source's status at the fault", "N"] +
                    [n for _, n in CHAOS_OUTCOMES] +
                    ["an invariant failed"], rows)


def chaos_features(r):
    f = r["features"]
    return "+".join([k for k in ("vm-started", "netpass") if f[k]] +
                    (["keepalive"] if f["keepalive_ms"] else []) +
                    (["-S"] if r["dst_S"] else [])) or "-"


def chaos_doc(recs):
    """docs/chaos.md: the campaign's tables and every failure, from the
    records"""
    done = [r for r in recs if "error" not in r]
    seeds = sorted(r["seed"] for r in recs)
    dates = sorted(r["date"] for r in recs if "date" in r)
    secs = [r["run_s"] for r in recs if "run_s" in r]
    out = ["# The fault campaign (`make chaos`)", "",
           "Generated by `lab/lab.py report` from "
           "`docs/results/chaos.jsonl`; do not edit. How the campaign "
           "works: `lab/chaos.py` (its docstring and the Manager's).", "",
           f"{len(recs)} runs, seeds {seeds[0]} to {seeds[-1]}, "
           f"{dates[0][:10]} to {dates[-1][:10]}, "
           f"{fmt(med(secs))} s per run (median, max {fmt(max(secs))}); "
           f"{distinct(recs, lambda r: r['setup']['accel']).upper()}, "
           f"{distinct(recs, lambda r: r['setup']['qemu'])} "
           "(build sha256 "
           f"{distinct(recs, lambda r: r['setup']['qemu_build']['sha256'])}"
           f"), {provenance(recs, 'chaos.jsonl')}; host "
           f"{distinct(recs, lambda r: r['setup']['host']['cpu'])}, "
           f"{distinct(recs, lambda r: r['setup']['host']['cores'])} "
           "cores. A run is replayed (its choices; timings vary) with "
           "`lab/chaos.py --seed SEED --reps 1`.", "",
           "## By fault and outcome", "",
           "A fault on a side; 'injected': its moment came (a fault "
           "planned after completion, in a migration that failed, never "
           "comes). 'Lost, documented case': no copy runs and the record "
           "names the documented case. The invariant columns count the "
           "runs that broke each.", "",
           chaos_table(recs), "",
           "## Where the faults landed", "",
           chaos_moments(recs), "",
           "## Runs with no copy running, by documented case", ""]
    why = {}
    for r in done:
        if r["outcome"] == "none":
            k = r.get("explanation") or "(none: unexplained)"
            why[k] = why.get(k, 0) + 1
    out += [md_table(["case", "runs"], sorted(why.items())) if why
            else "None.", "", "## Failures", ""]
    bad = [r for r in recs if chaos_failed(r)]
    if not bad:
        out.append("None: every invariant held in every run.")
    else:
        rows = []
        for r in bad:
            f = r["fault"]
            rows.append([
                r["seed"], r["mode"], chaos_features(r),
                f"{f['kind']} {f['side']} at {f['when']} (landed "
                f"{chaos_landed(r)})", r.get("outcome", "-"),
                ", ".join(chaos_failed(r)), chaos_evidence(r)])
        out.append(md_table(["seed", "mode", "features", "fault",
                             "runs", "failed", "evidence"], rows))
    return "\n".join(out) + "\n"


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    OUTPUTS[path] = buf.getvalue()


OUTPUTS = {}


def readme_section():
    bench = load("bench.jsonl")
    parts = []
    if bench:
        udp = udp_rows(bench)
        tcp = tcp_rows(bench)
        down = downtime_rows(bench)
        parts += ["### Setup of the published runs",
                  "Every figure below comes from the records in "
                  "`docs/results/`, one JSON line per migration; "
                  "`make report` (`lab/lab.py report`) rewrites this part "
                  "of docs/figures.md, the cover letter's figures and the "
                  "plots "
                  "from them, and `make check` fails if they differ.",
                  setup_table(bench, ["bench.jsonl"]),
                  "### UDP: datagrams lost per migration, and where",
                  "Each run's loss is split twice. *When*: the window runs "
                  "from the source's stop to the first echo after the "
                  "destination started, and a datagram counts in it by the "
                  "time it was sent; losses outside the window (mostly a "
                  "slow guest right after the start) are counted apart, "
                  "with the number of runs that had any, and never added "
                  "in. *Where*, from counters over the whole run: *host, "
                  "source side*, reached the source's TAP and never the "
                  "guest; *destination TAP*, dropped in its queue; "
                  "*guest*, dropped by the guest's own UDP socket (its "
                  "RcvbufErrors) or its echo; *way back*, echoed but never "
                  "back at the traffic host.",
                  udp_table(udp), udp_claims(udp),
                  "![where the datagrams of the switchover are lost]"
                  "(figures/netpass-loss-by-place.png)",
                  "![echoes around the switchover, default profile]"
                  "(figures/netpass-switchover-default.png)",
                  "### TCP: one connection, request/response at 1000/s",
                  tcp_table(tcp), tcp_claims(tcp),
                  "### Downtime added by netpass",
                  "True downtime: the destination's start minus the "
                  "source's stop, from QEMU's own checkpoint trace events "
                  "on one host clock; all runs of the set (both profiles, "
                  "UDP and TCP) per mode. In precopy most of it, and most "
                  "of its spread, is the last RAM pass: how much memory "
                  "the guest dirtied since the previous one, which "
                  "netpass does not change. The pause after the last RAM "
                  "pass (the device state saved, sent and loaded, and the "
                  "destination started) is where netpass could add time, "
                  "and is compared on its own.",
                  downtime_table(down), downtime_claims(down),
                  "Where the pause goes (medians):",
                  phase_table(down)]
        plot_loss_by_place(udp, os.path.join(
            FIGURES, "netpass-loss-by-place.png"))
        for profile in PROFILES:
            plot_switchover(bench, profile, os.path.join(
                FIGURES, f"netpass-switchover-{profile}.png"))
    vm = load("downtime.jsonl")
    if vm:
        parts += ["### Reported downtime, vm-started off and on",
                  f"`lab.py downtime`: UDP at 1000/s, profile "
                  f"{distinct(vm, lambda r: r['profile'])}; otherwise set "
                  f"up as above ({provenance(vm, 'downtime.jsonl')}).",
                  vm_started_table(vm)]
    matrix = load("matrix.jsonl")
    if matrix:
        parts += ["### Unicast and broadcast, 2k and 5k/s (issue 11)",
                  "`make matrix` (`lab.py matrix`): UDP to the guest's "
                  "address, and to the segment's broadcast address, which "
                  "the bridge floods to both QEMUs (the guest echoes each "
                  "datagram to the sender), at each rate, both profiles, "
                  "precopy and postcopy, netpass off and on, otherwise "
                  f"set up as above ({provenance(matrix, 'matrix.jsonl')})"
                  ". *Host side*: unicast, datagrams that never reached "
                  "the guest (the difference of its counters, as above); "
                  "broadcast, where the guest may receive a datagram "
                  "twice, the datagrams lost that the guest's own drops "
                  "(its socket, its echo) and the way back do not "
                  "explain: a lower bound, exact when no copy reached "
                  "the guest. *Copies that reached the guest*: datagrams "
                  "at its socket beyond those sent (seen twice by the "
                  "echo, or dropped by the full socket). *Copies netpass "
                  "removed*: its dropped-early and dropped-duplicate, "
                  "both sides.",
                  matrix_table(matrix_rows(matrix)),
                  matrix_claims(matrix_rows(matrix))]
    lv = load("libvirt.jsonl")
    if lv:
        parts += ["### virsh migrate --netpass between two libvirt daemons "
                  "(issue 13)",
                  "`make libvirt-lab` (`lab.py libvirt`, see "
                  "`lab/lvlab.py`): the same guest, TAPs and UDP traffic "
                  "to the guest, but two libvirtd of the libvirt series "
                  f"({distinct(lv, lambda r: r['setup']['libvirt'])}, "
                  "series "
                  f"{distinct(lv, lambda r: r['setup']['libvirt_series_sha256'])}"
                  "), each in its own mount and UTS namespace (hostname, "
                  "host UUID, state), migrate it with `virsh migrate` "
                  "over TCP (`migrate-postcopy` for postcopy), profile "
                  f"{distinct(lv, lambda r: r['profile'])}, "
                  f"{distinct(lv, lambda r: r['rate'])} datagrams/s "
                  f"({provenance(lv, 'libvirt.jsonl')}). libvirt starts "
                  "the destination paused and continues it after the "
                  "migration, so the window ends at the destination's "
                  "first running vCPU. Columns as in the matrix above; "
                  "*vm-started on both*: runs where libvirt enabled it on "
                  "both sides through the migration cookie (both QEMUs "
                  "have it); the netpass counters are each side's "
                  "`virsh domjobinfo --completed`.",
                  libvirt_table(lv)]
    flood = load("flood.jsonl")
    if flood:
        parts += ["### Flood: far above what the bound holds",
                  "`lab.py flood`: UDP at 20000/s (twice the guest's "
                  "capacity) against a 64 KiB netpass-max-bytes, profile "
                  f"{distinct(flood, lambda r: r['profile'])} "
                  f"({provenance(flood, 'flood.jsonl')}).",
                  flood_table(flood)]
    mf = load("memflood.jsonl")
    if mf:
        parts += ["### Memory under a flood of tiny frames (issue 11)",
                  "`make memflood` (`lab.py memflood`): precopy with "
                  "pause-before-switchover, so that the source stays "
                  "stopped, capturing, while the traffic host sends the "
                  "guest UDP datagrams of "
                  f"{distinct(mf, lambda r: r['size'])} payload bytes "
                  f"(frames of {distinct(mf, lambda r: r['size'] + 42)} "
                  f"bytes) at {distinct(mf, lambda r: r['rate'])}/s for "
                  f"{distinct(mf, lambda r: r['setup']['traffic']['seconds'])}"
                  " s, netpass-max-bytes the same on both sides. *Reached "
                  "netpass*: the frames its filter saw (kept or dropped "
                  "for the bound), at what netpass counts per frame (its "
                  "bytes with the virtio-net header, its 16-byte header "
                  "and the allocator's size word, rounded up to 16 bytes). "
                  "*Growth*: a QEMU's resident memory, "
                  "sampled every 10 ms, at its highest minus its highest "
                  "in the 0.5 s before: on the source from the flood's "
                  "start until it ended, on the destination from the "
                  "switchover until the migration completed (the "
                  "forwarded section, and the copies the NIC's queue "
                  "makes of the injected frames until the guest takes "
                  "them). *Own memory*: outside the mappings of 128 MiB "
                  "or more, which are the guest's RAM and TCG's "
                  "translation buffer: the destination's guest starts "
                  "running in that window and fills both, by 2 to 40 "
                  "MiB from run to run, netpass or not (*all resident "
                  "memory*). The runs with netpass off give what the "
                  "switchover costs without it "
                  f"({provenance(mf, 'memflood.jsonl')}).",
                  memflood_table(mf)]
    cap = load("capacity.jsonl")
    if cap:
        parts += ["### The guest's echo capacity, no migration",
                  "`lab.py capacity`: datagrams lost at a fixed rate over "
                  f"8 s ({provenance(cap, 'capacity.jsonl')}).",
                  capacity_table(cap)]
    faults = load("faults.jsonl")
    if faults:
        parts += ["### Faults at the start of postcopy (scenario 4)",
                  "`lab.py faults`: postcopy, UDP at "
                  f"{distinct(faults, lambda r: r['rate'])}/s, profile "
                  f"{distinct(faults, lambda r: r['profile'])}; the "
                  "destination starts with -S and the lab acts as "
                  "management as libvirt would: it continues the "
                  "destination once the source is in postcopy-active, "
                  "pauses a source left in postcopy-device for "
                  f"{distinct(faults, lambda r: r['setup']['management']['pause_after_s'])}"
                  " s, recovers when the destination is paused, and "
                  "otherwise, the destination never having run the guest, "
                  "kills it and cancels the migration. The migration goes "
                  "through a forwarder of the lab's (which can cut it "
                  "before the acknowledgement, and closes the source's side "
                  "when the destination's dies, as a reset would). 'Memory "
                  "checks out': the guest's own workload checks all its "
                  "pages every 2 s (lab/tools/dirtymem.c), and on the side "
                  "that runs the guest afterwards at least one check after "
                  "the fault passed and none failed "
                  f"({provenance(faults, 'faults.jsonl')}).",
                  fault_table(faults)]
    fk = load("faults-keepalive.jsonl")
    if fk:
        parts += ["### A destination frozen in postcopy-device, keepalive on",
                  "`lab.py faults --faults freeze --fault-keepalive "
                  f"{distinct(fk, lambda r: r['setup']['params']['src'].get('postcopy-rp-keepalive-period'))}"
                  " --pause-after "
                  f"{distinct(fk, lambda r: r['setup']['management']['pause_after_s'])}`"
                  ": as scenario 4's frozen destination, but management "
                  "does not pause the source (it would only after the "
                  "time shown): the source must leave postcopy-device by "
                  "itself. 'Paused after': from the SIGSTOP to the source "
                  "in postcopy-paused, polled every 10 ms "
                  f"({provenance(fk, 'faults-keepalive.jsonl')}).",
                  fault_keepalive_table(fk)]
    linkfail = load("linkfail.jsonl")
    if linkfail:
        parts += ["### A link that dies silently in postcopy (scenario 5)",
                  "`lab.py linkfail`: postcopy between the two QEMUs of "
                  "the lab's namespace, max-postcopy-bandwidth "
                  f"{distinct(linkfail, lambda r: r['setup']['params']['src'].get('max-postcopy-bandwidth'))}"
                  " B/s so that it still runs; 1.5 s into postcopy-active "
                  "every packet of the migration's connection is dropped "
                  "(nftables in the namespace, both ways, no reset), "
                  "and the lab polls both sides' query-migrate for "
                  "postcopy-paused, from the drop. Without the keepalive "
                  "it gives up after the time shown and pauses the sides "
                  "itself, as management would once it noticed; then it "
                  "lifts the drop and recovers over a new TCP connection, "
                  "lets the migration complete, continues an idle (-S) "
                  "destination, and checks that the guest answers and "
                  "that its own check of all its pages passes "
                  "(lab/tools/dirtymem.c). fd: is a TCP connection the lab "
                  "makes and hands to both QEMUs (getfd); the proxy is "
                  "lab/tcpfwd.py between the source and the destination, "
                  "the drop on its far side "
                  f"({provenance(linkfail, 'linkfail.jsonl')}).",
                  linkfail_table(linkfail)]
    pacing = load("pacing.jsonl")
    if pacing:
        note = distinct(pacing, lambda r: re.sub(
            r"at most \d+ per tick", "at most k per tick",
            r["setup"]["note"]))
        parts += ["### Experiment: paced injection on the destination",
                  note[:1].upper() + note[1:] + ". Precopy, UDP at "
                  "2000/s, profile default, netpass on "
                  f"({provenance(pacing, 'pacing.jsonl')}).",
                  pacing_table(pacing)]
    return "\n\n".join(parts)


def udp_claims(rows):
    """Sentences that say what the table shows, from the same numbers."""
    on = [x for x in rows if x["on"]]
    off = [x for x in rows if not x["on"]]
    zero = sum(x["host_zero"] for x in on)
    total = sum(x["ok"] for x in on)
    out = [f"- Host side, netpass on: no datagram lost before the guest "
           f"in {zero} of {total} migrations; off: a median of "
           + ", ".join(f"{fmt(x['host_src'])} ({x['profile']}, {x['mode']})"
                       for x in off) + " per migration."]
    for profile in PROFILES:
        g = [x for x in on if x["profile"] == profile]
        if g:
            out.append(f"- Guest side, netpass on, profile {profile}: its "
                       "socket dropped a median of " + " and ".join(
                           f"{fmt(x['guest'])} ({x['mode']})" for x in g) +
                       " per migration.")
    out.append("- Lost outside the window, netpass off / on: in " + ", ".join(
        f"{x['outside_runs']} / {y['outside_runs']} of the "
        f"{x['profile']} {x['mode']} runs" for x in off for y in on
        if (y["profile"], y["mode"]) == (x["profile"], x["mode"])) + ".")
    out.append("- Reordered at most " + fmt(max(
        (x["reordered"] for x in rows if x["reordered"] is not None),
        default=None)) + ", duplicated at most " + fmt(max(
            (x["dups"] for x in rows if x["dups"] is not None),
            default=None)) + " datagrams in any run.")
    return "\n".join(out)


def tcp_claims(rows):
    out = []
    for x in rows:
        if not x["on"]:
            y = next((z for z in rows if z["on"] and z["profile"] ==
                      x["profile"] and z["mode"] == x["mode"]), None)
            if y:
                out.append(f"- {x['profile']}, {x['mode']}: sender's "
                           f"retransmissions median {fmt(x['retrans_med'])}"
                           f" off, {fmt(y['retrans_med'])} on; longest "
                           f"round trip median {fmt(x['stall_med'])} ms off"
                           f", {fmt(y['stall_med'])} ms on.")
    return "\n".join(out)


def downtime_claims(rows):
    out = []
    for x in rows:
        if x["metric"] != DOWNTIME_METRICS[0][0]:
            continue
        parts = []
        for y in rows:
            if y["mode"] != x["mode"]:
                continue
            lo, hi = y["ci"]
            verdict = ("no difference measurable at this N" if lo <= 0 <= hi
                       else "more with netpass" if lo > 0
                       else "less with netpass")
            parts.append(f"{y['metric']}, {y['diff']:+.1f} ms "
                         f"(95% interval {lo:+.1f} to {hi:+.1f} ms, N = "
                         f"{y['n_off']} and {y['n_on']}: {verdict})")
        out.append(f"- {x['mode']}, median with netpass minus without: "
                   + "; ".join(parts) + ". With netpass the "
                   f"reported downtime is the true one {x['err'][0]:+.1f} ms"
                   f" (median, worst {x['err'][1]:+.1f} ms).")
    return "\n".join(out)


def cover_section():
    bench = load("bench.jsonl")
    if not bench:
        return "(no records)"
    out = [f"Setup: {host_and_guest(bench)}; every setting in the workspace's docs/figures.md and in "
           "each record "
           "(docs/results/bench.jsonl in the workspace).",
           "",
           "UDP at 2000/s, datagrams lost per migration (see "
           "docs/figures.md for the columns):", "",
           text_table_indent(udp_table(udp_rows(bench), markdown=False)),
           "", wrap_claims(udp_claims(udp_rows(bench))),
           "", "TCP, one connection, requests at 1000/s:", "",
           text_table_indent(tcp_table(tcp_rows(bench), markdown=False)),
           "", wrap_claims(tcp_claims(tcp_rows(bench))),
           "", "True downtime, netpass off and on:", "",
           text_table_indent(downtime_table(downtime_rows(bench),
                                            markdown=False)),
           "", wrap_claims(downtime_claims(downtime_rows(bench)))]
    return "\n".join(out)


def host_and_guest(recs):
    """The machine, accelerator and guest kernel of records @recs."""
    return (f"{distinct(recs, lambda r: r['setup']['host']['cpu'])}, "
            f"{distinct(recs, lambda r: r['setup']['host']['cores'])} "
            f"cores, {distinct(recs, lambda r: r['setup']['accel'].upper())}"
            f"; guest Debian "
            f"{distinct(recs, lambda r: r['setup']['guest']['kernel'])}")


def vm_started_cover_section():
    vm = load("downtime.jsonl")
    if not vm:
        return "(no records)"
    return "\n".join([textwrap.fill(
        f"Setup: {host_and_guest(vm)}; every setting in each record (docs/results/downtime.jsonl in the "
        "workspace).", 72), "", textwrap.fill(
            "Reported against true downtime (from the source's stop to "
            "the destination's start, by their trace checkpoints), ms, "
            "vm-started off and on:", 72), "",
        text_table_indent(vm_started_table(vm, markdown=False))])


def wrap_claims(text):
    """docs/figures.md's claim lines, wrapped for a mail."""
    return "\n".join(textwrap.fill(line, 72, subsequent_indent="  ")
                     for line in text.splitlines())


def text_table_indent(t):
    return "\n".join("  " + line for line in t.splitlines())


def replace_between(text, begin, end, body, path):
    if begin not in text or end not in text:
        raise SystemExit(f"{path}: no '{begin}' ... '{end}' markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + body + "\n" + end + tail


def main(check=False):
    OUTPUTS.clear()
    with open(README) as f:
        readme = f.read()
    OUTPUTS[README] = replace_between(readme, BEGIN, END,
                                      readme_section(), README).encode()
    for path, section in ((COVER, cover_section),
                          (VM_COVER, vm_started_cover_section),
                          (LV_COVER, libvirt_cover_section)):
        with open(path) as f:
            cover = f.read()
        OUTPUTS[path] = replace_between(cover, COVER_BEGIN, COVER_END,
                                        section(), path).encode()
    chaos = load("chaos.jsonl")
    if chaos:
        OUTPUTS[CHAOS_MD] = chaos_doc(chaos).encode()
    stale = []
    for path, data in sorted(OUTPUTS.items()):
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        if same:
            continue
        stale.append(os.path.relpath(path, TOP))
        if not check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    if check:
        for p in stale:
            print(f"report: {p} is not what docs/results/ gives")
        print(f"report: {len(OUTPUTS) - len(stale)} of {len(OUTPUTS)} "
              "files as the records give them")
        return 1 if stale else 0
    for p in stale:
        print(f"report: wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv[1:]))
