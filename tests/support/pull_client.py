"""A pull recipient's zeep client for tests: mutual TLS with one client certificate, WS-Security with one
signing key, responses checked against the service's pinned signing certificate."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from adapters.delivery.wssecurity import WSA, WsSecurity
from niem_iepd.wsdl import ACKNOWLEDGE_ACTION, PULL_ACTION, wsdl_path
from tests.support.tls import TlsPki

BINDING = "{http://niem-exchange.org/ns/wsdl/exchange/1.0/}MessageExchangeBinding"


class PullClient:
    """Calls PullMessages / AcknowledgeMessage as one recipient (``tls`` and ``signing`` name pki files)."""

    def __init__(self, endpoint: str, pki: TlsPki, *, tls: str, signing: str, service_certificate: Path) -> None:
        import requests
        import zeep
        from zeep.transports import Transport

        session = requests.Session()
        session.trust_env = False
        session.cert = (str(pki.cert(tls)), str(pki.key(tls)))
        session.verify = str(pki.cert("ca"))
        wsse = WsSecurity(pki.key(signing), pki.cert(signing), trusted=[service_certificate],
                          clock=lambda: datetime.now(timezone.utc))
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        client = zeep.Client(str(wsdl_path()), transport=Transport(session=session, operation_timeout=30),
                             wsse=wsse, settings=settings)
        self.endpoint = endpoint
        self.service = client.create_service(BINDING, endpoint)
        self._session = session

    def close(self) -> None:
        """Close the kept-alive connection (a server shutting down would otherwise wait for it)."""
        self._session.close()

    def _headers(self, action: str) -> list[etree._Element]:
        headers = []
        for name, value in (("Action", action), ("MessageID", f"urn:uuid:{uuid.uuid4()}"), ("To", self.endpoint)):
            element = etree.Element(f"{{{WSA}}}{name}")
            element.text = value
            headers.append(element)
        return headers

    def pull(self, limit: int | None = None):
        """The PullMessagesResponse (``.Message`` is a list, ``.LeaseExpires`` a datetime)."""
        return self.service.PullMessages(MaxMessages=limit, _soapheaders=self._headers(PULL_ACTION))

    def acknowledge(self, message_id: str, sha256: str, receipt_id: str | None = None):
        """The AcknowledgeMessageResponse (``.Status`` acknowledged or duplicate)."""
        return self.service.AcknowledgeMessage(MessageID=message_id, PayloadSHA256=sha256, ReceiptID=receipt_id,
                                               _soapheaders=self._headers(ACKNOWLEDGE_ACTION))
