"""Durable state of an exchange: person index, windows and cursor, quarantine, outbox, ledger."""
