"""The kernel's cost of one hop on this machine (issue 20).

Frames of SIZE bytes sent over CONNS loopback TCP connections, one send and
one receive each, read with epoll as a server would; prints the system CPU
(the kernel's part, which does not depend on this being Python) per frame.

    python3 infra/bench/hop.py 500 200000 150
"""
import os, selectors, socket, sys, time
CONNS, FRAMES, SIZE = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
lsock = socket.socket(); lsock.bind(("127.0.0.1", 0)); lsock.listen(4096)
pairs = []
for _ in range(CONNS):
    c = socket.create_connection(lsock.getsockname()); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s, _ = lsock.accept(); s.setblocking(False); pairs.append((c, s))
sel = selectors.EpollSelector()
for _, s in pairs: sel.register(s, selectors.EVENT_READ)
frame = b"x" * SIZE
t0 = os.times(); got = 0; sent = 0
while sent < FRAMES:
    # one frame on each of a slice of the connections, then read what arrived,
    # as a server sees many streams each with a token now and then
    for c, _ in pairs[: 50]:
        c.send(frame); sent += 1
    pairs = pairs[50:] + pairs[:50]
    for key, _ in sel.select(0):
        got += len(key.fileobj.recv(65536))
while got < sent * SIZE:
    for key, _ in sel.select(1):
        got += len(key.fileobj.recv(65536))
t1 = os.times()
print(f"{FRAMES} frames of {SIZE} B over {CONNS} connections: system CPU {(t1.system - t0.system) / FRAMES * 1e6:.2f} µs per frame (send + receive + epoll), user {(t1.user - t0.user) / FRAMES * 1e6:.2f} µs")
