"""Run by fdstore-exec: READY=1 with a STATUS=, then serves until killed."""
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'READY=1\nSTATUS=serving from the keeper test', os.environ['NOTIFY_SOCKET'])
print(os.getpid(), flush=True)
time.sleep(3600)
