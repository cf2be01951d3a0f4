#!/usr/bin/python3
"""Hostile and truncated datagrams for a TFTP server under test (run with /usr/bin/python3, which has scapy).

usage: tftp_hostile.py HOST PORT FILE [SPRAY_SOURCE]

1. Sprays the listener at HOST:PORT with malformed requests (scapy, from throwaway source ports, and from the
   address SPRAY_SOURCE if given: the requests that start transfers then hold no slots of the real client).
2. Downloads FILE lock-step with a plain socket; after block 2 it sprays the transfer's port from a foreign port
   (scapy, so the foreign socket only receives) and sends garbage from the client's own port, then finishes.
3. Prints one JSON line: the download's sha256 and size, the server's replies to the foreign port, and how many
   datagrams were sprayed.

Only ever point this at a server the test itself started on loopback or inside its own namespace.
"""
import hashlib
import json
import random
import socket
import struct
import sys

from scapy.all import IP, UDP, Raw, conf, send  # noqa: E402
from scapy.supersocket import L3RawSocket

conf.verb = 0
# Loopback needs raw IP sockets; the default packet socket does not deliver locally.
conf.L3socket = L3RawSocket

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
spray_source = sys.argv[4] if len(sys.argv) > 4 else None
sent = 0


def rrq(filename, *fields, mode=b"octet"):
    return b"\x00\x01" + filename + b"\x00" + mode + b"\x00" + b"".join(f + b"\x00" for f in fields)


def spray(dport, payloads, sport=None, src=None, **udp):
    global sent
    for payload in payloads:
        # Each datagram from its own source port unless told otherwise, so that no request is taken for a
        # retransmission of the one before (scapy's default source port is always 53).
        fields = dict(dport=dport, sport=sport if sport is not None else random.randint(20000, 60000), **udp)
        packet = (IP(dst=host, src=src) if src else IP(dst=host)) / UDP(**fields)
        if payload:
            packet = packet / Raw(load=payload)
        send(packet)
        sent += 1


many_options = [part for i in range(500) for part in (b"opt%d" % i, b"%d" % i)]
listener = [
    b"",  # empty
    b"\x00",  # one byte
    b"\x01",
    b"\x00\x09" + name + b"\x00octet\x00",  # no such opcode
    b"\xff\xff\xff\xff",
    b"\x00\x01" + name,  # RRQ, no NUL after the file name
    b"\x00\x01" + name + b"\x00octet",  # RRQ, no NUL after the mode
    b"\x00\x01\x00\x00",  # empty file name and mode
    rrq(name, *many_options),  # 500 options
    rrq(name, b"blksize", b"abc"),
    rrq(name, b"blksize", b"0"),
    rrq(name, b"blksize", b"99999999999999999999"),
    rrq(name, b"windowsize", b"0"),
    rrq(name, b"windowsize", b"-3"),
    rrq(name, b"timeout", b"0"),
    rrq(name, b"tsize", b"-1"),
    rrq(name, b"blksize", b"1468", b"blksize", b"8"),  # the same option twice
    rrq(name, b"blksize"),  # an option without a value
    rrq(name, mode=b"mail"),
    rrq(name, mode=b"bogus"),
    rrq(b"x" * 1400),  # a long file name
    rrq(b"a\x00b"),  # a NUL inside what looks like the file name
    b"\x00\x03\x00\x01hello",  # DATA to the listener
    b"\x00\x04\x00\x01",  # ACK to the listener
    b"\x00\x05\x00\x00oops\x00",  # ERROR to the listener
    b"\x00\x06blksize\x00512\x00",  # OACK to the listener
]
spray(port, listener, src=spray_source)
# A UDP length field that lies (the kernel should drop it) and a bad checksum.
spray(port, [rrq(name)], src=spray_source, len=200)
spray(port, [rrq(name)], src=spray_source, chksum=0x1234)

# A lock-step download with a plain socket, disturbed after block 2.
family = socket.AF_INET6 if ":" in host else socket.AF_INET
client = socket.socket(family, socket.SOCK_DGRAM)
client.bind((host, 0))
client.settimeout(2)
foreign = socket.socket(family, socket.SOCK_DGRAM)
foreign.bind((host, 0))
foreign_port = foreign.getsockname()[1]
client.sendto(rrq(name), (host, port))
expected = 1
digest = hashlib.sha256()
size = 0
server = None
last_ack = None
timeouts = 0
while True:
    try:
        packet, peer = client.recvfrom(70000)
    except socket.timeout:
        timeouts += 1
        if timeouts > 10:
            sys.exit("the transfer stalled after block %d" % (expected - 1))
        if last_ack:
            client.sendto(last_ack, server)
        continue
    if server is None:
        server = peer
    if peer != server or len(packet) < 4:
        continue
    opcode, block = struct.unpack("!HH", packet[:4])
    if opcode == 5:
        sys.exit("the server aborted the transfer: %r" % packet)
    if opcode != 3 or block != expected & 0xFFFF:
        continue
    data = packet[4:]
    digest.update(data)
    size += len(data)
    last_ack = struct.pack("!HH", 4, block)
    if expected == 2:
        transfer_port = server[1]
        spray(
            transfer_port,
            [
                b"",
                b"\x00",
                b"\x00\x09\x00\x00",  # no such opcode
                struct.pack("!HH", 4, 2),  # an ACK that would be right from the real client
                struct.pack("!HH", 3, 3) + b"x" * 512,  # DATA
                b"\x00\x05\x00\x00stop\x00",  # an ERROR must not abort someone else's transfer
                rrq(name),
            ],
            sport=foreign_port,
        )
        # Garbage from the real client's own port must be dropped, not end the transfer.
        client.sendto(b"", server)
        client.sendto(b"\x00", server)
        client.sendto(b"\x00\x09\x00\x00", server)
        sent += 3
    client.sendto(last_ack, server)
    expected += 1
    if len(data) < 512:
        break

foreign.settimeout(1)
replies = []
try:
    while True:
        packet, peer = foreign.recvfrom(70000)
        code = struct.unpack("!H", packet[2:4])[0] if len(packet) >= 4 else None
        replies.append({"opcode": struct.unpack("!H", packet[:2])[0], "code": code, "port": peer[1]})
except socket.timeout:
    pass

print(
    json.dumps(
        {
            "sha256": digest.hexdigest(),
            "size": size,
            "transferPort": server[1],
            "foreignReplies": replies,
            "sprayed": sent,
        }
    )
)
