"""A throwaway PostgreSQL server for integration tests: Debian's server binaries, a temp dir, a free local port.

``initdb`` makes a cluster in a fresh temporary directory with a superuser ``niem`` whose password is minted
per run (SCRAM over TCP on 127.0.0.1 only; no Unix socket outside the temp dir); ``pg_ctl`` starts it on a free
port and stops it (fast shutdown) when the context exits, and the directory is removed.

PostgreSQL refuses to run as root. When the tests run as root, the helper runs the server binaries as the
``postgres`` system user through ``runuser`` (Debian's package creates that user; if it is absent the helper
creates a system user ``niem-pgtest`` with ``useradd --system``), after handing it the temp directory. As any
other user the binaries run as that user directly.

Usage::

    with running_postgres() as url:            # or the ``postgres_url`` fixture
        engine = sqlalchemy.create_engine(url)  # postgresql+psycopg://niem:...@127.0.0.1:PORT/postgres
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
"""Where Debian's postgresql-15 package puts initdb, pg_ctl and postgres."""

FALLBACK_USER = "niem-pgtest"


def available() -> bool:
    """True when the PostgreSQL 15 server binaries are installed."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """The OS user to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for candidate in ("postgres", FALLBACK_USER):
        try:
            pwd.getpwnam(candidate)
            return candidate
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
                   check=True, capture_output=True)
    return FALLBACK_USER


def _run(user: str | None, args: list[str], **kwargs: object) -> subprocess.CompletedProcess:
    command = ["runuser", "-u", user, "--", *args] if user else args
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, **kwargs)


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a fresh PostgreSQL 15 on 127.0.0.1; yield a SQLAlchemy URL (psycopg); stop and remove it after."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="niem-pg-"))
    data, log = root / "data", root / "server.log"
    password = secrets.token_hex(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if user:
        info = pwd.getpwnam(user)
        root.chmod(0o700)
        for path in (root, pwfile):
            os.chown(path, info.pw_uid, info.pw_gid)
    port = _free_port()
    started = False
    try:
        _run(user, [str(PG_BIN / "initdb"), "-D", str(data), "-U", "niem", f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C.UTF-8"])
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        _run(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
                    "start"])
        started = True
        yield f"postgresql+psycopg://niem:{password}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            _run(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
