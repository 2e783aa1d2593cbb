"""Run by fdstore-exec: prints what it was given (names and inodes of fds 3..)."""
import json, os
n = int(os.environ.get('LISTEN_FDS', '0'))
names = os.environ.get('LISTEN_FDNAMES', '').split(':') if n else []
fds = []
for i in range(n):
    st = os.fstat(3 + i)
    fds.append({'name': names[i], 'ino': st.st_ino})
print(json.dumps({'pid': os.getpid(), 'listenPid': os.environ.get('LISTEN_PID'), 'fds': fds}))
