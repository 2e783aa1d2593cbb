#!/usr/bin/env python3
"""The app the launcher execs in its tests: reports, as one JSON line, its pid, the
environment systemd's exec would set, its open fds, and for each LISTEN_FDS fd
whether it is inheritable and whether it is the very object the peer sent."""

import fcntl
import json
import os
import socket
import sys

KEYS = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_PIDFDID", "NOTIFY_SOCKET",
        "FDSTORE", "WATCHDOG_USEC", "WATCHDOG_PID"]


def open_fds():
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the directory fd listdir used, already closed
        if not target.endswith("/fd"):
            fds.append(fd)
    return sorted(fds)


def probe(fd, name):
    """What the fd holds: the peer's trio objects, or an eventfd's counter."""
    if name == "mem":
        return os.pread(fd, 100, 0).decode()
    if name == "pipe":
        return os.read(fd, 100).decode()
    if name == "sock":
        s = socket.socket(fileno=os.dup(fd))
        got = s.recv(100).decode()
        s.sendall(b"from-app")
        s.close()
        return got
    return int.from_bytes(os.read(fd, 8), sys.byteorder)


def main():
    n = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":") if n else []
    report = {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in KEYS},
              "open": open_fds()}
    cloexec = []
    probes = {}
    bad = []
    for i in range(n):
        fd = 3 + i
        if fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
            cloexec.append(fd)
        value = probe(fd, names[i])
        number = names[i].removeprefix("fd")
        if number.isdigit():
            if value != int(number) + 1:
                bad.append(fd)
        else:
            probes[names[i]] = value
    report.update(cloexec=cloexec, probes=probes, misplaced=bad)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
