"""Our inbound SOAP service served by a real uvicorn over mutual TLS on 127.0.0.1, in a thread, with faults
that a test can plan (HTTP 500, a SOAP Fault, a hang past the client's timeout).

    server = soap_server_factory(decrypt=...)     # fixture; started, stopped at teardown
    server.plan("500", "fault", "hang")           # the next three POSTs misbehave, in that order
    server.endpoint, server.pki                   # URL, and the TLS/WS-Security files (tests/support/tls.py)
    server.received()                             # {message id: count} at the receiver (files in the store)

A "hang" waits ``hang_seconds`` and then lets the request through, so the message IS stored after the
client gave up: exactly the case where a resend must not create a second copy.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.sshd import free_port
from tests.support.tls import TlsPki, mint_tls_pki


class FaultPlan:
    """Faults for the next POSTs, consumed one per request."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.hang_seconds = 3.0
        self.posts = 0

    def next(self) -> str | None:
        self.posts += 1
        return self.pending.pop(0) if self.pending else None


class FaultInjector:
    """ASGI middleware in front of the real service."""

    def __init__(self, app, plan: FaultPlan) -> None:
        self.app, self.plan = app, plan

    async def __call__(self, scope, receive, send) -> None:
        fault = self.plan.next() if scope["type"] == "http" and scope["method"] == "POST" else None
        if fault == "hang":  # the request arrives whole, then the answer comes too late
            body = bytearray()
            while True:
                event = await receive()
                body += event.get("body", b"")
                if not event.get("more_body"):
                    break
            await asyncio.sleep(self.plan.hang_seconds)
            replayed = [{"type": "http.request", "body": bytes(body), "more_body": False}]

            async def receive_again():
                return replayed.pop(0) if replayed else {"type": "http.disconnect"}

            await self.app(scope, receive_again, send)
            return
        elif fault in ("500", "fault"):
            while (await receive()).get("more_body"):
                pass
            from adapters.inbound.service import _fault

            body = b"Internal Server Error" if fault == "500" else _fault("Server", "busy, try later")
            kind = b"text/plain" if fault == "500" else b"text/xml; charset=utf-8"
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", kind)]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@dataclass
class SoapServer:
    """One running service."""

    pki: TlsPki
    store: Path
    port: int
    plan: FaultPlan
    server: object = field(repr=False, default=None)
    thread: threading.Thread | None = field(repr=False, default=None)

    @property
    def endpoint(self) -> str:
        """The service URL (https, 127.0.0.1)."""
        return f"https://127.0.0.1:{self.port}/soap/exchange"

    def plan_faults(self, *faults: str, hang_seconds: float | None = None) -> None:
        """Make the next POSTs fail in these ways ("500", "fault", "hang")."""
        self.plan.pending.extend(faults)
        if hang_seconds is not None:
            self.plan.hang_seconds = hang_seconds

    def received(self) -> dict[str, int]:
        """Messages stored at the receiver, by message id (each file name is the id, so a count is 0 or 1)."""
        return {p.name.removesuffix(".receipt.json"): 1 for p in self.store.glob("*.receipt.json")}

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_in_thread(app, pki: TlsPki, port: int) -> tuple[object, threading.Thread]:
    """Run ``app`` under uvicorn (mutual TLS against the test CA, the production ``server_config``) in a thread;
    return (server, thread) once it accepts connections."""
    import uvicorn

    from adapters.inbound import server_config

    config = server_config(app, host="127.0.0.1", port=port, certificate=pki.cert("server"), key=pki.key("server"),
                           client_ca=pki.cert("ca"), log_level="error", timeout_graceful_shutdown=1, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return server, thread


def start_soap_server(directory: Path, pki: TlsPki, **service_options) -> SoapServer:
    """Start the inbound service (mutual TLS against the test CA) and return once it accepts."""
    from adapters.inbound import InboundSettings, build_app

    port = free_port()
    store = directory / "received"
    plan = FaultPlan()
    settings = InboundSettings(
        store=store, signing_key=pki.key("server-signing"), signing_certificate=pki.cert("server-signing"),
        trusted_signers=(pki.cert("client-signing"),), clock=lambda: datetime.now(timezone.utc),
        public_url=f"https://127.0.0.1:{port}/soap/exchange", **service_options)
    server, thread = serve_in_thread(FaultInjector(build_app(settings), plan), pki, port)
    return SoapServer(pki, store, port, plan, server, thread)


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory) -> TlsPki:
    """One TLS / WS-Security PKI per test session."""
    return mint_tls_pki(tmp_path_factory.mktemp("tls-pki"))


@pytest.fixture
def soap_server_factory(tmp_path_factory, tls_pki) -> Iterator[Callable[..., SoapServer]]:
    """``soap_server_factory(decrypt=..., on_received=...)`` starts the service; stopped at teardown."""
    servers: list[SoapServer] = []

    def make(**service_options) -> SoapServer:
        server = start_soap_server(tmp_path_factory.mktemp("soap"), tls_pki, **service_options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
