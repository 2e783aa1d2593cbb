#!/usr/bin/env python3
"""A restore peer and notify sender driven by JSON lines on stdin, one JSON answer
line per request. It connects to the real agent's DIR/restore (SOCK_SEQPACKET)
and reads as told, so a test can stall, flood, or stop a transfer after exactly
k messages; and it sends datagrams to DIR/notify with plain sendmsg (the kernel
queues a datagram before sendmsg returns), right before connecting, with no
round trip in between. Received fds are counted and closed at once.

Requests:
  {"op": "send", "data": "...", "fds": N}      one datagram with N fresh fds (unbound AF_UNIX
                                               datagram sockets: an inode each, so the agent's
                                               duplicate test is O(1), and they never hang up)
  {"op": "connect", "n": N}                    N restore connections, unread
  {"op": "read", "i": I, "msgs": K}            K messages of connection I
  {"op": "read-all"}                           every open connection to its end, in order
  {"op": "step", "sends": [...], "k": K}       the sends, then K connections, then read-all
  {"op": "close", "i": I}                      close one connection (omit i: all)
  {"op": "flood", "n": N}                      connect N times as fast as possible, never read
  {"op": "barrier"}                            BARRIER=1 with a pipe: answers once the agent
                                               applied every datagram sent before it
  {"op": "background", "k": K}                 a thread restores K at a time, in a loop, until
  {"op": "background-stop"}                    this; answers how many it read, and how they ended
  {"op": "exit"}
"""

import array
import json
import os
import resource
import select
import socket
import sys
import threading

FDS_PER_MSG = 253
MSG_MAX = 2 + FDS_PER_MSG * 256

run_dir = sys.argv[1]
notify_path = os.path.join(run_dir, "notify")
restore_path = os.path.join(run_dir, "restore")

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
conns = []


def send(data, nfds):
    fds = [socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).detach() for _ in range(nfds)]
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    notify.sendmsg([data.encode()], anc, 0, notify_path)
    for fd in fds:
        os.close(fd)


def barrier():
    r, w = os.pipe()
    notify.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))], 0, notify_path)
    os.close(w)
    p = select.poll()
    p.register(r, select.POLLHUP)
    acked = bool(p.poll(20_000))
    os.close(r)
    return acked


class Background:
    """Restores K at a time until stopped: other restores in flight."""

    def __init__(self, k):
        self.k = k
        self.stop = threading.Event()
        self.ends = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            mine = []
            for _ in range(self.k):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(restore_path)
                mine.append(s)
            for s in mine:
                end = read_to_end(s)["end"]
                self.ends[end] = self.ends.get(end, 0) + 1
                s.close()

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.ends


background = None


def connect(n):
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(restore_path)
        conns.append(s)
    return len(conns)


def recv_one(s):
    """(kind, text, names, nfds): kind is H(eader), F, E, X or eof."""
    data, anc, flags, _ = s.recvmsg(MSG_MAX, socket.CMSG_SPACE(FDS_PER_MSG * 4))
    nfds = 0
    for level, typ, payload in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in fds:
                os.close(fd)
            nfds += len(fds)
    text = data.decode()
    if data == b"":
        return "eof", "", [], 0
    if text.startswith("FDSTORE-RESTORE 1\n"):
        return "H", text, [], nfds
    if text.startswith("F\n"):
        return "F", text, text[2:].split("\n")[:-1], nfds
    if text == "E\n":
        return "E", text, [], nfds
    if text.startswith("X"):
        return "X", text[2:].rstrip("\n"), [], nfds
    return "?", text, [], nfds


def header_fds(text):
    for line in text.split("\n")[1:]:
        if line.startswith("fds="):
            return int(line[4:])
    return None


def read_to_end(s):
    out = {"names": [], "fds": 0, "header": None, "end": None}
    while True:
        try:
            kind, text, names, nfds = recv_one(s)
        except OSError as e:
            out["end"] = "error " + e.__class__.__name__
            return out
        out["fds"] += nfds
        if kind == "H":
            out["header"] = header_fds(text)
        elif kind == "F":
            out["names"] += names
        else:
            out["end"] = kind if kind != "X" else "X " + text
            return out


def read(i, msgs):
    got = {"msgs": 0, "fds": 0, "names": 0, "kinds": [], "header": None}
    for _ in range(msgs):
        kind, text, names, nfds = recv_one(conns[i])
        if kind == "H":
            got["header"] = header_fds(text)
        got["msgs"] += 1
        got["fds"] += nfds
        got["names"] += len(names)
        got["kinds"].append(kind)
        if kind in ("E", "X", "eof"):
            break
    return got


def read_all():
    res = [read_to_end(s) for s in conns]
    close_all()
    return res


def close_all():
    n = len(conns)
    for s in conns:
        s.close()
    conns.clear()
    return n


def handle(r):
    global background
    op = r["op"]
    if op == "send":
        send(r["data"], r.get("fds", 0))
        return {"ok": True}
    if op == "connect":
        return {"ok": True, "open": connect(r["n"])}
    if op == "read":
        return {"ok": True, **read(r["i"], r["msgs"])}
    if op == "read-all":
        return {"ok": True, "restores": read_all()}
    if op == "step":
        for m in r["sends"]:
            send(m["data"], m.get("fds", 0))
        connect(r["k"])
        return {"ok": True, "restores": read_all()}
    if op == "close":
        if "i" in r:
            conns[r["i"]].close()
            return {"ok": True}
        return {"ok": True, "closed": close_all()}
    if op == "flood":
        return {"ok": True, "open": connect(r["n"])}
    if op == "barrier":
        return {"ok": barrier()}
    if op == "background":
        background = Background(r["k"])
        return {"ok": True}
    if op == "background-stop":
        ends = background.finish()
        return {"ok": True, "ends": ends}
    if op == "exit":
        close_all()
        print(json.dumps({"ok": True}), flush=True)
        sys.exit(0)
    return {"ok": False, "error": "unknown op " + op}


for line in sys.stdin:
    try:
        answer = handle(json.loads(line))
    except Exception as e:  # the test sees the error as an answer, not a hang
        answer = {"ok": False, "error": f"{e.__class__.__name__}: {e}"}
    print(json.dumps(answer), flush=True)
