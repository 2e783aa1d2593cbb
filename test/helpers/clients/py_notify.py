#!/usr/bin/python3
"""python3-systemd client: systemd.daemon.notify(state, fds=[...]) to $NOTIFY_SOCKET.

  py_notify.py --state S [--socketpairs N] [--memfd TEXT]

Sends one message with python-systemd (which wraps sd_pid_notify_with_fds), then a
barrier by hand (python-systemd has no sd_notify_barrier), prints one JSON line
{"ret": bool, "acked": bool, "pid": N}, then serves stdin: "close-peers", "exit".
"""
import argparse
import json
import os
import select
import socket
import struct
import sys

from systemd import daemon


def barrier(path, timeout_ms=5000):
    if path.startswith("@"):
        path = "\0" + path[1:]
    r, w = os.pipe()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))], 0, path)
    os.close(w)
    p = select.poll()
    p.register(r, 0)
    events = p.poll(timeout_ms)
    os.close(r)
    return any(ev & select.POLLHUP for _, ev in events)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--socketpairs", type=int, default=0)
    ap.add_argument("--memfd", action="append", default=[])
    args = ap.parse_args()
    fds, peers = [], []
    for _ in range(args.socketpairs):
        a, b = socket.socketpair()
        fds.append(a.detach())
        peers.append(b.detach())
    for text in args.memfd:
        fd = os.memfd_create("py")
        os.write(fd, text.encode())
        fds.append(fd)
    ret = daemon.notify(args.state, fds=fds)
    acked = barrier(os.environ["NOTIFY_SOCKET"])
    print(json.dumps({"ret": bool(ret), "acked": acked, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "close-peers":
            for fd in peers:
                os.close(fd)
            peers.clear()
            print(json.dumps({"ok": True}), flush=True)
        elif cmd == "exit":
            print(json.dumps({"ok": True}), flush=True)
            return


if __name__ == "__main__":
    main()
