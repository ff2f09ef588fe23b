"""A recipient that cannot be reached fails only its own mapped deliver task, alerts the webhook the YAML
names, and rerunning after the fix delivers its messages without duplicating the other recipient's.

Everything is real: the local outbox transport (state-bh's outbox path is blocked by a regular file, what a
missing mount looks like), Airflow connections from ``AIRFLOW_CONN_<ID>`` environment variables (county-bh's
outbox directory and the webhook URL come from them, not from the YAML), and an HTTP server on 127.0.0.1.
"""
from __future__ import annotations

import email
import json
import socketserver
import sqlite3
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dag_helpers import (
    ledger_rows, load_dag, outbox_files, rerun_task_instance, run_state, task_states, utc,
)

pytestmark = pytest.mark.airflow


@pytest.fixture
def webhook():
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": body.decode()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()
    server.server_close()


@pytest.fixture
def mail_server():
    """A minimal real SMTP server on 127.0.0.1 (no TLS, no auth) that records each message it accepts."""
    messages: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 test ESMTP\r\n")
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb == b"DATA":
                    self.wfile.write(b"354 go ahead\r\n")
                    body = b"".join(iter(self.rfile.readline, b".\r\n"))
                    messages.append(body.decode(errors="replace"))
                    self.wfile.write(b"250 queued\r\n")
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:  # EHLO/HELO, MAIL, RCPT, RSET, NOOP
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], messages
    server.shutdown()
    server.server_close()


def test_a_failing_recipient_fails_only_its_task_and_a_rerun_delivers_without_duplicates(
        airflow_db, write_exchange, exchange_home, small_drop, monkeypatch, webhook, mail_server, phi_canaries):
    port, alerts = webhook
    smtp_port, mails = mail_server
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({"conn_type": "smtp", "host": "127.0.0.1",
        "port": smtp_port, "extra": {"from_email": "airflow@county.example", "disable_tls": True,
                                     "disable_ssl": True}}))
    mount = exchange_home / "mnt" / "county"
    monkeypatch.setenv("AIRFLOW_CONN_OUTBOX_COUNTY", json.dumps({"conn_type": "fs", "extra": {"path": str(mount)}}))
    monkeypatch.setenv("AIRFLOW_CONN_NIEM_TEST_ALERTS", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http", "extra": {"endpoint": "/alerts"}}))

    def edit(raw):
        raw["source"]["path"] = str(small_drop)
        county, state = raw["recipients"]
        county["connection"] = "outbox_county"
        state["transport"] = {"kind": "outbox", "path": "var/blocked"}
        raw["airflow"]["on_failure"] = {"webhook_connection": "niem_test_alerts", "email": ["it@county.example"]}

    write_exchange("dag-failing", edit)
    blocked = exchange_home / "var" / "blocked"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("not a directory\n")
    logical_date = utc(2026, 4, 1)

    run = load_dag("dag-failing").test(logical_date=logical_date)

    assert run_state(run) == "failed"
    states = task_states(airflow_db, "dag-failing", run.run_id)
    assert states.pop(("deliver", 1)) == "failed"  # state-bh only
    assert set(states.values()) == {"success"}, states  # plan, every window, and county-bh's delivery
    county = outbox_files(mount / "county-bh")  # where the Airflow connection put it, not the YAML's path
    assert county and not (exchange_home / "var/outbox/county-bh").exists()
    first = Counter(recipient for recipient, _ in ledger_rows(exchange_home, "dag-failing"))
    assert first == {"county-bh": len(county)}
    # the webhook heard about exactly that task, by ids only
    assert [a["path"] for a in alerts] == ["/alerts"]
    alert = json.loads(alerts[0]["body"])
    assert (alert["dag_id"], alert["task_id"], alert["map_index"]) == ("dag-failing", "deliver", 1)
    assert not [v for v in phi_canaries if v in alerts[0]["body"]]
    # ... and so did the on-call mailbox
    assert len(mails) == 1
    mail = email.message_from_string(mails[0])
    text = mail["Subject"] + "".join(part.get_payload(decode=True).decode() for part in mail.walk()
                                     if not part.is_multipart())
    assert "dag-failing.deliver failed" in text and "map_index: 1" in text
    assert not [v for v in phi_canaries if v in text]

    # fix the recipient, then clear and rerun that one task instance
    blocked.unlink()
    assert rerun_task_instance(load_dag("dag-failing"), run.run_id, "deliver", 1) == "success"

    after = task_states(airflow_db, "dag-failing", run.run_id)
    assert after == {**states, ("deliver", 1): "success"}
    with sqlite3.connect(airflow_db) as db:
        tries = dict(db.execute("SELECT map_index, try_number FROM task_instance WHERE dag_id='dag-failing' "
                                "AND run_id=? AND task_id='deliver'", (run.run_id,)).fetchall())
    assert tries == {0: 1, 1: 2}  # county-bh's delivery was not run again
    state = outbox_files(exchange_home / "var/blocked/state-bh")
    assert outbox_files(mount / "county-bh") == county and len(state) == len(county)
    entries = ledger_rows(exchange_home, "dag-failing")
    assert Counter(recipient for recipient, _ in entries) == {"county-bh": len(county), "state-bh": len(state)}
    assert len(set(entries)) == len(entries)  # no message recorded (or sent) twice
    assert len(alerts) == 1 and len(mails) == 1

    # the next scheduled run finds nothing new and delivers nothing twice
    later = load_dag("dag-failing").test(logical_date=utc(2026, 4, 2))
    assert run_state(later) == "success" and ledger_rows(exchange_home, "dag-failing") == entries
