"""Record -> NIEM XML mapping, one module per message type; names come from ``niem_iepd.ns``.

``BUILDERS`` is the registry the pipeline uses: message type -> the record type it is built from, the
function that builds it, and the categories of information it discloses (for the ledger and redaction).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from transforms.mapping.booking import booking_notification
from transforms.mapping.common import MessageHeader
from transforms.model import JailBooking


@dataclass(frozen=True, slots=True)
class MessageBuilder:
    """How one message type is made from one record."""

    message_type: str
    record_type: type
    build: Callable[[object, str, MessageHeader], etree._Element]
    categories: tuple[str, ...]


BUILDERS: dict[str, MessageBuilder] = {
    "BookingNotification": MessageBuilder(
        "BookingNotification", JailBooking, booking_notification,
        ("identity", "demographics", "booking", "charges"),
    ),
}

__all__ = ["BUILDERS", "MessageBuilder", "MessageHeader", "booking_notification"]
