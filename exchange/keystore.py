"""Our signing key and the recipients' certificates, loaded as an exchange YAML names them.

Called by the composition root (:func:`exchange.runtime.open_exchange`) once per process. Every problem
becomes a :class:`ConfigError` naming the YAML file and the setting (``signing.passphrase_env``,
``recipients.<id>.certificate[1]``...) and the fix; the text never carries a passphrase or key material.

- The signing key's passphrase is never in the YAML: ``signing.passphrase_env`` names an environment
  variable and ``signing.passphrase_file`` a file (a mounted secret) that hold it.
- A recipient may list several certificates. Each is read and checked (RSA >= 2048, keyEncipherment);
  those outside their validity period are reported as warnings and skipped as long as one is valid. None
  valid refuses to start. The pipeline asks again per message (:meth:`RecipientCertificates.usable`).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from exchange.config import RecipientConfig, SigningConfig, resolve
from exchange.security.keys import (
    PASSPHRASE_MISSING,
    PASSPHRASE_UNNEEDED,
    RecipientCertificate,
    RecipientCertificates,
    SigningIdentity,
)
from transforms.model import ConfigError, SecurityError

_log = logging.getLogger(__name__)
_MINT = "run `niem-exchange certs dev-pki` for demo keys, or fix the path"


def load_signing_identity(
    config_path: Path, home: Path, signing: SigningConfig, *, environ: Mapping[str, str] | None = None
) -> SigningIdentity:
    """Load our signing key and certificate, with the passphrase from where ``signing`` says it is.

    ``environ`` defaults to ``os.environ`` (passed in by tests). A missing variable or file, an empty
    passphrase, a wrong one, or a protected key without one are ConfigErrors naming the setting.
    """
    source = str(config_path)
    passphrase, setting = _passphrase(source, home, signing, os.environ if environ is None else environ)
    key = resolve(home, signing.key)
    certificate = None if signing.certificate is None else resolve(home, signing.certificate)
    try:
        return SigningIdentity.load(key, certificate, passphrase)
    except FileNotFoundError as error:
        raise ConfigError(source, "signing", f"file {Path(error.filename).name!r} not found", _MINT) from None
    except SecurityError as error:
        if error.reason == PASSPHRASE_MISSING:
            raise ConfigError(source, "signing.key", error.reason,
                              "name its passphrase with signing.passphrase_env or signing.passphrase_file"
                              ) from None
        if error.reason == PASSPHRASE_UNNEEDED:
            raise ConfigError(source, setting, error.reason, f"remove {setting}, or protect the key") from None
        if "passphrase is wrong" in error.reason and setting is not None:
            raise ConfigError(source, setting, "the passphrase it names does not open signing.key",
                              f"check the passphrase that {setting} points to") from None
        raise ConfigError(source, "signing", error.reason, "renew or replace the key or certificate") from None


def read_passphrase_file(path: Path) -> str:
    """The passphrase a file (a mounted secret) holds: one line, without the newline an editor or ``echo``
    adds. Raises OSError or UnicodeDecodeError for a file that cannot be read as UTF-8 text."""
    value = path.read_text(encoding="utf-8")
    value = value[:-1] if value.endswith("\n") else value
    return value[:-1] if value.endswith("\r") else value


def _passphrase(source: str, home: Path, signing: SigningConfig, environ: Mapping[str, str]
                ) -> tuple[bytes | None, str | None]:
    """(passphrase bytes or None, the setting it came from)."""
    if signing.passphrase_env is not None:
        setting = "signing.passphrase_env"
        value = environ.get(signing.passphrase_env)
        if value is None:
            raise ConfigError(source, setting, f"environment variable {signing.passphrase_env} is not set",
                              "export it in the service's environment (or an Airflow secret)")
    elif signing.passphrase_file is not None:
        setting = "signing.passphrase_file"
        path = resolve(home, signing.passphrase_file)
        try:
            value = read_passphrase_file(path)
        except FileNotFoundError:
            raise ConfigError(source, setting, f"file {path.name!r} not found", "fix the path") from None
        except (OSError, UnicodeDecodeError):
            raise ConfigError(source, setting, f"file {path.name!r} cannot be read as UTF-8 text",
                              "check its permissions and content") from None
    else:
        return None, None
    if not value:
        raise ConfigError(source, setting, "the passphrase it names is empty", "put the key's passphrase there")
    return value.encode("utf-8"), setting


def load_recipient_certificates(
    config_path: Path, home: Path, recipient: RecipientConfig, *, now: dt.datetime
) -> RecipientCertificates:
    """Read every certificate ``recipient`` lists; warn about those not valid at ``now``, refuse if none is."""
    source, key = str(config_path), f"recipients.{recipient.id}.certificate"
    paths = recipient.certificates
    labels = tuple(key if len(paths) == 1 else f"{key}[{index}]" for index in range(len(paths)))
    loaded = []
    for path, label in zip(paths, labels):
        try:
            loaded.append(RecipientCertificate.read(resolve(home, path)))
        except FileNotFoundError as error:
            raise ConfigError(source, label, f"file {Path(error.filename).name!r} not found", _MINT) from None
        except SecurityError as error:
            raise ConfigError(source, label, error.reason, "renew or replace the certificate") from None
    certificates = RecipientCertificates(tuple(loaded), labels, recipient=recipient.id)
    problems = certificates.unusable(now)
    if len(problems) == len(loaded):
        problem = problems[0][1] if len(problems) == 1 else \
            "no certificate is valid now (" + "; ".join(f"{label}: {reason}" for label, reason in problems) + ")"
        raise ConfigError(source, key, problem, "renew or replace the certificate") from None
    for label, reason in problems:
        _log.warning("%s: %s: %s; skipped while another certificate of recipient %s is valid",
                     source, label, reason, recipient.id)
    return certificates
