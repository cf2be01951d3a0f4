#!/usr/bin/python3
"""A constant-delay line for one direction of a namespace link, for kernels without sch_netem.

Binds NFQUEUE queue N in the current network namespace (iptables-legacy `-j NFQUEUE --queue-num N` sends packets
to it), keeps each packet in the kernel for DELAY microseconds after it arrived here, then accepts it with one batch
verdict for everything that is due. Only packet ids travel to user space (copy mode META), so the cost per packet
is one small netlink message. Prints "ready" once bound; exits on SIGTERM/SIGINT, printing its counters.

Arrival times. The kernel gives no enqueue time (netlink has no receive timestamps, and locally sent packets carry
none for NFQA_TIMESTAMP), so a packet's arrival is when this process read it. Messages are read with recvmmsg,
all that are queued in one call, and every message of a call gets the time the call returned: it was in the queue
by then. Reading them one recv() each, with ~4 us of Python per message, stamped the 15th packet of a burst that a
server handed to the kernel at once (one UDP GSO send) ~55 us after the first, and so held the end of such a window
~55 us longer than 1 ms, while a server sending one datagram per syscall (~4-8 us apart) was stamped as it sent.
Without recvmmsg (ctypes unusable) it falls back to one recv() per message.

DELAYLINE_LOG=FILE writes every arrival and verdict time (JSON: [kind, seconds, packet id], kind 0 = arrived,
1 = accepted through this id) to FILE at exit, to study the timing.

usage: delayline.py QUEUE_NUM DELAY_US
"""

import collections
import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NFQNL_CFG_CMD_BIND = 1
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
PR_SET_TIMERSLACK = 29
MSG_DONTWAIT = 0x40


LOG = []  # DELAYLINE_LOG


class Stop(Exception):
    pass


def attr(kind, payload):
    pad = (4 - len(payload) % 4) % 4
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * pad


def message(msg, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body


def configure(sock, queue, attrs):
    sock.send(message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK))
    reply = sock.recv(65536)
    _length, kind = struct.unpack_from("=IH", reply, 0)
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, 16)
        if code != 0:
            raise OSError(-code, f"nfqueue config: {os.strerror(-code)}")


def main():
    queue = int(sys.argv[1])
    delay = int(sys.argv[2]) / 1e6
    try:  # wake as close to the due time as the kernel allows (default slack is 50 us)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except OSError:
        pass
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: a burst must not overflow the socket
    sock.bind((0, 0))
    configure(sock, queue, [attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, socket.htons(socket.AF_INET)))])
    configure(sock, queue, [attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META))])
    configure(sock, queue, [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 1 << 20))])
    sock.setblocking(False)

    def on_signal(*_):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)

    pending = collections.deque()  # (due, packet id), in arrival order: due times only grow
    counters = {"packets": 0, "verdicts": 0, "late_max": 0.0, "late": [0] * 1001}  # late: 10 us buckets
    now = time.monotonic
    try:
        run(sock, queue, delay, pending, counters, now)
    except Stop:
        pass
    if pending:  # let whatever is still held go rather than drop it
        sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pending[-1][1]))]))
    if os.environ.get("DELAYLINE_LOG"):
        with open(os.environ["DELAYLINE_LOG"], "w") as out:
            json.dump(LOG, out)
    print(
        f"delayline: packets={counters['packets']} verdicts={counters['verdicts']}"
        f" released_late_us_p50={percentile(counters['late'], 0.5)} p99={percentile(counters['late'], 0.99)}"
        f" max={counters['late_max'] * 1e6:.0f}",
        flush=True,
    )


def percentile(buckets, q):
    """The q-quantile of the 10-us buckets, in microseconds (upper edge; 10000+ means at least 10 ms)."""
    total = sum(buckets)
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if total and seen >= q * total:
            return (index + 1) * 10
    return 0


class Receiver:
    """Reads every queued netlink message in one recvmmsg call: returns a list of messages ([] when none)."""

    VLEN = 256
    SIZE = 512  # a META-mode packet message is ~40-100 bytes

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.libc = None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            recvmmsg = libc.recvmmsg
        except (OSError, AttributeError):
            return

        class Iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

        class Msghdr(ctypes.Structure):
            _fields_ = [
                ("name", ctypes.c_void_p),
                ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(Iovec)),
                ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p),
                ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int),
            ]

        class Mmsghdr(ctypes.Structure):
            _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]

        recvmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(Mmsghdr), ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
        recvmmsg.restype = ctypes.c_int
        self.buffers = ctypes.create_string_buffer(self.VLEN * self.SIZE)
        self.iovecs = (Iovec * self.VLEN)()
        self.vec = (Mmsghdr * self.VLEN)()
        base = ctypes.addressof(self.buffers)
        for i in range(self.VLEN):
            self.iovecs[i].base = base + i * self.SIZE
            self.iovecs[i].len = self.SIZE
            self.vec[i].hdr.iov = ctypes.pointer(self.iovecs[i])
            self.vec[i].hdr.iovlen = 1
        self.view = memoryview(self.buffers).cast("B")  # messages are parsed before the next call overwrites them
        self.recvmmsg = recvmmsg
        self.libc = libc

    def read(self):
        if self.libc is None:
            try:
                return [self.sock.recv(65536)]
            except BlockingIOError:
                return []
        while True:
            count = self.recvmmsg(self.fd, self.vec, self.VLEN, MSG_DONTWAIT, None)
            if count >= 0:
                view = self.view
                return [view[i * self.SIZE : i * self.SIZE + self.vec[i].len] for i in range(count)]
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                return []
            if code == errno.EINTR:
                continue
            raise OSError(code, os.strerror(code))


def run(sock, queue, delay, pending, counters, now):
    receiver = Receiver(sock)
    log = LOG if os.environ.get("DELAYLINE_LOG") else None
    while True:
        timeout = None
        if pending:
            timeout = max(0.0, pending[0][0] - now())
        try:
            select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        while True:
            try:
                batch = receiver.read()
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    print("delayline: ENOBUFS (packets lost to the queue)", file=sys.stderr, flush=True)
                    continue
                raise
            if not batch:
                break
            arrived = now()  # every message of the batch was queued by now
            for data in batch:
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if length < 16:
                        break
                    if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                        at = offset + 20
                        end = offset + length
                        while at + 4 <= end:
                            alen, atype = struct.unpack_from("=HH", data, at)
                            if alen < 4:
                                break
                            if atype & 0x7FFF == NFQA_PACKET_HDR:
                                (packet_id,) = struct.unpack_from(">I", data, at + 4)
                                pending.append((arrived + delay, packet_id))
                                counters["packets"] += 1
                                if log is not None:
                                    log.append((0, arrived, packet_id))
                                break
                            at += (alen + 3) & ~3
                    offset += (length + 3) & ~3
            if len(batch) < Receiver.VLEN and receiver.libc is not None:
                break  # the queue was empty when the call returned
        t = now()
        last = None
        while pending and pending[0][0] <= t:
            due, last = pending.popleft()
            late = t - due
            counters["late_max"] = max(counters["late_max"], late)
            counters["late"][min(1000, int(late * 1e5))] += 1
            if late > 0.05:
                print(f"delayline: released {late * 1e3:.0f} ms late ({len(pending)} still held) at {time.time():.3f}", file=sys.stderr, flush=True)
        if last is not None:
            sock.send(message(NFQNL_MSG_VERDICT_BATCH, queue, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, last))]))
            counters["verdicts"] += 1
            if log is not None:
                log.append((1, now(), last))


if __name__ == "__main__":
    main()
