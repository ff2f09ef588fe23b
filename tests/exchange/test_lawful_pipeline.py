"""Lawful sharing end to end on BookingNotification: redaction per recipient, one ledger entry per delivered
message, the accounting of disclosures with exempt categories, the consent registry."""
from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from exchange.profiles import load_profile, shipped_dir
from niem_iepd import safexml, validator
from tests.conftest import SHARED, mint_demo_home
from transforms.redaction import element_path

from tests.exchange.lawful_helpers import exchange_yaml, received, run, small_drop

ALL = datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)


def _allowed(profile: str) -> tuple[str, ...]:
    return load_profile(shipped_dir() / f"{profile}.yaml").rule("BookingNotification").allow


def test_each_demo_recipient_receives_only_what_its_profile_allows(demo_run):
    home, _ = demo_run
    for recipient, profile in (("county-bh", "behavioral-health-provider"), ("state-bh", "state-agency")):
        allow = _allowed(profile)
        messages = received(home, recipient)
        assert messages
        for plain in messages[:60]:
            root = safexml.parse(plain).getroot()
            assert validator.validate(root) == []
            for element in root.iter():
                path = element_path(element, root)
                if path == "" or path.startswith("ds:") or "/ds:" in path or path.startswith("?"):
                    continue  # the root and our enveloped signature
                assert any(path == a or path.startswith(a + "/") or a.startswith(path + "/") for a in allow), \
                    f"{recipient}: {path}"


def test_every_delivered_message_has_exactly_one_ledger_entry_with_the_redacted_categories(demo_run):
    home, summary = demo_run
    with sqlite3.connect(home / "var/state.db") as db:
        delivered = [r[0] for r in db.execute("SELECT message_id FROM outbox WHERE state = 'delivered'")]
        entries = Counter(r[0] for r in db.execute("SELECT message_id FROM ledger"))
        categories = dict(db.execute("SELECT recipient, categories FROM ledger GROUP BY recipient"))
    assert len(delivered) == summary.delivered > 0
    assert entries == Counter(delivered)
    assert "name" in categories["county-bh"] and "charges" not in categories["county-bh"]
    assert "name" not in categories["state-bh"] and "birth date" not in categories["state-bh"]
    assert "shared person identifier (keyed token)" in categories["state-bh"]


@pytest.fixture(scope="module")
def three_recipients(tmp_path_factory):
    """A small exchange to a provider, a state agency and a pretrial-services office (exempt from accounting)."""
    from exchange.commands.certs import DEMO_RECIPIENTS  # noqa: F401  (the demo pair plus ours)
    from exchange.security import mint_dev_pki

    home = tmp_path_factory.mktemp("lawful-home")
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=["county-bh", "state-bh", "pretrial"], now=datetime.now(timezone.utc))
    config = exchange_yaml(home, small_drop(home / "drop"), {
        "county-bh": "behavioral-health-provider", "state-bh": "state-agency", "pretrial": "court-corrections"})
    summary = run(config, home)
    return home, config, summary


def _person_with_most_disclosures(home: Path) -> str:
    with sqlite3.connect(home / "var/state.db") as db:
        return db.execute("SELECT shared_id FROM ledger GROUP BY shared_id ORDER BY count(*) DESC").fetchone()[0]


def test_accounting_leaves_out_disclosures_exempt_under_164_528(three_recipients):
    from exchange.config import load_config, resolve_url
    from exchange.state.db import open_engine
    from exchange.state.ledger import account

    home, config, summary = three_recipients
    assert summary.delivered == summary.enqueued > 0
    person = _person_with_most_disclosures(home)
    result = account(open_engine(resolve_url(home, load_config(config).state_url)), person, *ALL)
    assert result.chain.ok
    assert {d.recipient for d in result.listed} == {"county-bh", "state-bh"}
    assert {d.recipient for d in result.exempt} == {"pretrial"}
    assert all("164.528(a)(1)" in d.accounting_exempt for d in result.exempt)
    assert all(d.legal_basis.startswith("45 CFR 164.512(k)(5)") for d in result.exempt)
    early = account(open_engine(resolve_url(home, load_config(config).state_url)), person,
                    datetime(2000, 1, 1, tzinfo=timezone.utc), datetime(2001, 1, 1, tzinfo=timezone.utc))
    assert early.listed == early.exempt == ()


def test_ledger_account_command_prints_the_accounting(three_recipients):
    from exchange.cli import app

    home, config, _ = three_recipients
    person = _person_with_most_disclosures(home)
    result = CliRunner().invoke(app, ["ledger", "account", person, "--since", "2020-01-01", "--config",
                                      str(config), "--home", str(home), "--show-exempt"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert "Organization county-bh" in result.output and "Organization state-bh" in result.output
    assert "exempt from the accounting" in result.output and "164.528(a)(1)(vii)" in result.output
    bad = CliRunner().invoke(app, ["ledger", "account", person, "--since", "last tuesday", "--config",
                                   str(config), "--home", str(home)])
    assert bad.exit_code == 2


def test_tampering_with_an_exemption_breaks_the_chain_and_the_accounting_says_so(tmp_path, three_recipients):
    import shutil

    from exchange.cli import app
    from exchange.state.db import open_engine
    from exchange.state.ledger import verify_chain

    home, config, _ = three_recipients
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    person = _person_with_most_disclosures(copy)
    with sqlite3.connect(copy / "var/state.db") as db:
        seq = db.execute("SELECT min(seq) FROM ledger WHERE shared_id = ? AND recipient = 'county-bh'",
                         (person,)).fetchone()[0]
        # hide a disclosure from the accounting by claiming it was exempt
        db.execute("UPDATE ledger SET accounting_exempt = '45 CFR 164.528(a)(1)(i)' WHERE seq = ?", (seq,))
    assert verify_chain(open_engine(f"sqlite:///{copy}/var/state.db")).broken_at == seq
    result = CliRunner().invoke(app, ["ledger", "account", person, "--config", str(config), "--home", str(copy)],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 1 and "may be incomplete" in result.output
    with sqlite3.connect(copy / "var/state.db") as db:
        db.execute("DELETE FROM ledger WHERE seq = ?", (seq,))
    assert verify_chain(open_engine(f"sqlite:///{copy}/var/state.db")).broken_at == seq + 1


def test_consent_registry_reload_and_revocation_take_effect_on_the_next_read(tmp_path):
    from exchange.consent_registry import ConsentRegistry
    from exchange.state.db import open_engine

    engine = open_engine(f"sqlite:///{tmp_path}/state.db")
    registry = ConsentRegistry(engine, b"s" * 32)
    sheet = tmp_path / "consents.csv"
    header = "consent_id,patient_id,discloser,recipients,purpose,information,status,signed_on,expires_on," \
             "revoked_on,part2,expiry_event\n"
    sheet.write_text(header + "C-1,Patient/7,County BH,class:law-enforcement;pd,PUBHLTH,need flag,active,"
                              "2026-01-01,2027-01-01,,yes,\n"
                              "C-2,Patient/7,County BH,pd,PUBHLTH,,active,2026-01-01,not-a-date,,no,\n")
    loaded = registry.load(sheet)
    assert [c.consent_id for c in loaded.consents] == ["C-1"]
    assert [(e.record, e.field) for e in loaded.rejected] == [("consents.csv#row=3", "expires_on")]
    (on_file,) = registry.for_patient("Patient/7")
    assert on_file.recipients == ("class:law-enforcement", "pd") and on_file.part2 and on_file.revoked_on is None

    sheet.write_text(header + "C-1,Patient/7,County BH,class:law-enforcement;pd,PUBHLTH,need flag,active,"
                              "2026-01-01,2027-01-01,2026-11-20,yes,\n")
    registry.load(sheet)
    assert registry.for_patient("Patient/7")[0].revoked_on == date(2026, 11, 20)
    assert registry.revoke("C-1", date(2026, 11, 1)) and not registry.revoke("C-9", date(2026, 11, 1))
    assert registry.for_patient("Patient/7")[0].revoked_on == date(2026, 11, 1)
    sheet.write_text(header)  # the consent is gone from the source: it is gone from the registry
    registry.load(sheet)
    assert registry.for_patient("Patient/7") == []


@pytest.mark.shared
def test_leap_fhir_consent_examples_are_read_in_place_and_none_authorizes_a_named_recipient(tmp_path):
    from exchange.consent_registry import ConsentRegistry
    from exchange.state.db import open_engine
    from transforms.consent import decide

    folder = SHARED / "data/fhir-consent-leap-cds/consents"
    if not folder.is_dir():
        pytest.skip("shared FHIR Consent examples absent")
    registry = ConsentRegistry(open_engine(f"sqlite:///{tmp_path}/state.db"), b"s" * 32)
    loaded = registry.load(folder)
    assert len(loaded.consents) + len(loaded.rejected) == len(list(folder.glob("*.json")))
    assert all(e.field == "identifier" for e in loaded.rejected)  # two files share one identifier
    by_id = {c.consent_id: c for c in registry.for_patient("Patient/52")}
    assert by_id["consent-boris-expired"].expires_on == date(2016, 1, 1)
    assert by_id["consent-boris-research"].status == "inactive"
    assert by_id["consent-boris-optin"].signed_on == date(2019, 11, 1)  # scope found in category
    assert "54" not in by_id["consent-boris-optin"].recipients  # the denied organization
    verdict = decide(by_id.values(), recipient_id="53", recipient_classes=("behavioral-health-provider",),
                     purpose="TREAT", on=date(2026, 11, 24), part2=True)
    assert not verdict.valid  # no consent names a recipient and a purpose: nothing may leave under them
    expired = decide([by_id["consent-boris-expired"]], recipient_id="x", recipient_classes=(), purpose="",
                     on=date(2026, 11, 24), part2=False)
    assert "expired on 2016-01-01" in expired.reason


def test_a_profile_that_breaks_the_iepd_quarantines_the_record_for_every_recipient(tmp_path):
    """Redaction that removes a required element: the record is set aside naming the profile; no recipient
    gets a copy (the messages of one record are queued all or none)."""
    import yaml

    from exchange.security import mint_dev_pki
    from exchange.state.quarantine import Quarantine
    from exchange.state.db import open_engine

    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=["county-bh", "state-bh"], now=datetime.now(timezone.utc))
    (home / "profiles").mkdir()
    (home / "profiles/too-strict.yaml").write_text(yaml.safe_dump({
        "name": "too-strict", "recipient_class": "state-agency", "description": "Keeps only the envelope.",
        "message_types": {"BookingNotification": {"purpose": "p", "legal_basis": "b",
                                                  "allow": ["nx:MessageMetadata"]}}}))
    config = exchange_yaml(home, small_drop(home / "drop", rows=5),
                           {"county-bh": "behavioral-health-provider", "state-bh": "profiles/too-strict.yaml"})
    summary = run(config, home)
    assert summary.read == 5 and summary.quarantined == 5 and summary.enqueued == summary.delivered == 0
    assert not list((home / "var/outbox").glob("*/*.xml"))
    entries = Quarantine(open_engine(f"sqlite:///{home}/var/state.db"), "demo-booking").entries()
    assert {e.reason.split(" is invalid")[0] for e in entries} == {"message redacted for profile too-strict"}


def test_a_mapping_defect_is_quarantined_as_the_built_message_not_the_profile(tmp_path, monkeypatch):
    """A builder that drops a required element (a defect in our mapping, simulated): the record is set aside
    naming the built message and the missing element's parent, not the recipient's profile; nothing leaves."""
    from dataclasses import replace

    from exchange.security import mint_dev_pki
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine
    from niem_iepd import ns
    from transforms.mapping import BUILDERS

    builder = BUILDERS["BookingNotification"]

    def without_booking(record, shared_id, header):
        root = builder.build(record, shared_id, header)
        root.remove(root.find(ns.clark("j:Booking")))
        return root

    monkeypatch.setitem(BUILDERS, "BookingNotification", replace(builder, build=without_booking))
    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office", recipients=["county-bh"],
                 now=datetime.now(timezone.utc))
    config = exchange_yaml(home, small_drop(home / "drop", rows=3), {"county-bh": "behavioral-health-provider"})
    summary = run(config, home)
    assert summary.read == 3 and summary.quarantined == 3 and summary.delivered == 0
    entries = Quarantine(open_engine(f"sqlite:///{home}/var/state.db"), "demo-booking").entries()
    assert {e.reason.split(": ")[0] for e in entries} == {"built message is invalid"}


def test_a_record_whose_message_fails_is_quarantined_alone_and_the_rest_of_its_chunk_is_delivered(tmp_path,
                                                                                                monkeypatch):
    """The messages of a chunk are validated together: a record whose message for one recipient breaks a
    business rule and a record whose built message breaks the schema are each quarantined naming the row, the
    element and the step at fault; neither reaches any recipient, every other record reaches both."""
    from dataclasses import replace

    from exchange.security import mint_dev_pki
    from exchange.state.db import open_engine
    from exchange.state.quarantine import Quarantine
    from niem_iepd import ns
    from transforms.mapping import BUILDERS

    builder = BUILDERS["BookingNotification"]

    def with_defects(record, shared_id, header):
        root = builder.build(record, shared_id, header)
        if record.ref.locator.endswith("#row=3") and header.recipient == "Organization state-bh":
            root.find(ns.clark("nx:MessageMetadata/nx:MessageCategoryText")).text = "ReleaseNotification"
        if record.ref.locator.endswith("#row=6"):
            root.remove(root.find(ns.clark("j:Booking")))
        return root

    monkeypatch.setitem(BUILDERS, "BookingNotification", replace(builder, build=with_defects))
    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=["county-bh", "state-bh"], now=datetime.now(timezone.utc))
    config = exchange_yaml(home, small_drop(home / "drop", rows=8),
                           {"county-bh": "behavioral-health-provider", "state-bh": "state-agency"})
    summary = run(config, home)
    assert summary.read == 8 and summary.quarantined == 2 and summary.enqueued == summary.delivered == 2 * 6
    entries = Quarantine(open_engine(f"sqlite:///{home}/var/state.db"), "demo-booking").entries()
    assert [(e.record, e.field, e.reason.split(": ")[0]) for e in entries] == [
        ("jail:bookings.csv#row=3", "/bn:BookingNotification/nx:MessageMetadata",
         "message redacted for profile state-agency is invalid"),
        ("jail:bookings.csv#row=6", "/bn:BookingNotification", "built message is invalid")]


def test_a_recipient_whose_profile_lacks_the_message_type_is_refused_at_start_up(tmp_path):
    """Default-deny would send such a recipient nothing, silently: the exchange refuses to start instead."""
    from exchange.runtime import open_exchange
    from exchange.security import mint_dev_pki
    from transforms.model import ConfigError

    home = tmp_path / "home"
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office",
                 recipients=["county-bh", "pd"], now=datetime.now(timezone.utc))
    config = exchange_yaml(home, small_drop(home / "drop", rows=5),
                           {"county-bh": "behavioral-health-provider", "pd": "law-enforcement"})
    with pytest.raises(ConfigError) as info:
        open_exchange(config, home)
    assert info.value.key == "recipients.1.profile"
    assert "'law-enforcement' does not allow BookingNotification" in str(info.value)
