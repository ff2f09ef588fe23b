"""The receiving side (a state agency or provider), as a library: open a message, trust only what was signed.

One call per message::

    receiver = Receiver.open(key="state.key", trusted=["sender-signing.pem"], out_dir="inbox",
                             state="inbox/received.db")
    receipt = receiver.receive(Path("msg.xml").read_bytes(), source="msg.xml")

:meth:`Receiver.receive` runs, in this order, and stops at the first refusal:

1. decrypt with our private key (AES-256-GCM + RSA-OAEP only; CBC only if ``allow_legacy``) and parse
   the plaintext once, through :mod:`niem_iepd.safexml`, refusing comments and processing instructions
   inside the document element (comment injection);
2. verify the enveloped signature against the pinned sender certificates (never one taken from the
   message), inside their validity period, SHA-256 family only;
3. keep only the signed content that verification returns (the verified tree reduced to what the
   digest covers: no signature, comments or unsigned namespace declarations), never the tree as received;
4. validate it against the IEPD (:mod:`niem_iepd.validator`);
5. refuse a message id seen before (the ``received`` table: its primary key is the message id);
6. write ``<out>/<message-id>.xml`` (the signed content) and ``<out>/<message-id>.receipt.json``,
   and record the message id, in one step: files go to temporary names first and are linked into place
   inside the database transaction, so a refusal or a crash leaves no plaintext, no receipt and no row.

Refusals are :class:`SecurityError` (crypto, trust, hostile XML, replay) or :class:`MessageInvalidError`
(signed but not valid against the IEPD, with the element path). Their text never quotes the message.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from lxml import etree
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from exchange.security import PrivateKey, TrustedSigners, fingerprint, key_id
from exchange.security._received import MAX_DOCUMENT_BYTES
from exchange.security.encryption import decrypt_document
from exchange.security.keys import PathLike, load_trusted
from exchange.security.signing import verify_document
from exchange.state.db import open_engine, received
from niem_iepd import ns, validator
from transforms.model.errors import MessageInvalidError, SecurityError

#: A message id becomes a file name: letters, digits, '.', '_' and '-' only, no leading dot.
_SAFE_MESSAGE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_MESSAGE_ID_PATH = ns.clark("nx:MessageMetadata/nx:MessageIdentification/nc:IdentificationID")
_SUBJECT = "receive"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What was accepted: where the plaintext and the receipt were written, and what they attest."""

    message_id: str
    message_type: str
    sender_fingerprint: str
    sender_key_id: str
    received_sha256: str
    plaintext_sha256: str
    received_at: dt.datetime
    plaintext_path: Path
    receipt_path: Path

    def to_json(self) -> dict[str, str]:
        """The receipt file's content (paths as file names only: the receipt travels with the plaintext)."""
        return {
            "message_id": self.message_id,
            "message_type": self.message_type,
            "sender_certificate_sha256": self.sender_fingerprint,
            "sender_key_id": self.sender_key_id,
            "received_sha256": self.received_sha256,
            "plaintext_sha256": self.plaintext_sha256,
            "received_at": self.received_at.isoformat(),
            "plaintext_file": self.plaintext_path.name,
            "checks": "decrypted (AES-256-GCM, RSA-OAEP); signature verified against a pinned certificate; "
                      "valid against the IEPD; message id not seen before",
        }


class Receiver:
    """Our private key, the pinned sender certificates, an output directory and the replay table.

    Build it once (keys are parsed once) and call :meth:`receive` per message. ``clock`` is passed in so
    certificate validity is checked at a time the caller controls.
    """

    def __init__(
        self,
        key: PrivateKey,
        trusted: Iterable[x509.Certificate],
        out_dir: PathLike,
        engine: Engine,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
        allow_legacy: bool = False,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self.key = key
        self.trusted: tuple[x509.Certificate, ...] = tuple(load_trusted(trusted).values())
        if not self.trusted:
            raise ValueError("a receiver needs at least one pinned sender certificate")
        # Their verification keys are loaded once here, not per message.
        self.signers = TrustedSigners.load(self.trusted)
        self.out_dir = Path(out_dir)
        self.engine = engine
        self.clock = clock
        self.allow_legacy = allow_legacy
        self.max_bytes = max_bytes

    @classmethod
    def open(
        cls,
        *,
        key: PathLike,
        trusted: Sequence[PathLike | x509.Certificate],
        out_dir: PathLike,
        state: PathLike | None = None,
        passphrase: bytes | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
        allow_legacy: bool = False,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> Receiver:
        """Load the key (PEM, or PKCS#12 by its ``.p12``/``.pfx`` suffix) and the pinned certificates, and
        open (creating) the output directory and the replay database (default ``<out_dir>/received.db``)."""
        private_key = PrivateKey.load(key, passphrase)
        pinned = load_trusted(trusted).values()
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        db = Path(state) if state is not None else out / "received.db"
        engine = open_engine(f"sqlite:///{db.resolve()}")
        return cls(private_key, pinned, out, engine, clock=clock, allow_legacy=allow_legacy, max_bytes=max_bytes)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def seen(self, message_id: str) -> bool:
        """True if ``message_id`` was accepted before."""
        with self.engine.connect() as conn:
            row = conn.execute(select(received.c.message_id).where(received.c.message_id == message_id))
            return row.first() is not None

    def receive(self, data: bytes, *, source: str = "message") -> Receipt:
        """Check one received message end to end and write its plaintext and receipt; see the module doc.

        ``source`` names the message in refusals (a file name, never content). Nothing is written unless
        every check passes.
        """
        if len(data) > self.max_bytes:
            raise SecurityError(f"{source}: {_SUBJECT}", f"message is over the size limit of {self.max_bytes} bytes")
        now = self.clock()
        try:
            # One safe parse of the plaintext (inside decrypt), checked and verified as that same tree.
            document = decrypt_document(data, self.key, allow_legacy=self.allow_legacy, max_bytes=self.max_bytes)
            _refuse_hidden_nodes(document)
            root, signer = verify_document(document, self.signers, now=now)
        except SecurityError as error:
            # Name the message (the file it came in) in front of the step that refused it.
            raise SecurityError(f"{source}: {error.subject}", error.reason) from None
        issues = validator.validate(root)
        if issues:
            first = issues[0]
            more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
            raise MessageInvalidError(source, first.path, f"signed message is not valid against the IEPD: "
                                                          f"{first.message}{more}")
        message_id = _message_id(root, source)
        message_type = validator.message_type_of(root) or "unknown"
        if self.seen(message_id):
            raise SecurityError(f"{source}: {_SUBJECT}", "replay: this message id was already received")
        content = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
        receipt = Receipt(
            message_id=message_id,
            message_type=message_type,
            sender_fingerprint=fingerprint(signer),
            sender_key_id=key_id(signer),
            received_sha256=hashlib.sha256(data).hexdigest(),
            plaintext_sha256=hashlib.sha256(content).hexdigest(),
            received_at=now,
            plaintext_path=self.out_dir / f"{message_id}.xml",
            receipt_path=self.out_dir / f"{message_id}.receipt.json",
        )
        self._store(receipt, content, source)
        return receipt

    def _store(self, receipt: Receipt, content: bytes, source: str) -> None:
        """Record the message id and link both files into place in one transaction, or leave no trace."""
        receipt_bytes = json.dumps(receipt.to_json(), indent=2, sort_keys=True).encode() + b"\n"
        staged: list[tuple[Path, Path]] = []
        placed: list[Path] = []
        try:
            staged.append((_stage(self.out_dir, content), receipt.plaintext_path))
            staged.append((_stage(self.out_dir, receipt_bytes), receipt.receipt_path))
            with self.engine.begin() as conn:
                conn.execute(insert(received).values(
                    message_id=receipt.message_id, message_type=receipt.message_type,
                    sender_fingerprint=receipt.sender_fingerprint, received_sha256=receipt.received_sha256,
                    plaintext_sha256=receipt.plaintext_sha256, received_at=receipt.received_at,
                    plaintext_file=receipt.plaintext_path.name,
                ))
                for temporary, final in staged:
                    os.link(temporary, final)  # fails if the name exists: never overwrite a received file
                    placed.append(final)
                _fsync_directory(self.out_dir)
        except IntegrityError:
            _unlink(placed)
            raise SecurityError(f"{source}: {_SUBJECT}", "replay: this message id was already received") from None
        except FileExistsError:
            _unlink(placed)
            raise SecurityError(f"{source}: {_SUBJECT}",
                                "a file for this message id already exists in the output directory") from None
        except BaseException:
            _unlink(placed)
            raise
        finally:
            _unlink(temporary for temporary, _ in staged)


def _refuse_hidden_nodes(document: etree._ElementTree) -> None:
    """Refuse comments and processing instructions inside the document element.

    Exclusive c14n drops comments before digesting, so a comment injected into a signed text node
    (``Ja<!---->ne``) leaves the signature valid while a consumer reading ``.text`` sees the text cut short.
    The content verification hands on has no comments anyway; refusing outright still tells the sender
    that someone tampered with the message. Neither we nor xmlsec1 ever write comments or PIs inside a
    message, so a genuine one never trips this.
    """
    for node in document.getroot().iter(etree.Comment, etree.ProcessingInstruction):
        kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
        raise SecurityError(_SUBJECT, f"a {kind} inside the signed document is refused "
                                                     "(comment injection changes what a text node reads as)")


def _message_id(root: etree._Element, source: str) -> str:
    """The message id from the signed content's ``nx:MessageMetadata``; it must be safe as a file name."""
    found = root.findall(_MESSAGE_ID_PATH)
    if len(found) != 1:
        raise MessageInvalidError(source, "nx:MessageMetadata/nx:MessageIdentification",
                                  "exactly one message id is required")
    value = (found[0].text or "").strip()
    if not _SAFE_MESSAGE_ID.fullmatch(value):
        raise MessageInvalidError(source, "nx:MessageMetadata/nx:MessageIdentification/nc:IdentificationID",
                                  "message id must be 1-128 letters, digits, '.', '_' or '-'")
    return value


def _stage(directory: Path, data: bytes) -> Path:
    """Write ``data`` to a new hidden temporary file (0600: plaintext may hold PHI), fsync it, return its path."""
    path = directory / f".incoming-{secrets.token_hex(8)}.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


__all__ = ["Receipt", "Receiver"]
