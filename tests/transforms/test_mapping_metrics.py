"""ProgramMetrics from a de-identified report: golden file, counts in place, no person data."""
from __future__ import annotations

from dataclasses import replace

from lxml import etree
from mapping_cases import METRICS, check_golden, header

from niem_iepd import ns, validator
from transforms.mapping import program_metrics
from transforms.mapping.common import basic_person
from transforms.mapping.tree import append, nc
from transforms.model import PersonIdentity

SUMMARY = "nx:MetricsSummary"


def test_metrics_match_golden_and_validate():
    check_golden(program_metrics(METRICS, header("ProgramMetrics", recipient="State Office of Behavioral Health")),
                 "program-metrics")


def test_counts_are_where_the_state_reads_them():
    message = program_metrics(METRICS, header("ProgramMetrics"))
    assert message.findtext(ns.clark(f"{SUMMARY}/nx:ContactCountQuantity")) == "148"
    assert message.findtext(ns.clark(f"{SUMMARY}/nx:DiversionCountQuantity")) == "37"
    assert message.findtext(ns.clark(f"{SUMMARY}/nx:RepeatEncounterCountQuantity")) == "19"
    arrests = [d for d in message.iterfind(ns.clark(f"{SUMMARY}/nx:DispositionCount"))
               if d.findtext(ns.clark("nx:CrisisDispositionCode")) == "ARREST"]
    assert [d.findtext(ns.clark("nx:CountQuantity")) for d in arrests] == ["9"]
    assert not any(etree.QName(e).localname.startswith("Person") and e.tag != ns.q("nx", "PersonCountQuantity")
                   for e in message.iter(etree.Element))


def test_negative_count_breaks_nx_count_1():
    message = program_metrics(replace(METRICS, diversions=-2), header("ProgramMetrics"))
    assert [issue.rule for issue in validator.validate(message)] == ["NX-COUNT-1"]


def test_person_data_in_metrics_breaks_nx_pm_1():
    message = program_metrics(METRICS, header("ProgramMetrics"))
    person = basic_person(nc.EntityPerson, PersonIdentity("A", "B", None), "NXP-1")
    append(message.find(ns.clark(SUMMARY)), person)
    assert "NX-PM-1" in {issue.rule for issue in validator.validate(message)}
