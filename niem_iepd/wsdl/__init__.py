"""The project's WSDL (``exchange-service.wsdl``): SubmitMessage for senders, PullMessages and
AcknowledgeMessage for recipients that fetch their messages; SOAP 1.1 document/literal, WS-Security,
WS-Addressing, mutual TLS. Read with :func:`wsdl_path`; served by ``adapters.inbound`` at ``?wsdl``."""
from __future__ import annotations

from pathlib import Path

TARGET_NAMESPACE = "http://niem-exchange.org/ns/wsdl/exchange/1.0/"
SUBMIT_ACTION = TARGET_NAMESPACE + "SubmitMessage"
PULL_ACTION = TARGET_NAMESPACE + "PullMessages"
ACKNOWLEDGE_ACTION = TARGET_NAMESPACE + "AcknowledgeMessage"


def wsdl_path() -> Path:
    """The packaged WSDL file."""
    return Path(__file__).with_name("exchange-service.wsdl")
