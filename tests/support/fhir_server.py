"""A small FHIR R4 REST server for tests: real HTTP on 127.0.0.1, paging, ``_lastUpdated``, SMART token endpoint.

``FhirServer(public_key_pem)`` keeps ``resources`` in memory (the test may change them), pages search results
through ``next`` links (``_count``/``_offset``), filters by ``_lastUpdated`` (gt/le) and ``patient``, serves
``<Type>/<id>``, and answers only requests bearing a token from its ``/token`` endpoint, which checks the SMART
client-assertion JWT (RS384) against the public key registered for ``CLIENT_ID``. ``requests`` records every
path asked for. Start with ``server.thread.start()``; stop with ``server.httpd.shutdown()``.
"""
from __future__ import annotations

import json
import secrets
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ID = "niem-exchange-test"


class FhirServer:
    """An in-memory FHIR store behind a real HTTP server; ``resources`` may be changed by the test."""

    def __init__(self, public_key_pem: bytes) -> None:
        self.resources: list[dict] = []
        self.public_key = public_key_pem
        self.tokens: set[str] = set()
        self.requests: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            """Token endpoint (POST) and FHIR reads (GET) over the server's store."""

            def log_message(self, *args: object) -> None:
                """Keep test output quiet."""
                pass

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                """The SMART token endpoint: check the client assertion, issue a bearer token."""
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                try:
                    assert form["grant_type"] == ["client_credentials"]
                    assert form["client_assertion_type"] == [ASSERTION_TYPE]
                    claims = jwt.decode(form["client_assertion"][0], server.public_key, algorithms=["RS384"],
                                        audience=f"{server.base}/token", issuer=CLIENT_ID)
                    assert claims["sub"] == CLIENT_ID and claims["jti"]
                except (AssertionError, KeyError, jwt.PyJWTError):
                    self._send(401, {"error": "invalid_client"})
                    return
                token = secrets.token_hex(16)
                server.tokens.add(token)
                self._send(200, {"access_token": token, "token_type": "bearer", "expires_in": 300})

            def do_GET(self) -> None:  # noqa: N802
                """``<Type>/<id>`` reads and ``<Type>?...`` searches, bearer token required."""
                server.requests.append(self.path)
                if self.headers.get("Authorization", "").removeprefix("Bearer ") not in server.tokens:
                    self._send(401, {"resourceType": "OperationOutcome"})
                    return
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")[1:]  # after "fhir"
                query = parse_qs(parts.query)
                if len(segments) == 2:
                    found = [r for r in server.resources if r["resourceType"] == segments[0] and r["id"] == segments[1]]
                    self._send(200, found[0]) if found else self._send(404, {"resourceType": "OperationOutcome"})
                    return
                self._send(200, server.search(segments[0], query, parts.path))

        return Handler

    def search(self, kind: str, query: dict[str, list[str]], path: str) -> dict:
        """A searchset page: ``_lastUpdated`` gt/le, ``patient``, ``_count`` and ``_offset`` paging."""
        hits = [r for r in self.resources if r["resourceType"] == kind]
        for bound in query.get("_lastUpdated", []):
            op, when = bound[:2], datetime.fromisoformat(bound[2:])
            stamp = lambda r: datetime.fromisoformat(r["meta"]["lastUpdated"])  # noqa: E731
            hits = [r for r in hits if (stamp(r) > when if op == "gt" else stamp(r) <= when)]
        if "patient" in query:
            want = "Patient/" + query["patient"][0]
            hits = [r for r in hits if (r.get("subject") or r.get("patient") or {}).get("reference") == want]
        count, offset = int(query.get("_count", ["50"])[0]), int(query.get("_offset", ["0"])[0])
        page = {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                "entry": [{"resource": r} for r in hits[offset:offset + count]], "link": []}
        if offset + count < len(hits):
            rest = {k: v for k, v in query.items() if k != "_offset"}
            pairs = "&".join(f"{k}={v}" for k, vs in rest.items() for v in vs).replace("+", "%2B")
            page["link"].append({"relation": "next", "url": f"{self.base}{path}?{pairs}&_offset={offset + count}"})
        return page
