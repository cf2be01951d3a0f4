#!/usr/bin/python3
"""A constant-delay line for one direction of a namespace link, for kernels without sch_netem.

Binds NFQUEUE queue N in the current network namespace (iptables-legacy `-j NFQUEUE --queue-num N` sends packets
to it), keeps each packet in the kernel for DELAY microseconds after it arrived here, then accepts it with one batch
verdict for everything that is due. Only packet ids travel to user space (copy mode META), so the cost per packet
is one small netlink message. Prints "ready" once bound; exits on SIGTERM/SIGINT, printing its counters.

usage: delayline.py QUEUE_NUM DELAY_US
"""

import collections
import ctypes
import errno
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


def run(sock, queue, delay, pending, counters, now):
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
                data = sock.recv(65536)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    print("delayline: ENOBUFS (packets lost to the queue)", file=sys.stderr, flush=True)
                    continue
                raise
            arrived = now()
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
                            break
                        at += (alen + 3) & ~3
                offset += (length + 3) & ~3
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


if __name__ == "__main__":
    main()
