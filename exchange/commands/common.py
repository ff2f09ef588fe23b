"""What every command module shares: the --home option, the demo config path, one way to fail."""
from __future__ import annotations

from pathlib import Path

import typer

HOME = typer.Option(Path("."), "--home", help="Exchange home: relative paths in the config resolve here.")


def demo_config() -> Path:
    """The bundled demo exchange YAML."""
    from exchange.config import demo_data_dir

    return demo_data_dir() / "demo-exchange.yaml"


def fail(message: str, code: int = 2) -> None:
    """Print one red line on stderr and exit with ``code`` (2: usage or config, 1: a check failed)."""
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
