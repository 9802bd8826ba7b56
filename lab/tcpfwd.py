#!/usr/bin/env python3
"""A local TCP forwarding proxy for the lab's scenario 5: accepts one
connection on 127.0.0.1:LISTEN and forwards it, both ways, to
127.0.0.1:TARGET, as an SSH tunnel or a sidecar would.  When the far
link dies silently, the near connection stays healthy: that is the case
TCP keep-alive on the near socket cannot see.  Runs inside the lab's
namespace (ip netns exec); exits when either side closes."""
import socket
import sys
import threading


def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


def main():
    listen, target = int(sys.argv[1]), int(sys.argv[2])
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(1)
    print("listening", flush=True)
    near, _ = ls.accept()
    far = socket.create_connection(("127.0.0.1", target))
    t = threading.Thread(target=pump, args=(far, near), daemon=True)
    t.start()
    pump(near, far)
    t.join()


if __name__ == "__main__":
    main()
