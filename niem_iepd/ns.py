"""Every namespace, prefix and qualified name the IEPD uses, in one registry.

Mapping, redaction and validation import their names from here; nothing else spells a namespace URI.
NIEM 6.0 namespaces are taken from the ``targetNamespace`` of the reference schema documents.
"""
from __future__ import annotations

from lxml.builder import ElementMaker
from lxml.etree import QName

NIEM_VERSION = "6.0"
IEPD_VERSION = "1.0.0"

XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"

STRUCTURES = "https://docs.oasis-open.org/niemopen/ns/model/structures/6.0/"
NIEM_XS = "https://docs.oasis-open.org/niemopen/ns/model/adapters/niem-xs/6.0/"
NC = "https://docs.oasis-open.org/niemopen/ns/model/niem-core/6.0/"
J = "https://docs.oasis-open.org/niemopen/ns/model/domains/justice/6.0/"
HS = "https://docs.oasis-open.org/niemopen/ns/model/domains/humanServices/6.0/"
CT = "https://docs.oasis-open.org/niemopen/ns/specification/conformanceTargets/6.0/"

# Ours: the extension namespace and one namespace per exchange (message type).
NX = "http://niem-exchange.org/ns/extension/1.0/"
BN = "http://niem-exchange.org/ns/exchange/booking-notification/1.0/"
RN = "http://niem-exchange.org/ns/exchange/release-notification/1.0/"
CCR = "http://niem-exchange.org/ns/exchange/crisis-contact-report/1.0/"
BHA = "http://niem-exchange.org/ns/exchange/behavioral-health-alert/1.0/"
FFR = "http://niem-exchange.org/ns/exchange/familiar-faces-roster/1.0/"
PM = "http://niem-exchange.org/ns/exchange/program-metrics/1.0/"

PREFIXES: dict[str, str] = {
    "structures": STRUCTURES,
    "niem-xs": NIEM_XS,
    "nc": NC,
    "j": J,
    "hs": HS,
    "nx": NX,
    "bn": BN,
    "rn": RN,
    "ccr": CCR,
    "bha": BHA,
    "ffr": FFR,
    "pm": PM,
}

#: Message type -> (root element, namespace map the builder writes).
MESSAGE_ROOTS: dict[str, QName] = {
    "BookingNotification": QName(BN, "BookingNotification"),
    "ReleaseNotification": QName(RN, "ReleaseNotification"),
    "CrisisContactReport": QName(CCR, "CrisisContactReport"),
    "BehavioralHealthAlert": QName(BHA, "BehavioralHealthAlert"),
    "FamiliarFacesRoster": QName(FFR, "FamiliarFacesRoster"),
    "ProgramMetrics": QName(PM, "ProgramMetrics"),
}

nc = ElementMaker(namespace=NC, nsmap={"nc": NC})
j = ElementMaker(namespace=J, nsmap={"j": J})
nx = ElementMaker(namespace=NX, nsmap={"nx": NX})


def q(prefix: str, local: str) -> QName:
    """Return the qualified name ``prefix:local`` from the registry (``q("nc", "Person")``)."""
    return QName(PREFIXES[prefix], local)


def clark(path: str) -> str:
    """Turn a prefixed path like ``j:Booking/nc:ActivityDate`` into Clark notation for lxml find()."""
    steps = []
    for step in path.split("/"):
        prefix, _, local = step.partition(":")
        steps.append(f"{{{PREFIXES[prefix]}}}{local}" if local else step)
    return "/".join(steps)
