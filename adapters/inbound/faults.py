"""SOAP 1.1 Faults of the inbound service, and the refusal that becomes one.

``faultcode`` tells the caller what to do: ``soap:Client`` = do not resend it unchanged, ``soap:Server`` =
transient, retry later. A fault string names the check that failed (and for IEPD errors the element path),
never a value from the message.
"""
from __future__ import annotations

from lxml import etree

from adapters.delivery.wssecurity import SOAP11


class Refused(Exception):
    """A request the caller must fix (``Client``) or may retry (``Server``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


def fault_envelope(code: str, reason: str) -> bytes:
    """A SOAP 1.1 Fault envelope (unsigned: nothing in it is trusted beyond "retry" or "refused")."""
    soap = f"{{{SOAP11}}}"
    envelope = etree.Element(soap + "Envelope", nsmap={"soap": SOAP11})
    fault = etree.SubElement(etree.SubElement(envelope, soap + "Body"), soap + "Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = reason
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
