"""Through the real pipeline: generated jail drops x every shipped profile. Each delivered message has exactly one
ledger entry, each output validates against the IEPD and holds only what its recipient's profile allows."""
from __future__ import annotations

import csv
import shutil
import sqlite3
import string
from collections import Counter
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.profiles import load_profile, shipped_profiles
from niem_iepd import safexml, validator
from tests.exchange.lawful_helpers import exchange_yaml, received, run
from tests.exchange.test_lawful_canary import BOOKING_FIELDS, CHARGE_FIELDS
from transforms.redaction import element_path

PROFILES = {p.stem: load_profile(p) for p in shipped_profiles()}
#: every shipped profile that allows BookingNotification (the others are refused at start-up, see
#: test_lawful_pipeline); the law-enforcement profile is covered on BehavioralHealthAlert trees instead.
RECIPIENTS = {f"r-{name}": name for name, p in PROFILES.items() if p.rule("BookingNotification")}

_name = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)


@st.composite
def rows(draw, number: int) -> tuple[dict[str, str], list[dict[str, str]]]:
    """One bookings row (sometimes defective) and its charges."""
    booking = f"{number:010d}"
    day = draw(st.integers(1, 28))
    row = {
        "internal_person_id": str(draw(st.integers(1, 10**6))), "inmate_number": f"EC{number:07d}",
        "first_name": draw(_name), "middle_name": draw(st.just("") | _name), "last_name": draw(_name), "suffix": "",
        "dob": draw(st.dates(min_value=datetime(1930, 1, 1).date(), max_value=datetime(2005, 1, 1).date())).isoformat(),
        "sex": draw(st.sampled_from(["F", "M", "U", "X", "?"])), "race": draw(st.sampled_from(["", "W", "B", "A"])),
        "fingerprint_id": draw(st.just("") | st.integers(10**7, 10**8 - 1).map(lambda n: f"FL{n}")), "ssn": "",
        "booking_number": booking, "jail_entry_date": f"2026-02-{day:02d}T08:30:00-06:00", "jail_exit_date": "",
        "facility": draw(_name), "booking_agency": draw(_name), "arresting_agency": draw(st.just("") | _name),
        "updated_date": f"2026-02-{day:02d}T09:30:00-06:00",
    }
    charges = [{"booking_number": booking, "charge_sequence": str(i + 1), "statute": draw(_name),
                "description": draw(_name), "severity": draw(st.sampled_from(["F", "M"])), "counts": "1"}
               for i in range(draw(st.integers(1, 3)))]
    return row, charges


@st.composite
def drops(draw):
    count = draw(st.integers(1, 6))
    return [draw(rows(i + 1)) for i in range(count)]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from exchange.security import mint_dev_pki

    home = tmp_path_factory.mktemp("property-keys")
    mint_dev_pki(home / "certs/dev", organization="Example County Sheriff's Office", recipients=list(RECIPIENTS),
                 now=datetime.now(timezone.utc))
    return home / "certs"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drop=drops())
def test_generated_drops_through_every_shipped_profile(tmp_path_factory, keys, drop):
    home = tmp_path_factory.mktemp("property-home")
    shutil.copytree(keys, home / "certs")
    (home / "drop").mkdir()
    for name, fields, data in (("bookings.csv", BOOKING_FIELDS, [r for r, _ in drop]),
                               ("booking_charges.csv", CHARGE_FIELDS, [c for _, cs in drop for c in cs])):
        with open(home / "drop" / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(data)
    summary = run(exchange_yaml(home, home / "drop", RECIPIENTS), home)
    assert summary.read == len(drop)

    with sqlite3.connect(home / "var/state.db") as db:
        delivered = Counter(r[0] for r in db.execute("SELECT message_id FROM outbox WHERE state = 'delivered'"))
        ledgered = Counter(r[0] for r in db.execute("SELECT message_id FROM ledger"))
    assert delivered == ledgered and all(n == 1 for n in ledgered.values())

    good = summary.read - summary.quarantined
    for recipient, name in RECIPIENTS.items():
        rule = PROFILES[name].rule("BookingNotification")
        messages = received(home, recipient) if (home / "var/outbox" / recipient).exists() else []
        assert len(messages) == good
        for plain in messages:
            root = safexml.parse(plain).getroot()
            assert validator.validate(root) == []
            for element in root.iter():
                path = element_path(element, root)
                if path == "" or path.startswith("?"):  # the root; ds:Signature is outside the registry
                    continue
                assert any(path == a or path.startswith(a + "/") or a.startswith(path + "/") for a in rule.allow) \
                    or path.startswith("nx:PrivacyMetadata"), f"{name}: {path}"
