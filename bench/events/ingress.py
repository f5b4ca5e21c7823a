#!/usr/bin/env python3
"""Broker ingress throughput with a distinct CloudEvent per request.

Every event gets its own `ce-id` (the stores drop a repeated `source` + `id` within their duplicate
window, so a load generator repeating one id would measure the duplicate check, not storage).
Closed loop: CONNECTIONS keep-alive HTTP/1.1 connections, each posting its next event once the
previous one was answered, for SECONDS, spread over PROCESSES processes (asyncio in each).
Prints "<202 answers per second> <other answers and errors>".

usage: ingress.py URL CONNECTIONS SECONDS [PROCESSES]
"""
import asyncio
import multiprocessing
import sys
import time
import urllib.parse
import uuid


async def connection(host, port, path, tag, deadline, counts):
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"n":1}'
    i = 0
    while time.monotonic() < deadline:
        i += 1
        request = (
            f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\nce-specversion: 1.0\r\n"
            f"ce-id: {tag}-{i}\r\nce-source: /bench\r\nce-type: bench.ingress\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode() + body
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        if status_line.split(b" ")[1:2] == [b"202"]:
            counts[0] += 1
        else:
            counts[1] += 1
        if not status_line:
            break
    writer.close()


def worker(args):
    url, connections, seconds, index = args
    parts = urllib.parse.urlsplit(url)
    counts = [0, 0]
    run = uuid.uuid4().hex[:8]

    async def main():
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(
            connection(parts.hostname, parts.port, parts.path, f"{run}-{index}-{c}", deadline, counts)
            for c in range(connections)))

    started = time.monotonic()
    asyncio.run(main())
    return counts[0], counts[1], time.monotonic() - started


if __name__ == "__main__":
    url, connections, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    processes = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    per = max(1, connections // processes)
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(worker, [(url, per, seconds, p) for p in range(processes)])
    accepted = sum(r[0] for r in results)
    other = sum(r[1] for r in results)
    took = max(r[2] for r in results)
    print(f"{accepted / took:.1f} {other}")
