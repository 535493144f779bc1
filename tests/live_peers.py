"""The other ends of tests/test_live.py's real capture, each run in a network namespace with ``ip netns exec``:

- ``gwlb``: plays the GWLB node. It sends GWLB-shaped Geneve (built with gwcheck.simulate.frames: the three AWS
  options, TTL 255) for each flow of ``FLOWS`` from its own UDP source port to the appliance's port 6081, both
  inner directions of a flow from the same port with the same cookie, counts what comes back to its port 6081,
  then makes ``HEALTH_CHECKS`` HTTP health checks to the appliance's port 80; it prints a JSON summary.
- ``appliance``: plays the appliance. It sends every datagram it receives on port 6081 straight back, payload
  unchanged, with the outer addresses swapped and the UDP ports kept (source = GWLB's port, destination 6081), as
  GWLB appliances do (shared/docs/gwlb.md); and answers HTTP on port 80 with 200 OK.

Run as ``python tests/live_peers.py gwlb APPLIANCE_IP`` or ``python tests/live_peers.py appliance APPLIANCE_IP``.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass

GENEVE_PORT = 6081
HEALTH_CHECK_PORT = 80
HEALTH_CHECKS = 3
ENDPOINTS = (0x31E129CDC0CD8633, 0x0AB1C2D3E4F50617)
ATTACHMENT_ID = 0
PACKETS_PER_DIRECTION = 4
SEND_GAP_S = 0.002
RETURN_WAIT_S = 3.0


@dataclass(frozen=True)
class Flow:
    proto: str  # tcp, udp or icmp
    client: str
    server: str
    client_port: int
    server_port: int
    endpoint: int
    cookie: int
    gwlb_port: int  # GWLB's outer UDP source port for this flow, both directions


FLOWS = (
    Flow("tcp", "10.1.0.1", "10.2.0.1", 40001, 443, ENDPOINTS[0], 0x3DC956A1, 50001),
    Flow("udp", "10.1.0.2", "10.2.0.2", 40002, 53, ENDPOINTS[1], 0x3DC956A2, 50002),
    Flow("icmp", "10.1.0.3", "10.2.0.3", 0x1234, 0, ENDPOINTS[0], 0x3DC956A3, 50003),
    Flow("tcp", "2001:db8:1::4", "2001:db8:2::4", 40004, 8443, ENDPOINTS[1], 0x3DC956A4, 50004),
    Flow("udp", "2001:db8:1::5", "2001:db8:2::5", 40005, 123, ENDPOINTS[0], 0x3DC956A5, 50005),
    Flow("icmp", "2001:db8:1::6", "2001:db8:2::6", 0x5678, 0, ENDPOINTS[1], 0x3DC956A6, 50006),
)
GENEVE_PACKETS_IN = len(FLOWS) * 2 * PACKETS_PER_DIRECTION  # into the appliance; as many come back out


def inner_packets(flow: Flow) -> list[bytes]:
    """The flow's inner IP packets in the order sent: client and server taking turns."""
    from gwcheck.simulate import frames as fr

    out = []
    for k in range(2 * PACKETS_PER_DIRECTION):
        forward = k % 2 == 0
        src, dst = (flow.client, flow.server) if forward else (flow.server, flow.client)
        sport, dport = (flow.client_port, flow.server_port) if forward else (flow.server_port, flow.client_port)
        payload = f"{flow.proto} {k}".encode()
        if flow.proto == "tcp":
            flags = [fr.TCP_SYN, fr.TCP_SYN | fr.TCP_ACK][k] if k < 2 else fr.TCP_ACK | fr.TCP_PSH
            l4 = fr.tcp(src, dst, sport, dport, 1000 + k, 2000 + k, flags, b"" if k < 2 else payload, mss=1360 if k < 2 else None)
            proto = fr.IPPROTO_TCP
        elif flow.proto == "udp":
            l4, proto = fr.udp(src, dst, sport, dport, payload), fr.IPPROTO_UDP
        else:
            l4, proto = fr.icmp_echo(src, dst, flow.client_port, k // 2, payload, reply=not forward), fr.icmp_protocol(src)
        out.append(fr.ip_packet(src, dst, proto, l4, ttl=64, ident=k))
    return out


def geneve_payloads(flow: Flow) -> list[bytes]:
    """What GWLB puts in the UDP datagrams of ``flow``: the Geneve header, the AWS options and the inner packet."""
    from gwcheck.simulate import frames as fr

    options = fr.aws_options(flow.endpoint, ATTACHMENT_ID, flow.cookie)
    return [fr.geneve(fr.geneve_protocol_of(inner), options, inner) for inner in inner_packets(flow)]


def run_gwlb(appliance: str) -> None:
    returns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    returns.bind(("0.0.0.0", GENEVE_PORT))
    returns.settimeout(0.2)
    senders = {}
    for flow in FLOWS:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)  # GWLB's outer TTL
        sender.bind(("0.0.0.0", flow.gwlb_port))
        senders[flow] = sender
    payloads = {flow: geneve_payloads(flow) for flow in FLOWS}
    sent = returned = 0
    for k in range(2 * PACKETS_PER_DIRECTION):
        for flow in FLOWS:
            senders[flow].sendto(payloads[flow][k], (appliance, GENEVE_PORT))
            sent += 1
            time.sleep(SEND_GAP_S)
    deadline = time.monotonic() + RETURN_WAIT_S
    while returned < sent and time.monotonic() < deadline:
        try:
            returns.recvfrom(65535)
            returned += 1
        except TimeoutError:
            continue
    healthy = 0
    for _ in range(HEALTH_CHECKS):
        connection = http.client.HTTPConnection(appliance, HEALTH_CHECK_PORT, timeout=5)
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        healthy += response.status == 200
        connection.close()
        time.sleep(0.05)
    print(json.dumps({"sent": sent, "returned": returned, "health_checks": HEALTH_CHECKS, "healthy": healthy}), flush=True)


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        body = b"healthy\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def run_appliance(address: str) -> None:
    server = http.server.ThreadingHTTPServer((address, HEALTH_CHECK_PORT), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((address, GENEVE_PORT))
    senders: dict[int, socket.socket] = {}
    print("ready", flush=True)
    while True:
        data, (gwlb, port) = receiver.recvfrom(65535)
        sender = senders.get(port)
        if sender is None:  # keep GWLB's source port: one socket bound to each
            sender = senders[port] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sender.bind((address, port))
        sender.sendto(data, (gwlb, GENEVE_PORT))


if __name__ == "__main__":
    role, address = sys.argv[1], sys.argv[2]
    {"gwlb": run_gwlb, "appliance": run_appliance}[role](address)
