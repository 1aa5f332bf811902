"""Where a proxy's added latency goes, hop by hop, from a loopback capture of
infra/bench/gateway.sh.

The bench client times whole requests; this splits them by the packets on the
wire. For each request through a proxy it pairs the client's request with the
proxy's request to chat-service that follows it, and prints medians (µs) of:

  req_fwd      the client's last request packet (the body) → the proxy's
               request to chat-service: the proxy's request path;
  up_head      that request → chat-service's reply head;
  up_first     that request → chat-service's first SSE event (`data:`);
  up_stream    chat-service's first event → its last packet (the turn);
  head_fwd     chat-service's head → the proxy's head to the client;
  first_fwd    chat-service's first event → the proxy's first event;
  end_fwd      chat-service's last packet → the proxy's last packet;
  total        the client's last request packet → its first event (SSE) or
               last reply packet (JSON);
and, per stream, how many packets chat-service wrote and how many the client
received. Requests straight to chat-service (the direct path) get up_head,
up_first, up_stream and total; with GATEWAY_FORM=1 those in the gateway's
request form (they carry the service token) are a path of their own,
"direct, gateway's form", so chat-service's figures can be compared across
the request forms (direct against it) and across what sits in front (it
against the gateway). chat-service's figures differ between paths
only through what the proxy in front changes: its requests, and the CPU it
takes from the machine meanwhile.

usage, as root (tcpdump needs it):
  tcpdump -i lo -n -s 2000 -w /tmp/gw.pcap tcp &
  N=1000 infra/bench/gateway.sh | tee /tmp/gw.log; kill %1
  python3 infra/bench/hops.py /tmp/gw.pcap CHAT_PORT GATEWAY_PORT NGINX_PORT
with the ports from the bench's second header line. Standard library only;
reads classic pcap files of Ethernet-framed IPv4 (what tcpdump writes on lo).
"""

from __future__ import annotations

import bisect
import struct
import sys
from collections import defaultdict
from statistics import median


def payloads(path: str):
    """(time, source port, destination port, TCP payload) of every TCP
    packet that carries data."""
    with open(path, "rb") as f:
        magic = f.read(24)[:4]
        nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        while len(header := f.read(16)) == 16:
            seconds, fraction, length, _ = struct.unpack("<IIII", header)
            frame = f.read(length)
            if frame[12:14] != b"\x08\x00":  # not IPv4
                continue
            ip = frame[14:]
            if ip[9] != 6:  # not TCP
                continue
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[(ip[0] & 15) * 4 : total]
            data = tcp[(tcp[12] >> 4) * 4 :]
            if data:
                source, destination = struct.unpack(">HH", tcp[:4])
                yield seconds + fraction / (1e9 if nanos else 1e6), source, destination, data


def exchanges(packets):
    """A connection's requests, each with its first and last packet's time
    and its reply packets."""
    out, current = [], None
    for time, to_server, data in packets:
        if to_server:
            if data.startswith((b"POST ", b"GET ")):
                current = {"first": time, "last": time, "head": data, "replies": []}
                out.append(current)
            elif current is not None and not current["replies"]:
                current["last"] = time
        elif current is not None:
            current["replies"].append((time, data))
    return out


def first_event(replies):
    return next((time for time, data in replies if b"data:" in data), None)


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    chat, gateway, nginx = map(int, sys.argv[2:5])
    connections = defaultdict(list)
    for time, source, destination, data in payloads(path):
        if destination in (chat, gateway, nginx):
            connections[(source, destination)].append((time, True, data))
        elif source in (chat, gateway, nginx):
            connections[(destination, source)].append((time, False, data))

    upstream = sorted(
        (e for key, packets in connections.items() if key[1] == chat for e in exchanges(packets)),
        key=lambda e: e["first"],
    )
    starts = [e["first"] for e in upstream]
    figures = defaultdict(lambda: defaultdict(list))

    def add_upstream(row, up):
        row["up_head"].append(up["replies"][0][0] - up["last"])
        first = first_event(up["replies"])
        if first is not None:
            row["up_first"].append(first - up["last"])
            row["up_stream"].append(up["replies"][-1][0] - first)
            row["chat-service packets"].append(len(up["replies"]))
        return first

    for proxy, port in (("gateway", gateway), ("nginx", nginx)):
        for key, packets in connections.items():
            if key[1] != port:
                continue
            for client in exchanges(packets):
                if not client["replies"]:
                    continue
                # The proxy's request to chat-service is the next one to start.
                i = bisect.bisect_left(starts, client["last"])
                if i == len(upstream) or not upstream[i]["replies"]:
                    continue
                up = upstream[i]
                if up["first"] > client["replies"][0][0]:
                    continue
                up["proxied"] = True
                sse = first_event(client["replies"]) is not None
                row = figures[(proxy, "sse" if sse else "json")]
                row["req_fwd"].append(up["first"] - client["last"])
                row["head_fwd"].append(client["replies"][0][0] - up["replies"][0][0])
                up_first = add_upstream(row, up)
                if sse and up_first is not None:
                    client_first = first_event(client["replies"])
                    row["first_fwd"].append(client_first - up_first)
                    row["end_fwd"].append(client["replies"][-1][0] - up["replies"][-1][0])
                    row["total"].append(client_first - client["last"])
                    row["client packets"].append(len(client["replies"]))
                else:
                    row["total"].append(client["replies"][-1][0] - client["last"])
    for up in upstream:
        if up.get("proxied") or not up["replies"]:
            continue
        sse = first_event(up["replies"]) is not None
        form = b"\r\nx-service-token:" in up["head"].lower()
        row = figures[("direct, gateway's form" if form else "direct", "sse" if sse else "json")]
        first = add_upstream(row, up)
        row["total"].append((first if sse else up["replies"][-1][0]) - up["last"])

    for (path_name, workload), row in sorted(figures.items()):
        print(f"{path_name} {workload} ({len(row['up_head'])} requests)")
        for name, values in row.items():
            if name.endswith("packets"):
                print(f"  {name:<22} mean {sum(values) / len(values):7.2f}")
            else:
                print(f"  {name:<22} p50 {median(values) * 1e6:8.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
