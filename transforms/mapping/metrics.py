"""A metrics report -> ``pm:ProgramMetrics`` (NIEM 6.0): de-identified counts for the state.

The mapping table lives in ``niem_iepd/docs/program-metrics.md``. The input holds counts only, no person
data at all; the IEPD's Schematron rule NX-PM-1 refuses a ProgramMetrics message carrying any person.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from transforms.mapping.common import MessageHeader, Period, message, reporting_period
from transforms.mapping.tree import nx

_PREFIXES = ("pm", "nx", "nc", "structures")


@dataclass(frozen=True, slots=True)
class MetricsReport:
    """Counts of one program's activity in one period (de-identified: no person data)."""

    period: Period
    contacts: int  # crisis contacts in the period
    people: int  # distinct people among them
    diversions: int  # contacts diverted from arrest or jail to treatment or services
    repeat_encounters: int  # contacts with people seen earlier in the period
    dispositions: Mapping[str, int] = field(default_factory=dict)  # CrisisDisposition code -> contacts


def program_metrics(report: MetricsReport, header: MessageHeader) -> etree._Element:
    """Build the ProgramMetrics message of ``report``; dispositions are written in code order."""
    summary = nx.MetricsSummary(
        nx.ContactCountQuantity(str(report.contacts)),
        nx.PersonCountQuantity(str(report.people)),
    )
    for code in sorted(report.dispositions):
        summary.append(nx.DispositionCount(
            nx.CrisisDispositionCode(code), nx.CountQuantity(str(report.dispositions[code]))))
    summary.append(nx.DiversionCountQuantity(str(report.diversions)))
    summary.append(nx.RepeatEncounterCountQuantity(str(report.repeat_encounters)))
    return message("ProgramMetrics", _PREFIXES, header, reporting_period(report.period), summary)
