#!/usr/bin/env python3
"""Plays the agent's side of the restore protocol (agent/include/proto.h) for the
launcher's unit tests: binds DIR/restore (SOCK_SEQPACKET), serves one connection
as told, prints "listening" once bound and, at the end, one JSON line with what
it saw. Misbehaviours (abort, close, stall, raw messages) are options, so each
test states exactly which agent it fakes. Not used against the real agent."""

import argparse
import array
import json
import os
import resource
import socket
import sys
import time

MAGIC = "FDSTORE-RESTORE 1\n"
FDS_PER_MSG = 253


def make_fds(args):
    """Returns (fds, names, keep): the fds to send, their names, and objects the
    peer keeps to talk to the app afterwards."""
    if args.trio:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.sendall(b"from-peer")
        mem = os.memfd_create("fdstore-test")
        os.write(mem, b"memfd-content")
        r, w = os.pipe()
        os.write(w, b"piped")
        os.close(w)
        return [theirs.detach(), mem, r], ["sock", "mem", "pipe"], ours
    # Each fd is a distinct object whose counter says which position it was sent
    # at, so the app can check every fd landed at the right number.
    fds = [os.eventfd(i + 1) for i in range(args.fds)]
    return fds, [f"{args.name_prefix}{i}" for i in range(args.fds)], None


def header(args, n):
    if args.raw_header is not None:
        return args.raw_header.encode().decode("unicode_escape").encode()
    lines = [MAGIC, f"fds={n if args.header_fds is None else args.header_fds}\n",
             f"notify={args.notify}\n", f"fdstore={args.fdstore}\n",
             f"watchdog_usec={args.watchdog_usec}\n"]
    lines += [line + "\n" for line in args.extra_header]
    return "".join(lines).encode()


def send(conn, data, fds=()):
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    conn.sendmsg([data], anc)


def stall():
    while True:
        time.sleep(3600)


def serve(conn, args, fds, names, keep):
    send(conn, header(args, len(fds)))
    batch = 0
    for start in range(0, len(fds), args.batch):
        if batch == args.abort_after:
            send(conn, b"X store is being cleaned\n")
            return {"sent": start}
        if batch == args.close_after:
            conn.close()
            return {"sent": start}
        if batch == args.stall_after:
            stall()
        chunk = fds[start:start + args.batch]
        msg = "F\n" + "".join(n + "\n" for n in names[start:start + args.batch])
        send(conn, msg.encode(), chunk)
        batch += 1
    if args.abort_after is not None and args.abort_after >= batch:
        send(conn, b"X store is being cleaned\n")
        return {"sent": len(fds)}
    if args.stall_after is not None and args.stall_after >= batch:
        stall()
    for raw in args.raw:
        send(conn, raw.encode().decode("unicode_escape").encode())
    send(conn, b"E\n")
    for fd in fds:
        os.close(fd)
    result = {"sent": len(fds)}
    if keep is not None:
        # The app writes through its end of the socketpair: proof it got our object.
        keep.settimeout(10)
        try:
            result["echo"] = keep.recv(100).decode()
        except socket.timeout:
            result["echo"] = None
    # Wait for the launcher to close its end so the test sees a finished restore.
    conn.settimeout(10)
    try:
        conn.recv(1)
    except (socket.timeout, OSError):
        pass
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--fds", type=int, default=0)
    p.add_argument("--trio", action="store_true")
    p.add_argument("--batch", type=int, default=FDS_PER_MSG)
    # "" makes the names of 19,000 fds fit Linux's 128 KiB limit on LISTEN_FDNAMES
    p.add_argument("--name-prefix", default="fd")
    p.add_argument("--notify", type=int, default=1)
    p.add_argument("--fdstore", type=int, default=0)
    p.add_argument("--watchdog-usec", type=int, default=0)
    p.add_argument("--header-fds", type=int)
    p.add_argument("--extra-header", action="append", default=[])
    p.add_argument("--raw-header")
    p.add_argument("--raw", action="append", default=[], help="message sent before E")
    p.add_argument("--abort-after", type=int, help="send X after this many batches")
    p.add_argument("--close-after", type=int, help="close after this many batches")
    p.add_argument("--stall-after", type=int, help="go silent after this many batches")
    args = p.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # Made before listening, so the launcher's timing does not include python's.
    fds, names, keep = make_fds(args)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(os.path.join(args.dir, "restore"))
    srv.listen(1)
    print("listening", flush=True)
    conn, _ = srv.accept()
    try:
        result = serve(conn, args, fds, names, keep)
    except (BrokenPipeError, ConnectionResetError) as e:
        result = {"error": e.__class__.__name__}  # the launcher gave up on us first
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
