"""Echo function in Python, standard library only.

Answers every request with a JSON document describing it (method, path, query, headers, body), like the
Rust `echo` example. `GET /healthz` answers `ok`. Query controls: `?sleep=<ms>` waits before answering,
`?status=<code>` sets the status. Listens on `$PORT` (default 8080). On SIGTERM (what the kubelet sends when
a pod is scaled away) it stops accepting connections, lets the requests in flight finish, then exits 0.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_SLEEP_MS = 600_000


class Handler(BaseHTTPRequestHandler):
    """One request: `/healthz` or the JSON echo."""

    protocol_version = "HTTP/1.1"
    server_version = "zeroscale-echo-python"
    # An idle keep-alive connection is closed after this many seconds, so that draining on SIGTERM
    # (which waits for every connection's thread) is not held up by a pooled connection.
    timeout = 5

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.server.draining:
            # Being stopped: tell the client not to reuse this connection.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self._send(200, "text/plain", b"ok\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        status = 200
        try:
            query = parse_qs(url.query)
            if "sleep" in query:
                time.sleep(min(int(query["sleep"][0]), MAX_SLEEP_MS) / 1000)
            if "status" in query:
                status = int(query["status"][0])
                if not 100 <= status <= 599:
                    raise ValueError(f"status out of range: {status}")
        except ValueError as e:
            return self._send(400, "text/plain", f"bad query: {e}\n".encode())
        doc = {
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "pod": os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname(),
            "function": os.environ.get("ZEROSCALE_FUNCTION"),
            "runtime": "python",
            "status": status,
        }
        self._send(status, "application/json", (json.dumps(doc) + "\n").encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))


class Server(ThreadingHTTPServer):
    """A thread per connection; closing the server waits for every one of them."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    draining = False


def main():
    port = int(os.environ.get("PORT") or 8080)
    server = Server(("", port), Handler)

    def on_term(signum, _frame):
        # shutdown() waits for serve_forever() to return, which runs on this (the main) thread: ask
        # from another thread, and let serve_forever() return to close the server below.
        print(f"signal {signum}: draining", file=sys.stderr, flush=True)
        server.draining = True
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"echo-python listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()  # joins the threads of requests still in flight
    print("stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
