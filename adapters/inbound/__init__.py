"""The inbound SOAP service: our WSDL's SubmitMessage (vendors, partner hubs) and PullMessages /
AcknowledgeMessage (recipients that fetch their messages) as an ASGI app under uvicorn with mutual TLS.

See :mod:`adapters.inbound.service`, :mod:`adapters.inbound.pickup` and ``adapters/inbound/README.md`` (zeep and
curl examples).
"""
from adapters.inbound.pickup import Acknowledgement, Mailbox, Pull, PulledMessage, PullRecipient
from adapters.inbound.service import InboundSettings, Submission, build_app, serve
from adapters.inbound.tls import server_config

__all__ = ["Acknowledgement", "InboundSettings", "Mailbox", "Pull", "PullRecipient", "PulledMessage",
           "Submission", "build_app", "serve", "server_config"]
