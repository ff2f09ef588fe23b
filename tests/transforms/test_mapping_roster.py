"""FamiliarFacesRoster from aggregate entries: golden file, shared IDs only, counts per system, rules."""
from __future__ import annotations

from datetime import date

import pytest
from lxml import etree
from mapping_cases import PERIOD, ROSTER, check_golden, header

from niem_iepd import ns, validator
from transforms.mapping import Period, RosterEntry, familiar_faces_roster


def test_roster_matches_golden_and_validates():
    check_golden(familiar_faces_roster(ROSTER, PERIOD, header("FamiliarFacesRoster")), "familiar-faces-roster")


def test_roster_names_people_by_shared_id_only_with_counts_by_system():
    message = familiar_faces_roster(ROSTER, PERIOD, header("FamiliarFacesRoster"))
    entries = message.findall(ns.clark("nx:RosterEntry"))
    assert [e.findtext(ns.clark("nx:RosterPerson/nc:PersonOtherIdentification/nc:IdentificationID"))
            for e in entries] == ["NXP-7QF3K2M9TB", "NXP-2MZ8C4D1QA"]
    counts = {c.findtext(ns.clark("nx:SourceSystemText")): c.findtext(ns.clark("nx:CountQuantity"))
              for c in entries[0].findall(ns.clark("nx:SystemContactCount"))}
    assert counts == {"crisis": "3", "jail": "2", "police": "4"}
    assert message.find(f".//{{{ns.NC}}}PersonName") is None


def test_empty_roster_is_valid_and_entry_without_counts_is_refused():
    assert validator.validate(familiar_faces_roster((), PERIOD, header("FamiliarFacesRoster"))) == []
    with pytest.raises(ValueError):
        familiar_faces_roster((RosterEntry("NXP-1", {}, date(2026, 10, 1), date(2026, 10, 2)),), PERIOD,
                              header("FamiliarFacesRoster"))


def test_dates_out_of_order_and_negative_counts_break_named_rules():
    backwards = Period(date(2026, 10, 31), date(2026, 10, 1))
    entry = RosterEntry("NXP-1", {"jail": -1}, date(2026, 10, 20), date(2026, 10, 3))
    message = familiar_faces_roster((entry,), backwards, header("FamiliarFacesRoster"))
    rules = sorted(issue.rule for issue in validator.validate(etree.ElementTree(message)))
    assert rules == ["NX-COUNT-1", "NX-DATE-1", "NX-DATE-2", "NX-DATE-3"]
