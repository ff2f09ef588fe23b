"""Record -> NIEM XML mapping, one module per message type; names come from ``niem_iepd.ns``."""
from transforms.mapping.common import MessageHeader
from transforms.mapping.booking import booking_notification

__all__ = ["MessageHeader", "booking_notification"]
