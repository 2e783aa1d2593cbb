"""python3-systemd behind fdstore-exec: what systemd.daemon.listen_fds() and
listen_fds_with_names() see, and the data each fd holds (a memfd's contents, bytes
queued on a "-rx" socket, peeked). Prints one JSON line. Run with /usr/bin/python3."""
import json
import os
import socket

from systemd import daemon

# Both check LISTEN_PID against getpid(); keep the environment for the second call.
fds = daemon.listen_fds(unset_environment=False)
named = daemon.listen_fds_with_names(unset_environment=True)
out = {"pid": os.getpid(), "fds": fds, "names": {str(k): v for k, v in named.items()}, "data": {}}
for fd, name in named.items():
    target = os.readlink(f"/proc/self/fd/{fd}")
    if target.startswith("/memfd:"):
        out["data"][name] = os.pread(fd, 512, 0).decode()
    elif name.endswith("-rx"):
        s = socket.socket(fileno=os.dup(fd))
        out["data"][name] = s.recv(512, socket.MSG_PEEK | socket.MSG_DONTWAIT).decode()
        s.close()
print(json.dumps(out), flush=True)
