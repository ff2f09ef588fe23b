"""The whole pipeline per stage and end to end vs the cryptographic floor and a per-file shell script.

Run: ``.venv/bin/python -m bench.pipeline [--records 2000] [--sample 50] [--scale 1000,5000]``.

One run, all in this process on the same generated data:

1. ``exchange.demo.generate`` writes a JMS drop of N bookings (seed 2026) to a temp dir, ``mint_dev_pki``
   mints RSA-3072 keys in a temp home, and a one-recipient exchange YAML (the demo's shape, recipient
   ``county-bh`` with the behavioral-health-provider profile, local outbox transport) is written beside them.
2. End to end: ``open_exchange`` + ``pipeline.plan`` / ``process_window`` (every window) / ``deliver``, wall
   time, on a fresh state database. Peak RSS (``resource.getrusage``) is read before and after.
3. Each stage alone, on a second fresh home so linking starts from an empty index as it did end to end:
   read (the source over every window), link (``PersonIndex.link``), map (the message builder), validate
   (``niem_iepd.validator``, XSD only and XSD + Schematron), redact (``disclosure.for_recipient``), sign,
   encrypt (``exchange.security`` with keys preloaded), outbox write (``Outbox.enqueue``), deliver (outbox
   to files). Each stage's input is the previous stage's output, kept in memory (this is a bench, the
   pipeline itself streams).
4. The floor: raw ``lxml`` ``XMLSchema.validate`` + raw python-xmlsec sign + encrypt (the same calls
   ``bench.security`` uses) of the same redacted documents in a tight loop. We print our end-to-end rate as a
   ratio of it (the issue's target: at least 0.6x per core).
5. The county script: ``xmllint --schema`` + ``xmlsec1 --sign`` + ``xmlsec1 --encrypt`` per file on a sample
   of the same documents (templates prepared beforehand, untimed), extrapolated to N; we print our speed-up
   (target: at least 50x).

Rates are messages (or records, for read) per second of wall time on one core; nothing here runs in
parallel. Results and the bottlenecks they point at: bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xmlsec
from lxml import etree

from bench.security import _raw_encrypt, _raw_sign
from exchange import disclosure, pipeline
from exchange.demo.generate import write_demo_drop
from exchange.runtime import Exchange, open_exchange
from exchange.security import encrypt, mint_dev_pki, sign
from exchange.state.outbox import QueuedMessage, message_id
from niem_iepd import safexml, validator
from transforms.mapping import BUILDERS, MessageHeader
from transforms.model import Rejected, record_digest

SEED = 2026
WARM_UP = Path(validator.__file__).parent / "samples/booking-notification.xml"
RECIPIENT = "county-bh"
STAGES = ("read", "link", "map", "validate (XSD)", "validate (XSD+Schematron)", "redact", "sign", "encrypt",
          "outbox write", "deliver (outbox to files)", "end to end")
"""Row names of the table, in order (the smoke test checks every one is printed)."""

_CONFIG = """\
# Written by bench.pipeline: the demo exchange's shape with one recipient.
name: bench-booking
message_type: BookingNotification
sender: Example County Sheriff's Office
source:
  kind: jail_csv
  path: "{drop}"
  system: jail
recipients:
  - id: {recipient}
    organization: Example County Behavioral Health
    certificate: {certificate}
    transport: {{kind: outbox, path: var/outbox}}
    purpose: Continuity of care for active clients (data matching at booking)
    legal_basis: County jail / behavioral-health data-sharing agreement
    profile: behavioral-health-provider
signing:
  key: {signing_key}
  certificate: {signing_certificate}
state_url: sqlite:///var/state.db
index_secret: var/index.secret
batch_size: 100
schedule: "@hourly"
"""


@dataclass
class Row:
    """One line of the table: how many items a stage handled and how long it took."""

    name: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        """Items per second."""
        return self.count / self.seconds if self.seconds else float("inf")


@dataclass
class Result:
    """Everything one run at one size measured."""

    records: int
    rows: list[Row] = field(default_factory=list)
    messages: int = 0
    end_to_end: float = 0.0
    floor: float = 0.0
    shell_per_message: float = 0.0
    shell_sample: int = 0
    peak_rss_before_mb: float = 0.0
    peak_rss_after_mb: float = 0.0


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, items: list, step: Callable[[object], object], note: str = "") -> tuple[Row, list]:
    """Apply ``step`` to every item; the row and the non-None outputs (None: the stage dropped the item)."""
    out = []
    started = time.perf_counter()
    for item in items:
        result = step(item)
        if result is not None:
            out.append(result)
    return Row(name, len(items), time.perf_counter() - started, note), out


def _home(root: Path, name: str, drop: Path, pki) -> tuple[Path, Path]:
    """A fresh exchange home with the config written; (home, config path)."""
    home = root / name
    home.mkdir()
    config = home / "exchange.yaml"
    config.write_text(_CONFIG.format(drop=drop, recipient=RECIPIENT,
                                     certificate=pki.recipient_certificate(RECIPIENT),
                                     signing_key=pki.signing_key, signing_certificate=pki.signing_certificate))
    return home, config


def _end_to_end(config: Path, home: Path) -> tuple[float, float, int]:
    """plan + process every window + deliver, as ``niem-exchange run`` does.

    Returns (seconds to open the exchange, seconds to run it, messages delivered). The validator is warmed up
    first (schemas compiled, Saxon started, rules compiled: a one-off ~1-2 s per process that a long run
    pays once), so the rate is the steady state a large batch sees.
    """
    validator.validate(safexml.parse_trusted_file(WARM_UP).getroot())
    started = time.perf_counter()
    ex = open_exchange(config, home)
    opened = time.perf_counter()
    try:
        for key in pipeline.plan(ex):
            pipeline.process_window(ex, key)
        delivered = sum(pipeline.deliver(ex, r.id).delivered for r in ex.config.recipients)
    finally:
        ex.close()
    return opened - started, time.perf_counter() - opened, delivered


def _stages(ex: Exchange) -> tuple[list[Row], list[etree._Element]]:
    """Run each stage alone over the output of the one before; the rows and the redacted documents."""
    rows: list[Row] = []
    recipient = ex.config.recipients[0]
    builder = BUILDERS[ex.config.message_type]
    now = ex.clock()
    windows = ex.source.plan(None, ex.config.batch_size)

    started = time.perf_counter()
    items = [item for window in windows for item in ex.source.read(window)]
    records = [item for item in items if not isinstance(item, Rejected)]
    rows.append(Row("read", len(items), time.perf_counter() - started,
                    f"{len(windows)} windows, {len(items) - len(records)} rejected"))

    row, linked = _timed("link", records, lambda r: (r, ex.persons.link(ex.source.system, r.ref.record_id,
                                                                         r.person, now).shared_id))
    rows.append(row)

    def build(pair):
        record, shared_id = pair
        record_key = f"{ex.source.system}:{record.ref.record_id}"
        mid = message_id(ex.config.name, recipient.id, record_key, record_digest(record))
        header = MessageHeader(mid, now, ex.config.sender, recipient.organization, ex.config.message_type)
        return record, shared_id, mid, record_key, builder.build(record, shared_id, header)

    row, built = _timed("map", linked, build)
    rows.append(row)
    row, _ = _timed("validate (XSD)", built, lambda b: validator.validate(b[4], business_rules=False) or None)
    rows.append(row)
    row, invalid = _timed("validate (XSD+Schematron)", built, lambda b: validator.validate(b[4]) or None)
    row.note = f"{len(invalid)} invalid"
    rows.append(row)

    def redact(b):
        prepared = disclosure.for_recipient(ex, recipient, b[0], b[4], now)
        return None if prepared is None else (*b[:4], prepared)

    row, prepared = _timed("redact", built, redact)
    row.note = f"{len(built) - len(prepared)} withheld by the profile"
    rows.append(row)
    row, signed = _timed("sign", prepared, lambda p: (*p, sign(p[4].root, ex.signer)))
    rows.append(row)
    certificate = ex.recipient_certs[recipient.id]
    row, encrypted = _timed("encrypt", signed, lambda s: (*s, encrypt(s[5], certificate)))
    rows.append(row)

    def enqueue(e):
        record, shared_id, mid, record_key, ready, _, payload = e
        message = QueuedMessage(mid, recipient.id, shared_id, ex.config.message_type, payload,
                                hashlib.sha256(payload).hexdigest(), ready.categories, 0)
        return ex.outbox.enqueue(message, record_key, now) or None

    row, _ = _timed("outbox write", encrypted, enqueue)
    rows.append(row)
    started = time.perf_counter()
    delivered = pipeline.deliver(ex, recipient.id).delivered
    rows.append(Row("deliver (outbox to files)", delivered, time.perf_counter() - started))
    return rows, [p[4].root for p in prepared]


def _floor(documents: list[etree._Element], ex: Exchange) -> float:
    """Seconds per document for raw lxml XSD validation + raw python-xmlsec sign + encrypt, in a tight loop."""
    schema = etree.XMLSchema(etree.parse(str(validator.schema_path(ex.config.message_type))))
    key = ex.signer.key
    manager = ex.recipient_certs[ex.config.recipients[0].id].manager
    _raw_encrypt(_raw_sign(documents[0], key), manager)  # first calls allocate
    started = time.perf_counter()
    for document in documents:
        if not schema.validate(document):
            raise AssertionError("a document the pipeline accepted fails the raw schema")
        _raw_encrypt(_raw_sign(document, key), manager)
    return (time.perf_counter() - started) / len(documents)


def _encryption_template() -> bytes:
    """An EncryptedData template like ours (AES-256-GCM, RSA-OAEP key transport, recipient certificate)."""
    holder = etree.Element("holder")
    template = xmlsec.template.encrypted_data_create(holder, xmlsec.constants.TransformAes256Gcm,
                                                     type=xmlsec.constants.TypeEncElement, ns="xenc")
    xmlsec.template.encrypted_data_ensure_cipher_value(template)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    xmlsec.template.x509_data_add_certificate(
        xmlsec.template.add_x509_data(xmlsec.template.encrypted_data_ensure_key_info(encrypted_key)))
    return etree.tostring(template, xml_declaration=True, encoding="UTF-8")


def _signature_template(document: etree._Element) -> bytes:
    """The document with an enveloped-signature template (exclusive c14n, RSA-SHA256, X509 certificate)."""
    document = copy.deepcopy(document)
    template = xmlsec.template.create(document, xmlsec.constants.TransformExclC14N,
                                      xmlsec.constants.TransformRsaSha256, ns="ds")
    document.append(template)
    reference = xmlsec.template.add_reference(template, xmlsec.constants.TransformSha256, uri="")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template)))
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _shell(documents: list[etree._Element], ex: Exchange, pki, directory: Path) -> float:
    """Seconds per document for xmllint --schema + xmlsec1 --sign + xmlsec1 --encrypt, one process each."""
    directory.mkdir()
    schema = str(validator.schema_path(ex.config.message_type))
    encryption_template = directory / "encrypt-template.xml"
    encryption_template.write_bytes(_encryption_template())
    files = []
    for n, document in enumerate(documents):
        path = directory / f"{n}.xml"
        path.write_bytes(_signature_template(document))
        files.append(path)
    signing = f"{pki.signing_key},{pki.signing_certificate}"
    recipient = str(pki.recipient_certificate(RECIPIENT))
    started = time.perf_counter()
    for path in files:
        signed, sealed = path.with_suffix(".signed"), path.with_suffix(".enc")
        for command in (
            ["xmllint", "--noout", "--schema", schema, str(path)],
            ["xmlsec1", "--sign", "--privkey-pem", signing, "--output", str(signed), str(path)],
            ["xmlsec1", "--encrypt", "--pubkey-cert-pem", recipient, "--session-key", "aes-256",
             "--xml-data", str(signed), "--output", str(sealed), str(encryption_template)],
        ):
            subprocess.run(command, check=True, capture_output=True)
    return (time.perf_counter() - started) / len(files)


def measure(records: int, sample: int) -> Result:
    """Generate ``records`` bookings and measure everything once; see the module docstring."""
    result = Result(records)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp)
        drop = root / "drop"
        drop.mkdir()
        write_demo_drop(drop, SEED, records)
        pki = mint_dev_pki(root / "pki", organization="Bench County", recipients=[RECIPIENT],
                           now=dt.datetime.now(dt.timezone.utc))

        home, config = _home(root, "end-to-end", drop, pki)
        result.peak_rss_before_mb = _peak_rss_mb()
        opening, seconds, result.messages = _end_to_end(config, home)
        result.peak_rss_after_mb = _peak_rss_mb()
        result.end_to_end = seconds

        home, config = _home(root, "stages", drop, pki)
        ex = open_exchange(config, home)
        try:
            result.rows, documents = _stages(ex)
            result.rows.append(Row("end to end", result.messages, seconds,
                                   f"plan + process + deliver (opening took {opening:.2f} s more)"))
            result.floor = _floor(documents, ex)
            chosen = documents[:: max(1, len(documents) // sample)][:sample]
            result.shell_sample = len(chosen)
            result.shell_per_message = _shell(chosen, ex, pki, root / "shell")
        finally:
            ex.close()
    return result


def report(result: Result) -> None:
    """Print the table and the two baseline ratios."""
    print(f"\n{result.records} bookings generated (seed {SEED}), {result.messages} messages delivered end to end, "
          f"one recipient (behavioral-health-provider), one core, wall time")
    print(f"{'stage':<28}{'items':>8}{'items/s':>11}{'us/item':>11}  note")
    for row in result.rows:
        print(f"{row.name:<28}{row.count:>8}{row.rate:>11.0f}{row.seconds / max(row.count, 1) * 1e6:>11.0f}  {row.note}")
    ours = result.messages / result.end_to_end if result.end_to_end else 0.0
    floor = 1 / result.floor if result.floor else 0.0
    shell = 1 / result.shell_per_message if result.shell_per_message else 0.0
    print(f"{'floor (lxml XSD + xmlsec)':<28}{'':>8}{floor:>11.0f}{result.floor * 1e6:>11.0f}  raw calls, same documents")
    print(f"{'shell (xmllint + xmlsec1)':<28}{result.shell_sample:>8}{shell:>11.1f}"
          f"{result.shell_per_message * 1e6:>11.0f}  sample, 3 processes per file")
    print(f"end to end vs floor: {ours / floor if floor else 0:.2f}x of the floor's rate (target >= 0.6x)")
    print(f"end to end vs shell: {ours / shell if shell else 0:.1f}x faster; the shell script would take "
          f"{result.shell_per_message * result.messages:.0f} s for these {result.messages} messages, "
          f"we took {result.end_to_end:.1f} s (target >= 50x)")
    print(f"peak RSS: {result.peak_rss_before_mb:.0f} MB before the end-to-end run, "
          f"{result.peak_rss_after_mb:.0f} MB after (process high-water mark; the stage runs that follow keep "
          f"every document in memory and are not counted)")


def main(argv: list[str] | None = None) -> None:
    """Measure at ``--records`` (or each size of ``--scale``) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="bookings to generate (default 2000)")
    parser.add_argument("--sample", type=int, default=50, help="files for the shell baseline (default 50)")
    parser.add_argument("--scale", default="", help="comma-separated sizes, e.g. 1000,5000: run each, print "
                                                    "the ratio of end-to-end time per message")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.scale.split(",") if s.strip()] or [args.records]
    results = []
    for size in sizes:
        result = measure(size, args.sample)
        report(result)
        results.append(result)
    if len(results) > 1:
        first = results[0]
        per_first = first.end_to_end / first.messages
        print("\nscaling (end-to-end time per message, relative to the smallest size; 1.00 = linear):")
        for result in results:
            per = result.end_to_end / result.messages
            print(f"  {result.records:>8} bookings: {per * 1e6:8.0f} us/message  x{per / per_first:5.2f}  "
                  f"peak RSS so far {result.peak_rss_after_mb:.0f} MB")
        print("  (peak RSS is this process's high-water mark, so a later size includes the earlier sizes' stage "
              "runs: run each size alone to compare memory)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
