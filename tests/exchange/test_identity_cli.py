"""``niem-exchange identity link`` on CSV extracts, and ``identity review`` on a real state database."""
from __future__ import annotations

import csv
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.state import person_curation
from exchange.state.db import open_engine
from exchange.state.person_index import PersonIndex
from transforms.model import PersonIdentity

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dssg-matching-tool" / "uploader_input"


def _run(*args):
    from exchange.cli import app

    return CliRunner().invoke(app, ["identity", *(str(a) for a in args)])


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _links(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_link_joins_people_across_extracts_with_different_columns(tmp_path):
    jail = _write(tmp_path / "jail.csv", ["FIRST", "LAST", "DOB", "SEX"], [
        ["Robert", "Whitfield", "1984-03-09", "M"],
        ["Grace", "Okafor", "1999-07-01", "F"],
        ["Dale", "Mitchell", "1951-09-28", "M"],
    ])
    ehr = _write(tmp_path / "ehr.csv", ["given", "family", "birth", "gender", "phone"], [
        ["Bob", "Whitfield", "1984-09-03", "male", "555"],  # nickname, transposed date
        ["Hope", "Okafor", "1999-07-01", "F", ""],  # a twin: not Grace
        ["Dale", "Mitchel", "1951-09-28", "M", ""],  # a typo
    ], delimiter="|")
    mapping = tmp_path / "columns.yaml"
    mapping.write_text("jail.csv: {given_name: FIRST, surname: LAST, birth_date: DOB, sex: SEX}\n"
                       "ehr.csv: {given_name: given, surname: family, birth_date: birth, sex: gender}\n")
    out = tmp_path / "links.csv"
    result = _run("link", jail, ehr, "--columns", mapping, "--out", out)
    assert result.exit_code == 0, result.output
    rows = _links(out)
    assert [(r["file"], r["row"]) for r in rows] == [("jail.csv", "1"), ("jail.csv", "2"), ("jail.csv", "3"),
                                                     ("ehr.csv", "1"), ("ehr.csv", "2"), ("ehr.csv", "3")]
    ids = [r["shared_id"] for r in rows]
    assert ids[0] == ids[3] and ids[2] == ids[5] and ids[1] != ids[4]
    assert len(set(ids)) == 4 and all(i.startswith("NXP-") for i in ids)
    assert float(rows[0]["score"]) >= 0.99 and rows[1]["score"] == ""
    assert "6 rows, 4 people" in result.output


def test_link_refuses_unknown_fields_and_missing_columns(tmp_path):
    extract = _write(tmp_path / "a.csv", ["first", "last"], [["Ann", "Lee"]])
    bad_field = _run("link", extract, "--columns", "givenname=first")
    assert bad_field.exit_code == 2 and "unknown field(s) givenname" in bad_field.output
    bad_column = _run("link", extract, "--columns", "given_name=first,surname=surname")
    assert bad_column.exit_code == 2 and "a.csv: column(s) surname not in the header" in bad_column.output


def test_link_reports_ragged_rows_instead_of_dropping_them(tmp_path):
    extract = tmp_path / "a.csv"
    extract.write_text("first,last,dob\nAnn,Lee,1970-01-01\nTom,Ray\n")
    out = tmp_path / "links.csv"
    result = _run("link", extract, "--columns", "given_name=first,surname=last,birth_date=dob", "--out", out)
    assert result.exit_code == 0
    assert [(r["row"], bool(r["shared_id"])) for r in _links(out)] == [("1", True), ("2", False)]
    assert "a.csv: rows 2 have the wrong number of cells" in result.output


@pytest.mark.shared
def test_link_on_dssg_jail_and_hmis_extracts(tmp_path):
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    files = [SHARED / "jail_bookings" / "ssn.csv", SHARED / "hmis_service_stays" / "partial-dob.csv"]
    out = tmp_path / "links.csv"
    result = _run("link", *files, "--columns", "given_name=first_name,surname=last_name,birth_date=dob,ssn=ssn",
                  "--out", out)
    assert result.exit_code == 0, result.output
    rows = _links(out)
    by_file = {(r["file"], int(r["row"])): r["shared_id"] for r in rows}
    # jail rows 1 and 8 and HMIS row 5 are one generated person; HMIS row 1 has only "1990-02-XX" for a
    # birth date and still joins the same person's other HMIS row (row 9)
    assert by_file[("ssn.csv", 1)] == by_file[("partial-dob.csv", 5)] == by_file[("ssn.csv", 8)]
    assert by_file[("partial-dob.csv", 1)] == by_file[("partial-dob.csv", 9)]
    assert len(set(by_file.values())) == 10  # 9 people in the HMIS file + 1 seen only by the jail


def _seed_review(tmp_path: Path) -> Path:
    """A home with an exchange config whose state holds one review item (a twin)."""
    config = tmp_path / "exchange.yaml"
    demo = (Path(__file__).resolve().parents[2] / "exchange" / "demo" / "demo-exchange.yaml").read_text()
    config.write_text(demo)
    from exchange.config import load_config

    engine = open_engine(f"sqlite:///{tmp_path / 'var' / 'state.db'}")
    index = PersonIndex(engine, b"x" * 32, exchange=load_config(config).name)
    now = datetime(2026, 11, 24, tzinfo=timezone.utc)
    index.link("jail", "BK-1", PersonIdentity("Grace", "Okafor", date(1999, 7, 1)), now)
    index.link("ehr", "MRN-1", PersonIdentity("Hope", "Okafor", date(1999, 7, 1)), now)
    return config


def test_review_list_accept_and_reject(tmp_path):
    config = _seed_review(tmp_path)
    listed = _run("review", "list", "--config", config, "--home", tmp_path)
    assert listed.exit_code == 0
    assert "ehr:MRN-1" in listed.output and "jail:BK-1" in listed.output and "same birth date, different given names" in listed.output
    assert "Okafor" not in listed.output and "1999" not in listed.output
    [item] = person_curation.reviews(open_engine(f"sqlite:///{tmp_path / 'var' / 'state.db'}"))
    accepted = _run("review", "accept", item.id, "--by", "clerk", "--config", config, "--home", tmp_path)
    assert accepted.exit_code == 0 and f"ehr:MRN-1 {item.shared_id} -> {item.candidate_shared_id}" in accepted.output
    again = _run("review", "reject", item.id, "--by", "clerk", "--config", config, "--home", tmp_path)
    assert again.exit_code == 1 and f"no open review item {item.id}" in again.output
    assert "no review items" in _run("review", "list", "--config", config, "--home", tmp_path).output


def test_accept_names_messages_to_reissue_and_merge_split_leave_a_trail(tmp_path):
    from sqlalchemy import insert

    from exchange.state.db import outbox

    config = _seed_review(tmp_path)
    engine = open_engine(f"sqlite:///{tmp_path / 'var' / 'state.db'}")
    [item] = person_curation.reviews(engine)
    with engine.begin() as conn:  # a message already sent for the record under its provisional id
        conn.execute(insert(outbox).values(
            message_id="M-1", exchange="demo-booking", recipient="county-bh", record_key="ehr:MRN-1",
            shared_id=item.shared_id, message_type="BookingNotification", state="delivered", attempts=1,
            sha256="0" * 64, categories="[]", created_at=datetime(2026, 11, 24, tzinfo=timezone.utc)))
    home = ("--config", config, "--home", tmp_path)
    accepted = _run("review", "accept", item.id, "--by", "clerk", *home)
    assert "re-issue message M-1 to county-bh (delivered)" in accepted.output

    split = _run("split", item.candidate_shared_id, "--record", "ehr:MRN-1", "--by", "clerk",
                 "--reason", "twins after all", *home)
    assert split.exit_code == 0, split.output
    new_id = split.output.split()[2]
    assert f"ehr:MRN-1 {item.candidate_shared_id} -> {new_id}" in split.output
    merged = _run("merge", item.candidate_shared_id, new_id, "--by", "clerk", "--reason", "checked", *home)
    assert merged.exit_code == 0 and f"-> {item.candidate_shared_id}" in merged.output
    assert [e.kind for e in person_curation.history(engine, item.candidate_shared_id)] == [
        "accept", "split", "merge"]
    nothing = _run("merge", item.candidate_shared_id, new_id, "--by", "clerk", "--reason", "again", *home)
    assert nothing.exit_code == 1
