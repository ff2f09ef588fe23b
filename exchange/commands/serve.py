"""``niem-exchange serve CONFIG``: run the exchange's SOAP service under uvicorn with mutual TLS.

Vendors call SubmitMessage; the exchange's ``kind: pull`` recipients call PullMessages and AcknowledgeMessage
(see ``adapters/inbound/README.md``). TLS is always on and every client must present a certificate issued by
the client CA; there is no switch to turn either off. The TLS files come from the options or, when an option
is left out, from the YAML's ``inbound:`` block (``tls_certificate``, ``tls_key``, ``client_ca``).
"""
from __future__ import annotations

from pathlib import Path

import typer

from exchange.commands.common import HOME


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the root CLI."""
    app.command("serve")(serve)


def serve(
    config: Path = typer.Argument(..., help="Exchange YAML (its pull recipients and `inbound:` block)."),
    home: Path = HOME,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8443, "--port", min=1, max=65535, help="TCP port."),
    certfile: Path = typer.Option(None, "--certfile", help="Server TLS certificate (PEM, may hold the chain)."),
    keyfile: Path = typer.Option(None, "--keyfile", help="Server TLS private key (PEM, mode 0600)."),
    client_ca: Path = typer.Option(None, "--client-ca", help="CA bundle client certificates must chain to."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level (requests are not logged)."),
) -> None:
    """Serve SubmitMessage, PullMessages and AcknowledgeMessage over mutual TLS until interrupted."""
    import ssl

    from adapters.inbound import build_app
    from adapters.inbound import serve as run_server
    from exchange.commands.common import fail
    from exchange.config import load_config, resolve
    from exchange.runtime import open_exchange
    from exchange.wiring.inbound import inbound_settings
    from transforms.model import ConfigError

    try:
        cfg = load_config(config)
    except ConfigError as error:
        fail(str(error))
    given = {"--certfile": (certfile, "tls_certificate"), "--keyfile": (keyfile, "tls_key"),
             "--client-ca": (client_ca, "client_ca")}
    tls: dict[str, Path] = {}
    for option, (value, key) in given.items():
        configured = getattr(cfg.inbound, key)
        if value is None and configured is None:
            fail(f"{option}: not given, and inbound.{key} is not set in {config}")
        path = value if value is not None else resolve(home.resolve(), configured)
        if not path.is_file():
            fail(f"{option}: file {path} not found")
        tls[option] = path
    try:  # the same loads uvicorn does, here so a bad file is one clear line rather than a traceback
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tls["--certfile"], tls["--keyfile"])
        context.load_verify_locations(cafile=tls["--client-ca"])
    except (ssl.SSLError, ValueError) as error:
        fail(f"--certfile/--keyfile/--client-ca: cannot load the TLS files ({type(error).__name__}: "
             f"{getattr(error, 'reason', None) or 'unreadable'})")
    try:
        ex = open_exchange(config, home, open_source=False)  # serving needs none of the source's credentials
    except ConfigError as error:
        fail(str(error))
    try:
        settings = inbound_settings(ex, config, public_url=f"https://{host}:{port}{cfg.inbound.path}")
        if not settings.pull_recipients and not settings.trusted_signers:
            fail(f"{config}: nothing to serve: no recipient has `transport: {{kind: pull}}` and "
                 "inbound.vendors is empty")
        app = build_app(settings)
        pulls = ", ".join(r.id for r in settings.pull_recipients) or "none"
        typer.echo(f"serving {cfg.name} at {settings.public_url} (mutual TLS; pull recipients: {pulls}; "
                   f"vendors: {len(settings.trusted_signers)})")
        run_server(app, host=host, port=port, certificate=tls["--certfile"], key=tls["--keyfile"],
                   client_ca=tls["--client-ca"], log_level=log_level)
    except ConfigError as error:
        fail(str(error))
    finally:
        ex.close()
