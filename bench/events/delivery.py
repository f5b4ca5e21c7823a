#!/usr/bin/env python3
"""Delivery latency of the broker to a warm function, on loopback.

Serves the function itself (127.0.0.1:<port>, answering 204) and posts binary-mode CloudEvents to the
broker ingress open loop at a fixed rate; the latency of one event is the time from just before its
POST to its arrival at the function (both clocks are this process's CLOCK_MONOTONIC). Prints JSON:
{"sent": n, "received": n, "p50_ms": x, "p90_ms": x, "p99_ms": x, "max_ms": x, "slowest_ms_and_seq": [...]}.

usage: delivery.py BROKER_URL FUNCTION_PORT RATE_PER_S SECONDS

With BROKER_URL pointing at the function itself (http://127.0.0.1:FUNCTION_PORT/) the same loop
measures the harness alone (direct POST), the baseline the broker figures are read against.
"""
import http.client
import http.server
import json
import sys
import threading
import time
import urllib.parse

broker, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
sent, arrived = {}, {}
lock = threading.Lock()


class Function(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        now = time.monotonic()
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with lock:
            arrived.setdefault(self.headers.get("ce-id"), now)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Function)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()

url = urllib.parse.urlsplit(broker)
conn = http.client.HTTPConnection(url.hostname, url.port)
n = int(rate * seconds)
start = time.monotonic()
for i in range(n):
    due = start + i / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    eid = f"bench-{i}"
    sent[eid] = time.monotonic()
    conn.request("POST", url.path, body=b'{"n":%d}' % i, headers={
        "ce-specversion": "1.0", "ce-id": eid, "ce-source": "/bench", "ce-type": "bench.delivery",
        "content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    if response.status // 100 != 2:
        del sent[eid]

deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    with lock:
        if all(e in arrived for e in sent):
            break
    time.sleep(0.05)

with lock:
    latencies = sorted((arrived[e] - t) * 1000 for e, t in sent.items() if e in arrived)


def pct(p):
    if not latencies:
        return None
    return round(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 3)


slowest = sorted(((arrived[e] - t) * 1000, int(e.split("-")[1])) for e, t in sent.items() if e in arrived)[-5:]
print(json.dumps({"sent": len(sent), "received": len(latencies), "p50_ms": pct(50), "p90_ms": pct(90),
                  "p99_ms": pct(99), "max_ms": pct(100), "slowest_ms_and_seq": slowest}))
server.shutdown()
