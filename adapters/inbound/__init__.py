"""The inbound SOAP service for vendors and partner hubs: our WSDL's SubmitMessage as an ASGI app (uvicorn).

See :mod:`adapters.inbound.service` and ``adapters/inbound/README.md`` (zeep and curl examples).
"""
from adapters.inbound.service import InboundSettings, Submission, build_app, serve

__all__ = ["InboundSettings", "Submission", "build_app", "serve"]
