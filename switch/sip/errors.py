"""Errors of the SIP stack, split by blame (h11 style)."""


class SipError(Exception):
    """Base of every error raised by switch.sip."""


class RemoteProtocolError(SipError):
    """The peer sent something we cannot accept; `status` is what to answer (RFC 3261 §21)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class LocalProtocolError(SipError):
    """We were asked to do something the protocol forbids: a bug on our side."""
