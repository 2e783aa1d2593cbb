#!/usr/bin/env python3
"""A bare restore client for the agent's restore socket (agent/include/proto.h),
for tests that must know the moment the connection exists: connects, prints
"connected", then reads the whole restore (header, fd batches, end or abort)
and prints one JSON line {"ok": bool, "fds": N[, "abort": reason]}. It waits on
stdin before exiting, so its pid stays the run's main pid until the test lets go."""

import array
import json
import os
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sock.connect(sys.argv[1])
print("connected", flush=True)
fds = 0
result = {"ok": False, "fds": 0}
first = True
while True:
    data, anc, _flags, _addr = sock.recvmsg(70000, socket.CMSG_SPACE(253 * 4))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(payload[: len(payload) - len(payload) % 4])
            fds += len(got)
            for fd in got:
                os.close(fd)
    if not data:
        result = {"ok": False, "fds": fds, "abort": "connection closed"}
        break
    if data.startswith(b"X "):
        result = {"ok": False, "fds": fds, "abort": data[2:].decode().strip()}
        break
    if first:
        first = False
        continue
    if data == b"E\n":
        result = {"ok": True, "fds": fds}
        break
print(json.dumps(result), flush=True)
sys.stdin.read()
