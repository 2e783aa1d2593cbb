#!/usr/bin/env python3
"""Test peer for test/native: sends one datagram with fds to a notify socket, or
connects to a listener. Plays the app side with real sockets, outside the agent's
process, so credentials and fd passing go through the kernel.

usage: native-sendfds.py SPEC_JSON
spec:
  {"mode": "dgram", "path": P, "data": "text" | "size": N,
   "fds": [{"kind": "inherit", "fd": 3} | {"kind": "devnull"} | {"kind": "pipe"}
           | {"kind": "socketpair"} | {"kind": "tcp-listen"} | {"kind": "udp"}
           | {"kind": "tcp6-listen"} | {"kind": "unix-listen", "path": P}
           | {"kind": "unix-abstract"} | {"kind": "memfd"} | {"kind": "file", "path": P}],
   "hold": bool}      hold: keep peers (socketpair) open until stdin closes
  {"mode": "connect", "path": P, "type": "stream" | "seqpacket", "recv": bool}
     recv: receive one message with up to 253 fds, report how many
Prints one JSON line: {"pid": ..., "info": [...]} (and "received" in connect mode).
"""
import array
import json
import os
import socket
import sys


def make_fds(spec, keep, info):
    out = []
    for f in spec:
        kind = f["kind"]
        if kind == "inherit":
            out.append(f["fd"])
        elif kind == "devnull":
            out.append(os.open("/dev/null", os.O_RDONLY))
        elif kind == "pipe":
            r, w = os.pipe()
            out += [r, w]
        elif kind == "socketpair":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            keep.append(b)
            out.append(a.detach())
        elif kind in ("tcp-listen", "tcp6-listen"):
            fam = socket.AF_INET6 if kind == "tcp6-listen" else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.bind(("::1" if fam == socket.AF_INET6 else "127.0.0.1", 0))
            s.listen(4)
            info.append({"kind": kind, "port": s.getsockname()[1]})
            out.append(s.detach())
        elif kind == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.connect(("127.0.0.1", 9))
            info.append({"kind": kind, "port": s.getsockname()[1]})
            out.append(s.detach())
        elif kind == "unix-listen":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(f["path"])
            s.listen(4)
            out.append(s.detach())
        elif kind == "unix-abstract":
            name = "fdstore-test-%d" % os.getpid()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind("\0" + name)
            info.append({"kind": kind, "name": name})
            out.append(s.detach())
        elif kind == "memfd":
            out.append(os.memfd_create("fdstore-test"))
        elif kind == "file":
            out.append(os.open(f["path"], os.O_RDWR | os.O_APPEND))
        else:
            raise SystemExit("unknown fd kind " + kind)
    return out


def main():
    spec = json.loads(sys.argv[1])
    info, keep = [], []
    result = {"pid": os.getpid(), "info": info}
    if spec["mode"] == "dgram":
        data = spec["data"].encode() if "data" in spec else b"x" * spec.get("size", 0)
        fds = make_fds(spec.get("fds", []), keep, info)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        s.sendmsg([data], anc, 0, spec["path"])
        print(json.dumps(result), flush=True)
        if spec.get("hold"):
            sys.stdin.read()
    else:
        kind = socket.SOCK_SEQPACKET if spec.get("type") == "seqpacket" else socket.SOCK_STREAM
        s = socket.socket(socket.AF_UNIX, kind)
        s.connect(spec["path"])
        if spec.get("recv"):
            msg, fds, flags, _ = socket.recv_fds(s, 65536, 300)
            result["received"] = {"data": msg.decode(), "fds": len(fds), "flags": flags}
            for fd in fds:
                os.close(fd)
        print(json.dumps(result), flush=True)
        if spec.get("hold"):
            sys.stdin.read()


main()
