"""Real local receivers for delivery tests, each on a free loopback port in
a thread: an HTTP server (webhooks, SMS and push gateways) and an SMTP
server."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A real HTTP server on 127.0.0.1: answers ``fail_first`` requests with
    ``fail_status``, then ``ok_status`` with ``ok_body``; records what it got."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 503,
        fail_body: str = "busy",
        ok_status: int = 200,
        ok_body: str = '{"ok": true}',
    ):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.fail_body = fail_body
        self.ok_status = ok_status
        self.ok_body = ok_body
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                failing = len(receiver.requests) <= receiver.fail_first
                code = receiver.fail_status if failing else receiver.ok_status
                reply = receiver.fail_body if failing else receiver.ok_body
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


class SMTPReceiver:
    """A real SMTP server (aiosmtpd) on a free loopback port. Recipients
    starting ``gone@`` are refused for good (550) and ``busy@`` for now (451);
    a message whose subject contains ``[reject]`` is refused at DATA (554).
    Accepted messages are kept in ``messages``."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        receiver = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
                if address.startswith("gone@"):
                    return "550 5.1.1 No such mailbox here"
                if address.startswith("busy@"):
                    return "451 4.3.0 Mailbox busy, try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                if b"[reject]" in envelope.content:
                    return "554 5.7.1 Message refused by policy"
                receiver.messages.append(envelope)
                return "250 Message accepted"

        with socket.socket() as probe:  # a free port (aiosmtpd needs one named)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
