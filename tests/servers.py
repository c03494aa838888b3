"""Real local servers for outbound-delivery tests: an HTTP endpoint (webhooks, the text
message gateway) that can be told to fail and recover, and a minimal SMTP server. Both run
in a thread on 127.0.0.1 and record what they receive."""

from __future__ import annotations

import json
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def _running(server: socketserver.BaseServer) -> Iterator[None]:
    """``server`` answering on a thread until the block ends."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""  # the body as sent (to check a signature)


@dataclass
class HttpSink:
    """Answers ``status`` (default 200); ``fail_next(n, status)`` makes the next n requests
    fail; ``delay`` seconds before answering (timeouts)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._failures += [status] * count

    def answer(self) -> int:
        with self._lock:
            return self._failures.pop(0) if self._failures else self.status


@contextmanager
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            status = sink.answer()
            if sink.delay:
                time.sleep(sink.delay)
            sink.requests.append(
                Received(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    raw,
                )
            )
            payload = b'{"ok": true}' if status < 400 else b'{"error": "down"}'
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    with _running(server):
        yield sink


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    mails: list[Mail] = field(default_factory=list)


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    """Speaks enough SMTP (RFC 5321) for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
    QUIT."""
    sink = SmtpSink()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write((line + "\r\n").encode())

        def handle(self) -> None:
            self.reply("220 sink ESMTP")
            sender, recipients = "", []
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                command = raw.decode(errors="replace").strip()
                verb = command[:4].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250-sink")
                    self.reply("250 8BITMIME")
                elif verb == "MAIL":
                    sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip(" <>"))
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while True:
                        line = self.rfile.readline().decode(errors="replace")
                        if line in (".\r\n", ".\n", ""):
                            break
                        lines.append(line[1:] if line.startswith("..") else line)
                    sink.mails.append(Mail(sender, recipients, "".join(lines)))
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:  # RSET, NOOP and the rest
                    self.reply("250 OK")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.port = server.server_address[1]
    with _running(server):
        yield sink
