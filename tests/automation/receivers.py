"""Real local receivers for delivery tests: an HTTP server on a free
loopback port, run in a thread (webhooks, SMS and push gateways)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A real HTTP server on 127.0.0.1: answers ``fail_first`` requests with
    ``fail_status``, then 200; records what it got."""

    def __init__(self, *, fail_first: int = 0, fail_status: int = 503, fail_body: str = "busy"):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.fail_body = fail_body
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                failing = len(receiver.requests) <= receiver.fail_first
                code = receiver.fail_status if failing else 200
                reply = receiver.fail_body if failing else '{"ok": true}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/bureau"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
