"""A minimal QMP client and QEMU process handling for the lab."""
import json
import os
import signal
import socket
import subprocess
import threading
import time


class QMPError(Exception):
    pass


class QMPTimeout(QMPError):
    """No answer in the time given: the QEMU is frozen, or the command
    waits for its main loop, which is blocked"""


class QMP:
    """One QMP connection over a unix socket. A thread of its own reads
    it, so that a command a QEMU does not answer can time out and the
    connection stays usable (a late answer is dropped by its id); events
    are kept in order of arrival, each with QEMU's own timestamp.  With
    @oob, out-of-band execution is enabled (call(..., oob=True)): what
    a QEMU whose main loop is blocked still answers."""

    def __init__(self, path, timeout=30.0, oob=False):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"no QMP socket at {path}")
                time.sleep(0.05)
        self.timeout = timeout
        self.events = []
        self.closed = False
        self._answers = {}
        self._abandoned = set()
        self._ids = 0
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rb")
        greeting = json.loads(self.file.readline() or b"{}")
        if "QMP" not in greeting:
            raise QMPError(f"not a QMP greeting: {greeting}")
        if oob and "oob" not in greeting["QMP"].get("capabilities", []):
            raise QMPError("this monitor offers no out-of-band execution")
        self.sock.settimeout(None)
        threading.Thread(target=self._read_all, daemon=True).start()
        self.call("qmp_capabilities",
                  {"enable": ["oob"]} if oob else None)

    def _read_all(self):
        try:
            for line in self.file:
                msg = json.loads(line)
                with self._cond:
                    if "event" in msg:
                        self.events.append(msg)
                    elif msg.get("id") in self._abandoned:
                        self._abandoned.discard(msg["id"])
                    else:
                        self._answers[msg.get("id")] = msg
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _send(self, msg, fds=None):
        with self._cond:
            self._ids += 1
            msg["id"] = self._ids
        data = json.dumps(msg).encode() + b"\n"
        with self._send_lock:
            if fds:
                socket.send_fds(self.sock, [data], fds)
            else:
                self.sock.sendall(data)
        return msg["id"]

    def _answer(self, name, cid, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while cid not in self._answers:
                left = deadline - time.monotonic()
                if self.closed:
                    raise QMPError(f"{name}: QMP connection closed")
                if left <= 0:
                    self._abandoned.add(cid)
                    raise QMPTimeout(f"{name}: no answer in {timeout} s")
                self._cond.wait(left)
            reply = self._answers.pop(cid)
        if "error" in reply:
            raise QMPError(f"{name}: {reply['error']['desc']}")
        return reply["return"]

    def call(self, name, args=None, timeout=None, oob=False):
        """Command @name with @args; its answer within @timeout s (the
        connection's own by default), or QMPTimeout"""
        msg = {"exec-oob" if oob else "execute": name}
        if args:
            msg["arguments"] = args
        return self._answer(name, self._send(msg), timeout or self.timeout)

    def cmd(self, name, **args):
        return self.call(name, args)

    def getfd(self, fd, fdname):
        """Hand @fd to QEMU as @fdname (SCM_RIGHTS with 'getfd')."""
        cid = self._send({"execute": "getfd",
                          "arguments": {"fdname": fdname}}, [fd])
        return self._answer("getfd", cid, self.timeout)

    def wait_event(self, match, timeout, since=0):
        """The first event from index @since on for which @match(event)
        is true, waiting up to @timeout s for it; None if none came"""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if match(ev):
                        return ev
                since = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._cond.wait(left)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class Qemu:
    """A QEMU process with a QMP socket, stopped by its own pid."""

    def __init__(self, binary, name, rundir, args, log=None, prefix=(),
                 oob=False):
        self.name = name
        self.qmp_path = os.path.join(rundir, f"{name}.qmp")
        self.log_path = log or os.path.join(rundir, f"{name}.log")
        cmd = list(prefix) + [binary, "-name", name, "-nodefaults", "-display", "none",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"] + args
        with open(self.log_path, "w") as logf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf,
                                         start_new_session=True)
        try:
            self.qmp = QMP(self.qmp_path, oob=oob)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
