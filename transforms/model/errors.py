"""The error family of niem-exchange, split by what the caller does next.

Every error carries *where* (a record reference and a field path) and *why*, never the record's values:
errors end up in logs, task output, the quarantine table and Airflow's metadata database, none of which
may hold PHI. ``tests/transforms/test_errors.py`` checks ``str()`` of every kind for a canary value.

Errors pickle (Airflow and process pools move them between processes): every constructor argument is kept
in ``args`` by calling ``super().__init__`` with them, in order.
"""
from __future__ import annotations


class NiemExchangeError(Exception):
    """Root of every error this project raises on purpose."""


class RecordError(NiemExchangeError):
    """One input record cannot be used: quarantine it with this reason and go on with the batch.

    ``record`` is a source reference such as ``bookings.csv#row=17`` and ``field`` the field path inside
    the record (``dob``, ``charges[2].statute``); ``reason`` says what is wrong without quoting the value.
    """

    def __init__(self, record: str, field: str, reason: str) -> None:
        super().__init__(record, field, reason)
        self.record, self.field, self.reason = record, field, reason

    def __str__(self) -> str:
        return f"{self.record}: field {self.field!r}: {self.reason}"


class MessageInvalidError(RecordError):
    """A built message does not validate against the IEPD: a mapping defect, quarantined like a record."""


class RetryableError(NiemExchangeError):
    """A transient failure (network, remote busy): retry later with backoff; nothing was delivered twice."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(operation, reason)
        self.operation, self.reason = operation, reason

    def __str__(self) -> str:
        return f"{self.operation}: {self.reason} (will retry)"


class PermanentError(NiemExchangeError):
    """A failure that retrying will not mend (refused by the recipient, malformed endpoint): dead-letter it."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(operation, reason)
        self.operation, self.reason = operation, reason

    def __str__(self) -> str:
        return f"{self.operation}: {self.reason}"


class ConfigError(NiemExchangeError):
    """Configuration that cannot work: names the file, the key and the fix. Stops the run before any I/O."""

    def __init__(self, source: str, key: str, problem: str, fix: str = "") -> None:
        super().__init__(source, key, problem, fix)
        self.source, self.key, self.problem, self.fix = source, key, problem, fix

    def __str__(self) -> str:
        text = f"{self.source}: {self.key}: {self.problem}"
        return f"{text}; fix: {self.fix}" if self.fix else text


class SecurityError(NiemExchangeError):
    """A security refusal: bad signature, untrusted or expired certificate, hostile XML, unpinned host key.

    Never retried automatically and never downgraded to a warning.
    """

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(subject, reason)
        self.subject, self.reason = subject, reason

    def __str__(self) -> str:
        return f"{self.subject}: refused: {self.reason}"
