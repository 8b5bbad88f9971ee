"""
A local VIES: an HTTP server that speaks the REST API of the EU VAT number check, for tests
and offline demos. Point ``BOB_PAYMENTS["VIES_API_URL"]`` at what ``start()`` returns::

    vies = ViesEmulator()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_API_URL": vies.start()}
    vies.register("DE136695976", name="Example GmbH")

``POST /check-vat-number`` answers ``valid`` with the trader's name and address for the
numbers registered with ``register()``, and ``valid: false`` for the others; a consultation
number (``requestIdentifier``) comes back when a requester is sent. ``fail()`` makes a member
state answer one of VIES's error codes (as VIES does: HTTP 200 with ``errorWrappers``), answer
slowly, or drop the connection. ``GET /ms/{CC}/vat/{number}`` answers in the other spelling
(``isValid``, ``userError``). Every request is recorded.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ViesEmulator:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.registered: dict[str, dict[str, str]] = {}
            self.failures: dict[str, str] = {}
            self.delay = 0.0
            self.drop = False
            self.requests: list[dict[str, Any]] = []

    def register(self, number: str, name: str = "ACME", address: str = "1 Main Street") -> None:
        """Make ``number`` (with its VIES prefix, e.g. EL094259216) a registered one."""
        self.registered[number] = {"name": name, "address": address}

    def fail(self, country_code: str, error: str) -> None:
        """Make every check for ``country_code`` answer the VIES error ``error``."""
        self.failures[country_code] = error

    def recover(self, country_code: str) -> None:
        self.failures.pop(country_code, None)

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port``, or a free one) in a daemon thread; returns the base URL."""
        handler = type("Handler", (_Handler,), {"emulator": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="vies-emulator", daemon=True).start()
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/taxation_customs/vies/rest-api"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answer(self, country_code: str, number: str, requester: str | None) -> tuple[dict[str, Any], bool]:
        """The answer for a check, and whether it is an error."""
        now = time.strftime("%Y-%m-%d+01:00")
        error = self.failures.get(country_code)
        if error:
            return {"actionSucceed": False, "errorWrappers": [{"error": error, "message": error}]}, True
        if not number or not country_code.isalpha() or len(country_code) != 2:
            return {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]}, True
        trader = self.registered.get(country_code + number)
        answer: dict[str, Any] = {
            "countryCode": country_code,
            "vatNumber": number,
            "requestDate": now,
            "valid": trader is not None,
            "name": trader["name"] if trader else "---",
            "address": trader["address"] if trader else "---",
        }
        if requester:
            answer["requestIdentifier"] = f"WAPIAAAA{secrets.token_hex(6).upper()}"
        return answer, False


class _Handler(BaseHTTPRequestHandler):
    emulator: ViesEmulator
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _pre(self, record: dict[str, Any]) -> bool:
        emulator = self.emulator
        with emulator.lock:
            emulator.requests.append(record)
        if emulator.delay:
            time.sleep(emulator.delay)
        if emulator.drop:
            self.close_connection = True
            self.connection.shutdown(2)
            return False
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not self._pre({"method": "POST", "path": path, "body": body}):
            return
        if not path.endswith("/check-vat-number"):
            self._send(404, {"error": "not found"})
            return
        if not isinstance(body, dict):
            self._send(400, {"actionSucceed": False, "errorWrappers": [{"error": "INVALID_INPUT"}]})
            return
        requester = body.get("requesterNumber")
        answer, _ = self.emulator.answer(str(body.get("countryCode", "")), str(body.get("vatNumber", "")), requester)
        self._send(200, answer)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if not self._pre({"method": "GET", "path": path, "body": None}):
            return
        parts = path.rstrip("/").split("/")
        if path.endswith("/check-status"):
            states = [
                {"countryCode": code, "availability": "Unavailable" if code in self.emulator.failures else "Available"}
                for code in ("AT", "BE", "DE", "EL", "FR", "IT", "NL", "XI")
            ]
            self._send(200, {"vow": {"available": True}, "countries": states})
        elif len(parts) >= 4 and parts[-4] == "ms" and parts[-2] == "vat":
            answer, is_error = self.emulator.answer(parts[-3], parts[-1], None)
            if is_error:
                self._send(200, {"isValid": False, "userError": answer["errorWrappers"][0]["error"]})
            else:
                self._send(
                    200,
                    {
                        "isValid": answer["valid"],
                        "userError": "VALID" if answer["valid"] else "INVALID",
                        "requestDate": answer["requestDate"],
                        "name": answer["name"],
                        "address": answer["address"],
                    },
                )
        else:
            self._send(404, {"error": "not found"})
