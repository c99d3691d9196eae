"""A fake OpenAI-compatible chat server for tests: answers on 127.0.0.1, injects faults on demand.

    server = FaultServer().start()          # a thread serving http://127.0.0.1:PORT/v1
    server.faults.extend(["429", "500"])    # the next requests fail like this, in order
    ... client requests ...
    server.requests                         # every request received (path, headers, body)
    server.stop()

Replies: a numbered list of `n` captions that mention the noun quoted in the prompt, as many as
the prompt asks for ("a list of 10 ..."). Faults, consumed one per request:
    "429"        status 429 with Retry-After: 0.1 (`retry_after` sets the value)
    "500"        status 500
    "slow"       wait `slow_seconds` before replying (past the client's timeout)
    "reset"      close the connection without a reply
    "malformed"  status 200 with a body that is not JSON
    "nolist"     a reply without numbered lines
    "empty"      a reply with empty content
    "truncated"  finish_reason "length" and the last line cut in half
    "hang"       never reply (until the server stops)
    "trickle"    status 200, then the body one byte every `trickle_seconds` (each read is quick,
                 the whole reply takes minutes)
`reply` (a function of the last message and the request's number) replaces the caption lists,
e.g. with grades. `hang_after=N` makes every request after the first N hang (a run can then be
killed with a known set of answered requests). `delay` seconds pass before every reply
(requests of two processes then overlap).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STYLES = [
    "A {x} on a wooden table.",
    "Close-up photo of a {x} in the sun",
    "The {x} next to a red car.",
    "Someone holding a {x} at the market",
    "A small {x} in front of a white wall.",
    "An old {x} in a garden",
    "A {x} seen from above",
    "Black and white picture of a {x}.",
    "A {x} and a cup of coffee.",
    "Street scene with a {x}.",
    "A blurry {x} at night",
    "A {x} on the beach.",
]


def fake_reply(prompt: str, salt: int) -> str:
    """A numbered list of captions for the noun quoted in `prompt` (distinct per salt)."""
    noun = re.search(r'"([^"]+)"', prompt)
    count = re.search(r"(\d+)", prompt)
    x = noun.group(1) if noun else "thing"
    n = int(count.group(1)) if count else 5
    lines = [
        f"{i + 1}. {STYLES[(salt + i) % len(STYLES)].format(x=x)} #{salt}-{i}" for i in range(n)
    ]
    return "Here are the captions:\n" + "\n".join(lines)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout, reset) is expected here


class FaultServer:
    """The server object: start() it, set `faults`, read `requests`, stop() it."""

    def __init__(
        self,
        retry_after: str = "0.1",
        slow_seconds: float = 3.0,
        delay: float = 0.0,
        trickle_seconds: float = 0.3,
    ) -> None:
        self.faults: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.answered: list[str] = []  # request keys that got a 200 reply with content
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.delay = delay
        self.trickle_seconds = trickle_seconds
        self.hang_after: int | None = None
        # reply(prompt, number) -> content, in place of the caption lists (e.g. grades)
        self.reply: Callable[[str, int], str] | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread: threading.Thread | None = None

    def start(self) -> FaultServer:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def keys(self) -> list[str]:
        """The X-Novic-Request-Key of every request received, in order."""
        return [r["headers"].get("x-novic-request-key", "") for r in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str] | None = None,
                trickle: bool = False,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if not trickle:
                    self.wfile.write(body)
                    self.wfile.flush()
                    return
                for i in range(len(body)):  # until the client gives up or the server stops
                    if server.stopping.wait(server.trickle_seconds):
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": []}).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    number = len(server.requests)
                    server.requests.append({"path": self.path, "headers": headers, "body": body})
                    fault = server.faults.pop(0) if server.faults else None
                    if server.hang_after is not None and number >= server.hang_after:
                        fault = "hang"
                if fault == "hang":
                    server.stopping.wait()
                    self.close_connection = True
                    return
                if server.delay:
                    time.sleep(server.delay)
                if fault == "slow":
                    time.sleep(server.slow_seconds)
                if fault == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "429":
                    err = {"error": {"message": "rate limited", "type": "rate_limit"}}
                    self._send(429, json.dumps(err).encode(), {"Retry-After": server.retry_after})
                    return
                if fault == "500":
                    self._send(500, b'{"error": {"message": "internal error"}}')
                    return
                if fault == "malformed":
                    self._send(200, b"this is not json {")
                    return
                prompt = body["messages"][-1]["content"]
                content = (server.reply or fake_reply)(prompt, number)
                finish = "stop"
                if fault == "nolist":
                    content = "I am sorry, I cannot help with that."
                elif fault == "empty":
                    content = ""
                elif fault == "truncated":
                    content = content[: len(content) - 12]
                    finish = "length"
                reply = {
                    "id": f"chatcmpl-{number}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": finish,
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 100, "total_tokens": 150},
                }
                self._send(200, json.dumps(reply).encode(), trickle=fault == "trickle")
                with server.lock:
                    server.answered.append(headers.get("x-novic-request-key", ""))

        return Handler
