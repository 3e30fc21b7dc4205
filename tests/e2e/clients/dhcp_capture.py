#!/usr/bin/env python3
"""Records every DHCP packet an interface sends or receives, for the agent
tests: run inside an instance's namespace while its DHCP client runs.

    dhcp_capture.py IFACE OUT

A raw packet socket on IFACE sees each frame as the interface does, whatever
the client makes of it (a NAK the client ignores is recorded too). OUT.ready
appears once the socket is bound, so nothing sent after that is missed; then
each DHCP packet is one JSON line in OUT, written as it arrives:

    {"dir": "in" | "out", "src_mac", "src", "dst", "sport", "dport",
     "type": "DISCOVER" | "OFFER" | "REQUEST" | "ACK" | "NAK" | ...,
     "xid", "ciaddr", "yiaddr", "server_id", "requested", "message"}

Runs until SIGTERM.
"""
from __future__ import annotations

import json
import signal
import socket
import struct
import sys
from pathlib import Path

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
COOKIE = b"\x63\x82\x53\x63"
TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
         7: "RELEASE", 8: "INFORM"}


def options(data: bytes) -> dict[int, bytes]:
    """The options field, first occurrence of each code; stops at a truncated one."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(data) or i + 2 + data[i + 1] > len(data):
            break
        out.setdefault(code, data[i + 2:i + 2 + data[i + 1]])
        i += 2 + data[i + 1]
    return out


def addr(b: bytes | None) -> str | None:
    return socket.inet_ntoa(b) if b is not None and len(b) == 4 else None


def parse(frame: bytes, outgoing: bool) -> dict | None:
    """The DHCP fields of an Ethernet frame, or None if it carries no DHCP."""
    if len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != socket.IPPROTO_UDP or len(ip) < ihl + 8:
        return None
    udp = ip[ihl:]
    sport, dport = struct.unpack("!HH", udp[:4])
    if {sport, dport} != {67, 68}:
        return None
    bootp = udp[8:]
    if len(bootp) < 240 or bootp[236:240] != COOKIE:
        return None
    opts = options(bootp[240:])
    kind = opts.get(53, b"")
    return {
        "dir": "out" if outgoing else "in",
        "src_mac": ":".join(f"{b:02x}" for b in frame[6:12]),
        "src": addr(ip[12:16]),
        "dst": addr(ip[16:20]),
        "sport": sport,
        "dport": dport,
        "type": TYPES.get(kind[0], str(kind[0])) if kind else None,
        "xid": f"{struct.unpack('!I', bootp[4:8])[0]:08x}",
        "ciaddr": addr(bootp[12:16]),
        "yiaddr": addr(bootp[16:20]),
        "server_id": addr(opts.get(54)),
        "requested": addr(opts.get(50)),
        "message": opts[56].decode(errors="replace") if 56 in opts else None,
    }


def main() -> int:
    iface, out = sys.argv[1], Path(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # ETH_P_ALL: only a socket for every protocol sees what the interface
    # sends too (the client's requests).
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    with open(out, "a") as f:
        Path(f"{out}.ready").touch()
        while True:
            frame, (_, _, pkttype, _, _) = s.recvfrom(65535)
            p = parse(frame, pkttype == PACKET_OUTGOING)
            if p is not None:
                f.write(json.dumps(p) + "\n")
                f.flush()


if __name__ == "__main__":
    sys.exit(main())
