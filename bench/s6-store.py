#!/usr/bin/python3
"""s6-fdholder comparison: stores N unix-socket fds in a running s6-fdholderd the
way its tools do it, one s6-fdholder-store process (one request) per fd.

    s6-store.py SOCKET N

Keeps the peers open; prints {"fds": N, "ns": T}, T from the first store to the
last one's exit."""
import json
import socket
import subprocess
import sys
import time

path, n = sys.argv[1], int(sys.argv[2])
pairs = [socket.socketpair() for _ in range(n)]
t0 = time.monotonic_ns()
for i, (a, _) in enumerate(pairs):
    fd = a.fileno()
    subprocess.run(['s6-fdholder-store', '-d', str(fd), path, f'unix:bench/{i}'], pass_fds=[fd], check=True)
ns = time.monotonic_ns() - t0
print(json.dumps({'fds': n, 'ns': ns}), flush=True)
