#!/usr/bin/python3
"""A DHCP client and packet tool for the end-to-end tests (run with /usr/bin/python3, which has scapy).

usage: dhcp_client.py IFACE exchange [--type T] [--mac M] [options...]   one message, then the replies seen
       dhcp_client.py IFACE garbage                                     hostile datagrams at port 67
       dhcp_client.py IFACE flood --mac M --count N                     N DISCOVERs from one MAC, fast
       dhcp_client.py IFACE watch                                       one JSON line per DHCP reply seen

Every command prints JSON on stdout: exchange and flood one object, garbage one object with the count of each
kind of datagram it sent (by what the server should make of it), watch one object per line as packets arrive.

Messages go out as Ethernet broadcasts from 0.0.0.0:68 through a packet socket on IFACE (no address needed),
unless --unicast is given: then through an ordinary UDP socket bound to --bind (default --ciaddr), for a client
that has its address (a renewal, a PXE boot-server REQUEST to port 4011) or for playing a relay agent. Replies
are read from the same socket: every UDP datagram from port 67 or 4011 with our xid, as JSON (header fields,
and every option as hex by code, overload followed). Only ever run this inside a namespace a test made.
"""
import argparse
import json
import random
import select
import socket
import struct
import sys
import time

from scapy.arch.linux import L2ListenSocket  # noqa: F401  (loads the Linux packet sockets)
from scapy.config import conf
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

conf.verb = 0
COOKIE = bytes([99, 130, 83, 99])
TYPES = {"discover": 1, "offer": 2, "request": 3, "decline": 4, "ack": 5, "nak": 6, "release": 7, "inform": 8}
NAMES = {v: k for k, v in TYPES.items()}
REPLY_FILTER = "udp and (src port 67 or src port 4011)"


def mac_bytes(mac):
    return bytes(int(part, 16) for part in mac.split(":"))


def ip_bytes(address):
    return socket.inet_aton(address)


def option(code, value):
    return bytes([code, len(value)]) + value


def header(op=1, htype=1, hlen=6, xid=0, secs=0, flags=0, ciaddr="0.0.0.0", yiaddr="0.0.0.0", giaddr="0.0.0.0",
           chaddr=b"", sname=b"", file=b""):
    return (struct.pack("!BBBBIHH", op, htype, hlen, 0, xid, secs, flags) + ip_bytes(ciaddr) + ip_bytes(yiaddr)
            + ip_bytes("0.0.0.0") + ip_bytes(giaddr) + chaddr.ljust(16, b"\0") + sname.ljust(64, b"\0")
            + file.ljust(128, b"\0"))


def build(args):
    """The DHCP payload the exchange flags describe."""
    opts = b""
    if args.type != "none":
        opts += option(53, bytes([TYPES[args.type]]))
    if args.requested:
        opts += option(50, ip_bytes(args.requested))
    if args.server_id:
        opts += option(54, ip_bytes(args.server_id))
    if args.vendor_class is not None:
        opts += option(60, args.vendor_class.encode())
    if args.arch:
        opts += option(93, b"".join(struct.pack("!H", a) for a in args.arch))
        opts += option(94, bytes([1, 3, 0]))
    if args.uuid:
        opts += option(97, b"\0" + bytes.fromhex(args.uuid.replace("-", "")))
    if args.user_class is not None:
        # As iPXE sends it: the text alone, not RFC 3004's length-prefixed list.
        opts += option(77, args.user_class.encode())
    if args.ipxe:
        # iPXE's feature flags: 175.19 (HTTP) = 1, 175.235 (version) = 1.21.1.
        opts += option(175, bytes([19, 1, 1, 235, 3, 1, 21, 1]))
    if args.hostname:
        opts += option(12, args.hostname.encode())
    opts += option(55, bytes(int(c) for c in args.params.split(",")))
    for raw in args.option:
        code, _, value = raw.partition(":")
        opts += option(int(code), bytes.fromhex(value))
    flags = 0x8000 if args.broadcast_flag else 0
    return header(xid=args.xid, flags=flags, ciaddr=args.ciaddr, giaddr=args.giaddr,
                  chaddr=mac_bytes(args.mac)) + COOKIE + opts + b"\xff"


def parse_options(data, into, order):
    at = 0
    while at < len(data):
        code = data[at]
        if code == 0:
            at += 1
            continue
        if code == 255 or at + 1 >= len(data):
            break
        length = data[at + 1]
        into.setdefault(str(code), "")
        into[str(code)] += data[at + 2:at + 2 + length].hex()
        order.append(code)
        at += 2 + length


def text(field):
    return field.split(b"\0", 1)[0].decode("latin1")


def parse_reply(payload, src, dst, sport, dport):
    """A reply as JSON: header fields, and every option as hex by code (overload followed)."""
    if len(payload) < 240 or payload[236:240] != COOKIE:
        return {"src": src, "dst": dst, "sport": sport, "dport": dport, "malformed": payload.hex()}
    op, htype, hlen, hops, xid, secs, flags = struct.unpack("!BBBBIHH", payload[:12])
    addr = lambda at: socket.inet_ntoa(payload[at:at + 4])  # noqa: E731
    options, order = {}, []
    parse_options(payload[240:], options, order)
    overload = options.pop("52", "")
    sname, file = text(payload[44:108]), text(payload[108:236])
    if overload in ("01", "03"):
        parse_options(payload[108:236], options, order)
        file = ""
    if overload in ("02", "03"):
        parse_options(payload[44:108], options, order)
        sname = ""
    message = options.get("53", "")
    return {
        "src": src, "dst": dst, "sport": sport, "dport": dport, "op": op, "xid": xid, "flags": flags,
        "ciaddr": addr(12), "yiaddr": addr(16), "siaddr": addr(20), "giaddr": addr(24),
        "chaddr": ":".join("%02x" % b for b in payload[28:28 + min(hlen, 16)]), "sname": sname, "file": file,
        "type": NAMES.get(int(message[:2], 16), "other") if message else None, "options": options, "order": order,
        "length": len(payload),
    }


def frame(payload, src_mac, sport=68, dport=67, src="0.0.0.0", dst="255.255.255.255"):
    return Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload


def replies_from(packet):
    if not packet.haslayer(UDP) or not packet.haslayer(IP):
        return None
    ip, udp = packet[IP], packet[UDP]
    return parse_reply(bytes(udp.payload), ip.src, ip.dst, udp.sport, udp.dport)


def collect(sock, xid, timeout, count):
    """Replies with our xid until `count` of them or `timeout` seconds, whichever is first."""
    replies = []
    deadline = time.monotonic() + timeout
    while len(replies) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        packet = sock.recv()
        reply = packet and replies_from(packet)
        if reply and reply.get("xid") == xid and reply.get("op") == 2:
            replies.append(reply)
    return replies


def exchange(args):
    args.xid = args.xid if args.xid is not None else random.getrandbits(32)
    payload = build(args)
    if args.unicast:
        host, port = args.unicast.rsplit(":", 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.bind((args.bind or args.ciaddr, args.sport))
        udp.sendto(payload, (host, int(port)))
        replies = []
        deadline = time.monotonic() + args.timeout
        while len(replies) < args.count and time.monotonic() < deadline:
            udp.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, (src, sport) = udp.recvfrom(4096)
            except socket.timeout:
                break
            reply = parse_reply(data, src, args.bind or args.ciaddr, sport, args.sport)
            if reply.get("xid") == args.xid:
                replies.append(reply)
        udp.close()
    else:
        sock = conf.L2socket(iface=args.iface, filter=REPLY_FILTER)
        try:
            sock.send(frame(payload, args.mac, sport=args.sport, dport=args.dport, src=args.src, dst=args.dst))
            replies = collect(sock, args.xid, args.timeout, args.count)
        finally:
            sock.close()
    print(json.dumps({"xid": args.xid, "mac": args.mac, "replies": replies}))


def garbage(args):
    """Hostile datagrams, each labelled with what the server should count it as."""
    rng = random.Random(4242)
    mac = lambda: bytes([2]) + bytes(rng.getrandbits(8) for _ in range(5))  # noqa: E731
    fmt_mac = lambda b: ":".join("%02x" % x for x in b)  # noqa: E731

    def discover(chaddr, extra=b"", end=True, **fields):
        opts = option(53, b"\x01") + option(61, b"\x01" + chaddr) + option(60, b"udhcp 1.35.0")
        opts += option(55, bytes([1, 3, 6, 12, 15, 28, 42])) + extra
        return header(xid=rng.getrandbits(32), chaddr=chaddr, **fields) + COOKIE + opts + (b"\xff" if end else b"")

    cases = []  # (label, payload)
    # Random bytes, many lengths: short of the 240-byte header and cookie, or a cookie that cannot match.
    for length in [2, 3, 4, 7, 16, 64, 100, 200, 235, 236, 239, 240, 241, 300, 548, 576, 1000, 1400, 1472]:
        data = bytes(rng.getrandbits(8) for _ in range(length))
        assert data[236:240] != COOKIE
        cases.append(("malformed", data))
    cases.append(("malformed", b""))  # 0 bytes
    cases.append(("malformed", b"\x01"))  # 1 byte
    # A real DISCOVER cut short: inside the fixed header, and inside each option (code alone, code + length,
    # part of the value), never at an option boundary, where what is left would still be a valid message.
    real = discover(mac(), end=False)
    for cut in [1, 28, 100, 235, 236, 239]:
        cases.append(("malformed", real[:cut]))
    at = 240
    while at < len(real):
        length = real[at + 1]
        cases.append(("malformed", real[:at + 1]))
        if length > 0:
            cases.append(("malformed", real[:at + 2]))
        if length > 1:
            cases.append(("malformed", real[:at + 2 + length - 1]))
        at += 2 + length
    # Wrong magic cookie.
    good = discover(mac())
    cases.append(("malformed", good[:236] + b"\x63\x82\x53\x64" + good[240:]))
    cases.append(("malformed", good[:236] + b"\0\0\0\0" + good[240:]))
    # An option whose length runs past the end.
    cases.append(("malformed", discover(mac(), extra=b"\x0c\xf0abc", end=False)))
    cases.append(("malformed", discover(mac(), extra=b"\x2b")))  # the END itself taken as a length
    # Option overload (52) pointing at garbage: `file` and `sname` holding options that run past their field.
    cases.append(("malformed", discover(mac(), extra=option(52, b"\x03"), file=b"\x0c\xc8garbage")))
    cases.append(("malformed", discover(mac(), extra=option(52, b"\x02"), sname=bytes([43, 100]) + b"\xee" * 40)))
    cases.append(("malformed", discover(mac(), extra=option(52, b"\x01"), file=b"\x01\xff\xff\xff\xff")))
    cases.append(("malformed", discover(mac(), extra=option(52, b"\x09"))))  # not 1, 2 or 3
    cases.append(("malformed", discover(mac(), extra=option(52, b"\x01\x02"))))  # two octets
    # hlen 200; op 0 and op 7.
    cases.append(("malformed", discover(mac(), hlen=200)))
    cases.append(("malformed", discover(mac(), op=0)))
    cases.append(("malformed", discover(mac(), op=7)))
    # An oversized datagram: 1400 bytes of a real header and cookie, then an option that overruns it.
    big = discover(mac(), end=False)
    cases.append(("malformed", big + b"\0" * (1400 - len(big) - 12) + b"\x2b\xff" + b"\xab" * 10))
    # Replies (op 2) are not for a server.
    for _ in range(3):
        reply = bytearray(discover(mac()))
        reply[0] = 2
        cases.append(("not-a-request", bytes(reply)))
    # No usable MAC (htype 6, or hlen 0) or no option 53 (BOOTP): not DHCP.
    cases.append(("not-dhcp", discover(mac(), htype=6)))
    cases.append(("not-dhcp", discover(mac(), hlen=0)))
    chaddr = mac()
    cases.append(("not-dhcp", header(xid=1, chaddr=chaddr) + COOKIE + option(55, b"\x01\x03") + b"\xff"))
    # A valid DISCOVER padded to 1400 bytes with PAD options: large, but a real request that deserves an OFFER.
    padded = discover(mac(), end=False)
    cases.append(("valid", padded + b"\0" * (1400 - len(padded) - 1) + b"\xff"))

    sock = conf.L2socket(iface=args.iface)
    src_mac = "02:66:66:66:66:66"
    try:
        for _, payload in cases:
            sock.send(frame(payload, src_mac))
            # Paced: the server's socket buffer must not overflow, or the counts below would not be exact.
            time.sleep(0.004)
    finally:
        sock.close()
    expect = {}
    for label, _ in cases:
        expect[label] = expect.get(label, 0) + 1
    valid_macs = [fmt_mac(p[28:34]) for label, p in cases if label == "valid"]
    print(json.dumps({"sent": len(cases), "expect": expect, "validMacs": valid_macs,
                      "lengths": sorted({len(p) for _, p in cases})}))


def flood(args):
    sock = conf.L2socket(iface=args.iface)
    frames = []
    for _ in range(args.count):
        args.xid = random.getrandbits(32)
        frames.append(bytes(frame(build(args), args.mac)))
    print(json.dumps({"flooding": args.count}), flush=True)
    started = time.monotonic()
    try:
        for raw in frames:
            sock.send(raw)
            if args.interval:
                time.sleep(args.interval)
    finally:
        sock.close()
    print(json.dumps({"sent": args.count, "seconds": round(time.monotonic() - started, 3)}))


def watch(args):
    sock = conf.L2socket(iface=args.iface, filter=REPLY_FILTER)
    deadline = time.monotonic() + args.seconds
    print(json.dumps({"watching": args.iface}), flush=True)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([sock], [], [], min(0.5, max(0.0, deadline - time.monotonic())))
            if not ready:
                continue
            packet = sock.recv()
            reply = packet and replies_from(packet)
            if reply:
                print(json.dumps(reply), flush=True)
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("iface")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("exchange", "flood"):
        p = sub.add_parser(name)
        p.add_argument("--mac", required=True)
        p.add_argument("--type", default="discover", choices=[*TYPES, "none"])
        p.add_argument("--xid", type=lambda s: int(s, 0))
        p.add_argument("--ciaddr", default="0.0.0.0")
        p.add_argument("--giaddr", default="0.0.0.0")
        p.add_argument("--requested", help="option 50")
        p.add_argument("--server-id", help="option 54")
        p.add_argument("--vendor-class", help="option 60")
        p.add_argument("--arch", type=int, action="append", default=[], help="option 93 (repeat for several)")
        p.add_argument("--uuid", help="option 97: 32 hex digits")
        p.add_argument("--user-class", help="option 77")
        p.add_argument("--ipxe", action="store_true", help="option 175, as iPXE sends it")
        p.add_argument("--hostname", help="option 12")
        p.add_argument("--params", default="1,3,6,12,15,28,42,43,60,66,67,97,175", help="option 55")
        p.add_argument("--option", action="append", default=[], help="CODE:HEX, raw (repeatable)")
        p.add_argument("--broadcast-flag", action="store_true")
        p.add_argument("--src", default="0.0.0.0")
        p.add_argument("--dst", default="255.255.255.255")
        p.add_argument("--sport", type=int, default=68)
        p.add_argument("--dport", type=int, default=67)
        p.add_argument("--unicast", metavar="HOST:PORT", help="send by UDP socket from --bind:--sport")
        p.add_argument("--bind", help="--unicast: the local address (default --ciaddr)")
        p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for replies")
        p.add_argument("--count", type=int, default=1, help="stop after this many replies")
        p.add_argument("--interval", type=float, default=0.0, help="flood: seconds between packets")
    sub.add_parser("garbage")
    p = sub.add_parser("watch")
    p.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    {"exchange": exchange, "garbage": garbage, "flood": flood, "watch": watch}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
