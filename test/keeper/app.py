"""An app for the keeper tests: stores, removes and acknowledges (BARRIER=1) on a
notify socket, one JSON command per stdin line, one JSON answer per stdout line.
Stored memfds are closed here after sending (only the store holds them); for
socketpairs the app keeps the peer end, so the stored end is polled and stays up."""
import array, json, os, select, socket, sys

peers = []

def send(path, msg, fds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))] if fds else []
        s.sendmsg([msg], anc, 0, path)
    finally:
        s.close()

def store(c):
    fds, inos = [], []
    for i in range(c['n']):
        if c.get('kind') == 'sock':
            a, b = socket.socketpair()
            peers.append(b)
            fd = a.detach()
        else:
            fd = os.memfd_create('%s-%d' % (c['name'], i))
        fds.append(fd)
        inos.append(os.fstat(fd).st_ino)
    try:
        send(c['path'], ('FDSTORE=1\nFDNAME=%s' % c['name']).encode(), fds)
        return {'ok': True, 'inodes': inos}
    except OSError as e:
        return {'ok': False, 'errno': e.errno, 'inodes': inos}
    finally:
        for fd in fds:
            os.close(fd)

def remove(c):
    try:
        send(c['path'], ('FDSTOREREMOVE=1\nFDNAME=%s' % c['name']).encode(), [])
        return {'ok': True}
    except OSError as e:
        return {'ok': False, 'errno': e.errno}

def barrier(c):
    r, w = os.pipe()
    try:
        send(c['path'], b'BARRIER=1', [w])
    except OSError as e:
        os.close(r)
        return {'ok': True, 'acked': False, 'errno': e.errno}
    finally:
        os.close(w)
    p = select.poll()
    p.register(r, select.POLLHUP)
    acked = len(p.poll(c.get('timeoutMs', 5000))) > 0
    os.close(r)
    return {'ok': True, 'acked': acked}

def hangup(c):
    """Close the app's end of every socketpair: the stored ends hang up."""
    n = len(peers)
    for p in peers:
        p.close()
    peers.clear()
    return {'ok': True, 'closed': n}

OPS = {'store': store, 'remove': remove, 'barrier': barrier, 'hangup': hangup}
for line in sys.stdin:
    c = json.loads(line)
    if c['op'] == 'exit':
        break
    try:
        out = OPS[c['op']](c)
    except Exception as e:  # answer, never die: the test reads the reason
        out = {'ok': False, 'error': repr(e)}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
