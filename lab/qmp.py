"""A minimal QMP client and QEMU process handling for the lab."""
import json
import os
import signal
import socket
import subprocess
import time


class QMPError(Exception):
    pass


class QMP:
    """One QMP connection over a unix socket; events are kept in order."""

    def __init__(self, path, timeout=30.0):
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
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("r")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"not a QMP greeting: {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise QMPError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self._reply(name)

    def _reply(self, name):
        """The command's answer; events on the way are kept."""
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise QMPError(f"{name}: {reply['error']['desc']}")
            elif "return" in reply:
                return reply["return"]

    def getfd(self, fd, fdname):
        """Hand @fd to QEMU as @fdname (SCM_RIGHTS with 'getfd')."""
        msg = {"execute": "getfd", "arguments": {"fdname": fdname}}
        socket.send_fds(self.sock, [json.dumps(msg).encode() + b"\n"],
                        [fd])
        return self._reply("getfd")

    def close(self):
        self.sock.close()


class Qemu:
    """A QEMU process with a QMP socket, stopped by its own pid."""

    def __init__(self, binary, name, rundir, args, log=None, prefix=()):
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
            self.qmp = QMP(self.qmp_path)
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
