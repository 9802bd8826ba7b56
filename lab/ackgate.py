#!/usr/bin/env python3
"""usage: ackgate.py LISTEN_PORT TARGET_HOST:PORT cut|hold|pass

The migration's TCP connection through the lab, for runs whose QEMUs the
lab does not start itself (lvlab: libvirt starts them): lab.py's
Forwarder, listening on 127.0.0.1:LISTEN_PORT, connecting to the
destination's TARGET_HOST:PORT, and cutting ("cut") or holding back
("hold") the destination's acknowledgement of the postcopy package, or
passing everything on ("pass"). Run inside the lab's namespace (ip netns
exec). Prints "ready" once it listens, then "ack" when it cut or held the
acknowledgement; exits once the connection is gone.

Exit: 0 the connection came and went, 2 usage."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Forwarder  # noqa: E402


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("cut", "hold", "pass"):
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    host, _, port = sys.argv[2].rpartition(":")
    fwd = Forwarder(("127.0.0.1", int(sys.argv[1])), (host, int(port)),
                    None if sys.argv[3] == "pass" else sys.argv[3])
    print("ready", flush=True)
    while fwd.thread.is_alive():
        if fwd.cut_at or fwd.held_at:
            print("ack", flush=True)
            break
        time.sleep(0.005)
    fwd.thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
