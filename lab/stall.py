#!/usr/bin/env python3
"""Add to lab records the destination's main-loop time netpass's release
took, from the trace of each run (lab.py --trace 'netpass_release*'):
the release start, then each slice (netpass_release_slice)."""
import json
import os
import re
import sys

START = re.compile(r"netpass_release_start netdev=\S+ in (\d+) us")
SLICE = re.compile(r"netpass_release_slice (\d+) us")


def stall(rundir):
    starts, slices = [], []
    with open(os.path.join(rundir, "dst.trace")) as f:
        for line in f:
            m = START.search(line)
            if m:
                starts.append(int(m.group(1)))
            m = SLICE.search(line)
            if m:
                slices.append(int(m.group(1)))
    if not starts:
        return None
    return {"from": "dst.trace: netpass_release_start, netpass_release_slice",
            "release_start_us": max(starts), "release_slices": len(slices),
            "max_slice_us": max(slices, default=0)}


def main():
    for line in sys.stdin:
        rec = json.loads(line)
        s = stall(rec["rundir"])
        if s:
            ns = rec.get("netpass_dst", {})
            s["injected_held"] = [[ns.get("injected-frames"),
                                   ns.get("held-frames")]]
            rec["netpass_stall"] = s
        print(json.dumps(rec, sort_keys=True))


if __name__ == "__main__":
    main()
