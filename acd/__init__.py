"""The ACD: agents, and (to come) queues and their distribution strategies.

Above call control, below apps and web. The agent book is sans-I/O: callers feed it
inputs with the `now` they happened at and drain its events; `acd.bus_adapter` feeds it
from the switch's event bus. Nothing here knows SQL, sockets or the clock.
"""

from acd.agent_events import AgentEvent, AgentStateChanged, AgentStatusChanged
from acd.agent_states import MISS_REASONS, OFFER_GUARD_S, OfferFailure, State, Status, Trigger
from acd.agents import Agent, AgentBook, AgentConfig, Counts, Offer
from acd.errors import AcdError

__all__ = [
    "MISS_REASONS", "OFFER_GUARD_S", "AcdError", "Agent", "AgentBook", "AgentConfig",
    "AgentEvent", "AgentStateChanged", "AgentStatusChanged", "Counts", "Offer",
    "OfferFailure", "State", "Status", "Trigger",
]
