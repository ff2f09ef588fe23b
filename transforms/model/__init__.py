"""The record model and error family shared by every floor above this one."""
from transforms.model.errors import (
    ConfigError,
    MessageInvalidError,
    NiemExchangeError,
    PermanentError,
    RecordError,
    RetryableError,
    SecurityError,
)
from transforms.model.records import (
    Arrest,
    Charge,
    ClinicalRecord,
    Coding,
    Condition,
    ConsentRecord,
    ContactPoint,
    CrisisContact,
    JailBooking,
    PersonIdentity,
    SourceRef,
    record_digest,
)
from transforms.model.seam import Receipt, Rejected, Window

__all__ = [
    "Arrest", "ClinicalRecord", "Coding", "Condition", "ConsentRecord", "ContactPoint", "CrisisContact",
    "Charge", "ConfigError", "JailBooking", "MessageInvalidError", "NiemExchangeError", "PermanentError",
    "PersonIdentity", "Receipt", "RecordError", "Rejected", "RetryableError", "SecurityError", "SourceRef",
    "Window", "record_digest",
]
