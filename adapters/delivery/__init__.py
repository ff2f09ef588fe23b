"""Transports: push signed, encrypted messages to recipients (local outbox, SFTP, SOAP)."""
