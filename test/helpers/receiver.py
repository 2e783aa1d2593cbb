#!/usr/bin/python3
"""A plain notify receiver (no fdstore): binds PATH as AF_UNIX SOCK_DGRAM with
SO_PASSCRED and prints one JSON line per datagram:
  {"data": BASE64, "pid": N, "uid": N, "gid": N, "fds": ["sock"|"fifo"|"reg"|...], "flags": N}
All received fds are closed after being described, which also acknowledges
BARRIER=1. Used to check the test clients themselves, independently of the agent.
"""
import array
import base64
import json
import os
import socket
import stat
import struct
import sys

KINDS = [(stat.S_ISSOCK, "sock"), (stat.S_ISFIFO, "fifo"), (stat.S_ISREG, "reg"), (stat.S_ISCHR, "chr"),
         (stat.S_ISDIR, "dir"), (stat.S_ISBLK, "blk"), (stat.S_ISLNK, "lnk")]


def kind(fd):
    mode = os.fstat(fd).st_mode
    return next((name for test, name in KINDS if test(mode)), "other")


def main():
    path = sys.argv[1]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    os.chmod(path, 0o666)
    print(json.dumps({"ready": True}), flush=True)
    ancsize = socket.CMSG_SPACE(struct.calcsize("iII")) + socket.CMSG_SPACE(768 * 4)
    while True:
        data, anc, flags, _ = s.recvmsg(4097, ancsize, socket.MSG_CMSG_CLOEXEC)
        out = {"data": base64.b64encode(data).decode(), "pid": 0, "uid": -1, "gid": -1, "fds": [], "flags": flags}
        fds = []
        for level, typ, body in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                out["pid"], out["uid"], out["gid"] = struct.unpack("iII", body[:12])
            elif level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(body[: len(body) - len(body) % 4])
                fds.extend(a)
        out["fds"] = [kind(fd) for fd in fds]
        for fd in fds:
            os.close(fd)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
