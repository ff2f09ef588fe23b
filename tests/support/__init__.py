"""Reusable real servers for integration tests (sshd, HTTPS), started on 127.0.0.1 with keys minted per run."""
