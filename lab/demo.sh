#!/usr/bin/env bash
# The demo: the lab's quick scenario. One precopy and one postcopy live
# migration of a real guest between two QEMU processes, with UDP echo
# traffic over TAP devices and a bridge, then the table and the plot.
. "$(dirname "$0")/../scripts/lib.sh"

"$TOP/lab/guest.sh"
exec "$PYTHON" "$TOP/lab/lab.py" demo "$@"
