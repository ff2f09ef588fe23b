"""Every namespace, prefix and qualified name the IEPD uses, in one registry.

Mapping, redaction and validation import their names from here; nothing else spells a namespace URI.
NIEM 6.0 namespaces are taken from the ``targetNamespace`` of the reference schema documents.
"""
from __future__ import annotations

from lxml import etree
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

class ElementFactory:
    """``nc.PersonName(nc.PersonGivenName("Ann"))``: lxml's ``ElementMaker`` call style, making real elements.

    Arguments are children (elements, appended in order), text (a string before any child element, or the
    tail of the child element it follows) and attribute dicts; keyword arguments are attributes too. Unlike
    ``ElementMaker``, which makes a new partial per attribute lookup and dispatches through a type map per
    argument, each tag's constructor is made once and kept on the instance. Anything else (None, numbers)
    is refused, as ``ElementMaker`` refuses it.

    For one-off elements (the privacy block, tests). Whole messages are described with the same call style
    in :mod:`transforms.mapping.tree` and built top-down: each element made here is its own document, and
    appending it moves it into its parent's, which costs about as much again.
    """

    def __init__(self, namespace: str, prefix: str) -> None:
        self._namespace = namespace
        self._nsmap = {prefix: namespace}

    def __getattr__(self, local: str):
        if local.startswith("_"):
            raise AttributeError(local)
        tag, nsmap = f"{{{self._namespace}}}{local}", self._nsmap

        def make(*children: object, **attributes: str) -> etree._Element:
            element = etree.Element(tag, nsmap=nsmap)
            last = None
            for child in children:
                if isinstance(child, str):
                    if last is None:
                        element.text = (element.text or "") + child
                    else:
                        last.tail = (last.tail or "") + child
                elif isinstance(child, etree._Element):
                    element.append(child)
                    last = child
                elif isinstance(child, dict):
                    for name, value in child.items():
                        element.set(name, value)
                else:
                    raise TypeError(f"{local}: cannot add a {type(child).__name__} to an element")
            for name, value in attributes.items():
                element.set(name, value)
            return element

        make.__name__ = local
        setattr(self, local, make)  # found directly next time, without __getattr__
        return make


nc = ElementFactory(NC, "nc")
j = ElementFactory(J, "j")
nx = ElementFactory(NX, "nx")


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
