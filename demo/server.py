#!/usr/bin/env python3
"""The demo's HTTP server: a plain app that speaks systemd's public protocol with
the standard library only (no python3-systemd needed).

First start: bind the listening socket and push it to the fd store
(FDSTORE=1, FDNAME=http). Later starts: take it from LISTEN_FDS. On SIGTERM it
stops accepting, finishes the requests it has, and exits, as a rollout stops it.
On SIGUSR1 it sends WATCHDOG=trigger, as an app that finds itself wedged would:
the agent's /livez fails and the kubelet restarts the container (the e2e test's
"liveness fails once").
"""
import http.server
import os
import signal
import socket
import sys
import threading

SD_LISTEN_FDS_START = 3


def notify(state, fds=()):
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    addr = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(_ints(fds))))] if fds else []
            s.sendmsg([state.encode()], anc, 0, addr)
    except OSError:
        return False  # like sd_notify: an absent manager is not the app's failure
    return True


def _ints(fds):
    import array
    return array.array("i", fds)


def listen_fds():
    """LISTEN_FDS as sd_listen_fds_with_names() reads it: {name: fd}."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return {}
    n = int(os.environ.get("LISTEN_FDS", "0"))
    names = os.environ.get("LISTEN_FDNAMES", "").split(":") if n else []
    return {names[i] if i < len(names) else "unknown": SD_LISTEN_FDS_START + i for i in range(n)}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def do_GET(self):
        body = f"pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    # Where a first start binds: loopback for the local demo; 0.0.0.0 behind a Service.
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    fds = listen_fds()
    if "http" in fds:
        sock = socket.socket(fileno=fds["http"])
        origin = "fd store"
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        origin = "bound"
        notify("FDSTORE=1\nFDNAME=http", [sock.fileno()])
    server = http.server.ThreadingHTTPServer((host, port), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = False  # server_close() waits for requests in progress

    def stop(*_):
        notify("STOPPING=1")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, lambda *_: notify("WATCHDOG=trigger\nSTATUS=watchdog triggered (SIGUSR1)"))
    notify(f"READY=1\nSTATUS=serving on port {port}, socket {origin}")
    print(f"server pid {os.getpid()}: socket {origin}", file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.05)
    server.server_close()


if __name__ == "__main__":
    main()
