"""The ACD's one base error.

Raised only for calls the ACD's own callers get wrong (offering a call to an agent who
cannot take it, an unknown agent, a not-ready reason nobody configured). What call
control reports is never an error here: a report that fits no state is absorbed and
counted, because an agent must never be stuck by an event arriving late or twice.
The messages are what the web shows, so they are exact and tested verbatim.
"""

from __future__ import annotations

__all__ = ["AcdError"]


class AcdError(Exception):
    pass
