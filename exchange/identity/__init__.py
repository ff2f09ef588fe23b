"""Identity resolution engines: the Splink model wrapper (DuckDB in-process) and synthetic test people."""
