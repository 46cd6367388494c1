"""The package's base error (STYLE.md §12). A malformed Reason header from a peer is a
SIP RemoteProtocolError instead (switch.sip.errors), since it is answered with 400."""


class PriGatewayError(Exception):
    """Base of the errors raised by switch.pri_gateway for our own inputs and config."""
