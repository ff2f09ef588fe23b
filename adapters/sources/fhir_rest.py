"""A FHIR R4 REST server as a source: ``_lastUpdated`` incremental sync, ``next``-link paging, SMART Backend auth.

Each plan makes at most one window, ``(since, until]``: ``since`` is the cursor (the ``until`` of the last
committed sync; None on the first run: everything) and ``until`` is the clock now minus ``lag`` (a margin for
resources committed with a slightly earlier timestamp). The window's key is its ``since``, so re-planning
before a pending window is done keeps that window (its ``until`` included) instead of adding an overlapping one.

Reading a window: every configured resource type is searched with ``_lastUpdated=gt<since>&_lastUpdated=le<until>``
(pages followed through ``Bundle.link[relation=next]``, only on the server's own origin); each patient touched
by a change is then read whole (``Patient/<id>`` and ``<Type>?patient=<id>``) and mapped to one ClinicalRecord;
each changed Consent becomes a ConsentRecord. A resource the mapping cannot use is a Rejected naming it.

Authentication (optional): SMART Backend Services (client-credentials grant with a signed JWT client
assertion, RFC 7523): :class:`SmartBackendAuth` signs ``{iss, sub: client_id, aud: token_url, exp, jti}``
with the client's private key (RS384 or ES384, ``kid`` in the header), posts it to the token endpoint and
caches the access token until shortly before it expires. TLS certificate verification is always on; plain
``http`` is refused except to a loopback address (a server started by the tests on 127.0.0.1).
"""
from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
import jwt

from transforms.model import (
    ClinicalRecord,
    ConfigError,
    ConsentRecord,
    PermanentError,
    RecordError,
    Rejected,
    RetryableError,
    SecurityError,
    SourceRef,
    Window,
)
from transforms.model.fhir import clinical_record, consent_record, patient_of

DEFAULT_TYPES: tuple[str, ...] = ("Patient", "Condition", "Encounter", "CarePlan", "CareTeam", "Consent")
"""Resource types searched for changes and read per patient."""
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_PAGES = 10_000
"""A paging chain longer than this is a server loop, not data."""

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def check_url(url: str, what: str) -> str:
    """``url`` without a trailing slash; https required unless the host is a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("fhir_rest source", what, "is not an http(s) URL", "give https://host/path")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError("fhir_rest source", what, "uses plain http", "use https (TLS is required off-host)")
    return url.rstrip("/")


class SmartBackendAuth:
    """SMART Backend Services client: a signed JWT assertion exchanged for a bearer token, cached."""

    def __init__(self, token_url: str, client_id: str, private_key_pem: bytes, *, key_id: str,
                 algorithm: str = "RS384", scope: str = "system/*.read", clock: Clock = _utc_now) -> None:
        """Authenticate as ``client_id`` with the PEM private key registered (by its ``key_id``) at the server."""
        if algorithm not in ("RS384", "ES384", "RS256", "ES256"):
            raise ConfigError("fhir_rest source", "auth.algorithm", "is not supported", "use RS384 or ES384")
        self.token_url = check_url(token_url, "auth.token_url")
        self.client_id = client_id
        self.scope = scope
        self.key_id = key_id
        self.algorithm = algorithm
        self._key = private_key_pem
        self._clock = clock
        self._token: str | None = None
        self._expires = datetime.min.replace(tzinfo=timezone.utc)

    def assertion(self) -> str:
        """A fresh client assertion (valid five minutes, unique ``jti``)."""
        now = self._clock()
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": self.token_url,
                  "exp": int((now + timedelta(minutes=5)).timestamp()), "iat": int(now.timestamp()),
                  "jti": secrets.token_urlsafe(24)}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers={"kid": self.key_id, "typ": "JWT"})

    def token(self, client: httpx.Client, *, renew: bool = False) -> str:
        """A valid access token, fetched when none is cached, it expires within a minute, or ``renew``."""
        if self._token and not renew and self._clock() < self._expires - timedelta(minutes=1):
            return self._token
        form = {"grant_type": "client_credentials", "scope": self.scope, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion()}
        try:
            response = client.post(self.token_url, data=form)
        except httpx.TransportError as exc:
            raise RetryableError("fhir token", f"the token endpoint cannot be reached ({type(exc).__name__})") from None
        if response.status_code in (400, 401, 403):
            raise SecurityError("fhir token endpoint", f"the client was refused (HTTP {response.status_code})")
        if response.status_code >= 500 or response.status_code == 429:
            raise RetryableError("fhir token", f"the token endpoint answered HTTP {response.status_code}")
        try:
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = int(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise PermanentError("fhir token", "the token response is not a SMART token response") from None
        self._expires = self._clock() + timedelta(seconds=lifetime)
        return self._token


class FhirRestSource:
    """Incremental reads from a FHIR R4 REST server (see the module docstring)."""

    def __init__(self, base_url: str, *, today: date, system: str = "ehr", client: httpx.Client | None = None,
                 auth: SmartBackendAuth | None = None, types: Sequence[str] = DEFAULT_TYPES,
                 page_size: int = 100, lag: timedelta = timedelta(seconds=30), clock: Clock = _utc_now) -> None:
        """Read ``base_url`` (the FHIR base, e.g. ``https://ehr.example.org/fhir``); ``client`` carries TLS
        settings (verification stays on), ``auth`` adds SMART Backend bearer tokens."""
        self.base_url = check_url(base_url, "url")
        self.today = today
        self.system = system
        self.types = tuple(types)
        self.page_size = page_size
        self.lag = lag
        self._clock = clock
        self._auth = auth
        self._client = client or httpx.Client(timeout=30.0, follow_redirects=False)
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    # -- planning -------------------------------------------------------------------------------------------

    def plan(self, cursor: str | None, max_records: int = 500) -> list[Window]:
        """One window ``(cursor, now - lag]``, or none when nothing can have changed."""
        until = self._clock() - self.lag
        if cursor is not None:
            try:
                since = datetime.fromisoformat(cursor)
            except ValueError:
                raise PermanentError("fhir_rest.plan", "the cursor was not written by this source") from None
            if since >= until:
                return []
        stamp = until.astimezone(timezone.utc).isoformat()
        return [Window(key=f"fhir-rest:{cursor or 'start'}", cursor_after=stamp,
                       spec={"since": cursor, "until": stamp})]

    # -- reading --------------------------------------------------------------------------------------------

    def read(self, window: Window) -> Iterator[ClinicalRecord | ConsentRecord | Rejected]:
        """Records of every patient touched and every Consent changed in the window."""
        since, until = window.spec.get("since"), window.spec["until"]
        touched: dict[str, None] = {}
        consents: list[Mapping[str, object]] = []
        for kind in self.types:
            params: list[tuple[str, str]] = [("_lastUpdated", f"le{until}"), ("_count", str(self.page_size))]
            if since:
                params.insert(0, ("_lastUpdated", f"gt{since}"))
            for resource in self._search(kind, params):
                if kind == "Consent":
                    consents.append(resource)
                pid = patient_of(resource)
                if pid:
                    touched.setdefault(pid, None)
        for pid in touched:
            yield self._patient_record(pid)
        for consent in consents:
            ref = SourceRef(self.system, f"Consent/{consent.get('id') or '?'}", str(consent.get("id") or ""))
            try:
                yield consent_record(consent, ref)
            except RecordError as error:
                yield Rejected(error)

    def _patient_record(self, pid: str) -> ClinicalRecord | Rejected:
        ref = SourceRef(self.system, f"Patient/{pid}", pid)
        patient = self._get(f"{self.base_url}/Patient/{pid}", [], missing_ok=True)
        if patient is None:
            return Rejected(RecordError(str(ref), "Patient", "is referred to by changed resources but the server "
                                                             "has no such Patient"))
        related: list[Mapping[str, object]] = []
        for kind in self.types:
            if kind != "Patient":
                related.extend(self._search(kind, [("patient", pid), ("_count", str(self.page_size))]))
        try:
            return clinical_record(patient, related, ref, today=self.today)
        except RecordError as error:
            return Rejected(error)

    def _search(self, kind: str, params: list[tuple[str, str]]) -> Iterator[Mapping[str, object]]:
        """Every resource of a search, following ``next`` links on the server's own origin."""
        url: str | None = f"{self.base_url}/{kind}"
        query: list[tuple[str, str]] = params
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self._get(url, query)
            query = []  # a next link carries its own query
            if not isinstance(page, Mapping) or page.get("resourceType") != "Bundle":
                raise PermanentError(f"fhir search {kind}", "the server answered something other than a Bundle")
            for entry in page.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, Mapping) else None
                if isinstance(resource, Mapping) and resource.get("resourceType") == kind:
                    yield resource  # OperationOutcome and included resources are not records
            url = next((link.get("url") for link in page.get("link") or []
                        if isinstance(link, Mapping) and link.get("relation") == "next"), None)
            if url is not None:
                parts = urlsplit(url)
                if (parts.scheme, parts.netloc) != self._origin:
                    raise SecurityError(f"fhir search {kind}", "a next link points to another origin")
        raise PermanentError(f"fhir search {kind}", f"more than {MAX_PAGES} pages")

    def _get(self, url: str, params: list[tuple[str, str]], *, missing_ok: bool = False) -> object:
        headers = {"Accept": "application/fhir+json"}
        for attempt in range(2):
            if self._auth is not None:
                headers["Authorization"] = "Bearer " + self._auth.token(self._client, renew=attempt > 0)
            try:
                # No params=[] for a next link: httpx would replace the link's own query with an empty one.
                response = self._client.get(url, params=params or None, headers=headers)
            except httpx.TransportError as exc:
                raise RetryableError("fhir read", f"the server cannot be reached ({type(exc).__name__})") from None
            if response.status_code == 401 and self._auth is not None and attempt == 0:
                continue  # the token may have been revoked early: renew once
            break
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code in (401, 403):
            raise SecurityError("fhir read", f"access refused (HTTP {response.status_code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError("fhir read", f"the server answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise PermanentError("fhir read", f"the server answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise RetryableError("fhir read", "the server answered with invalid JSON") from None
