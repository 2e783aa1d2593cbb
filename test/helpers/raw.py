#!/usr/bin/python3
"""Raw notify sender for hostile datagrams (no libsystemd: every byte is ours).

Reads JSON requests on stdin, one per line, answers one JSON line each:

  {"op": "send", "path": P, "data": BASE64, "fds": [SPEC...], "creds": [pid, uid, gid]}
      SPEC: "socketpair" (peer kept), "pipe-r" / "pipe-w" (other end kept), "memfd",
            "devnull", "tcp-listen", or {"dup": K} (another copy of this message's
            K-th fd: the same open file description). "creds" is optional
            (explicit SCM_CREDENTIALS). Our copies of the sent fds are closed after
            sending; peers stay open until "close-peers".
      -> {"ok": true, "bytes": N, "fds": N}
  {"op": "barrier", "path": P, "timeoutMs": N}  sd_notify_barrier() by hand
      -> {"ok": true, "acked": bool}
  {"op": "close-peers"} -> {"ok": true, "closed": N}
  {"op": "exit"}
"""
import base64
import json
import os
import resource
import select
import socket
import struct
import sys

peers = []


def make_fd(spec, made):
    if isinstance(spec, dict):
        return os.dup(made[spec["dup"]])
    if spec == "socketpair":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        peers.append(b.detach())
        return a.detach()
    if spec in ("pipe-r", "pipe-w"):
        r, w = os.pipe()
        keep, send = (w, r) if spec == "pipe-r" else (r, w)
        peers.append(keep)
        return send
    if spec == "memfd":
        fd = os.memfd_create("raw")
        os.write(fd, b"raw")
        return fd
    if spec == "devnull":
        return os.open("/dev/null", os.O_RDONLY)
    if spec == "tcp-listen":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        return s.detach()
    raise ValueError("unknown fd spec %r" % (spec,))


def send(req):
    made = []
    try:
        for spec in req.get("fds", []):
            made.append(make_fd(spec, made))
        anc = []
        if made:
            anc.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(made), *made)))
        if req.get("creds") is not None:
            pid, uid, gid = req["creds"]
            anc.append((socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", pid, uid, gid)))
        data = base64.b64decode(req.get("data", ""))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
            n = s.sendmsg([data], anc, 0, req["path"])
        return {"ok": True, "bytes": n, "fds": len(made)}
    finally:
        for fd in made:
            os.close(fd)


def barrier(req):
    r, w = os.pipe()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))], 0, req["path"])
        os.close(w)
        w = -1
        p = select.poll()
        p.register(r, 0)
        events = p.poll(req.get("timeoutMs", 5000))
        return {"ok": True, "acked": any(ev & select.POLLHUP for _, ev in events)}
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "send":
                res = send(req)
            elif op == "barrier":
                res = barrier(req)
            elif op == "close-peers":
                for fd in peers:
                    os.close(fd)
                res = {"ok": True, "closed": len(peers)}
                peers.clear()
            elif op == "exit":
                print(json.dumps({"ok": True}), flush=True)
                return
            else:
                res = {"ok": False, "error": "unknown op %s" % op}
        except OSError as e:
            res = {"ok": False, "error": e.strerror, "errno": e.errno}
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
