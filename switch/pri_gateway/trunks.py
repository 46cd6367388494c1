"""PRI gateways, trunk groups and E1 channel accounting.

A gateway terminates `spans` E1 links on the PSTN side; each span carries 30 voice
channels (ITU-T G.704: timeslots 1-15 and 17-31; 0 is framing, 16 the D-channel).
Inbound and outbound calls share those channels, so one `ChannelPool` per gateway
counts both: a call we place and a call the PSTN sends us on the same gateway compete
for the same timeslots. We only count; the gateway picks the actual B-channel.

Outbound calls go to a trunk group, which picks the least-busy live gateway. Requests
from a configured gateway's address are trusted by source (PRI gateways do not answer
digest challenges); `Trunks.gateway_for_source` is that check.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from switch.pri_gateway.errors import PriGatewayError
from switch.pri_gateway.health import GatewayHealth

# ITU-T G.704 §2.3 (2048 kbit/s frame): timeslot 0 carries frame alignment, timeslot 16
# the D-channel on ISDN-PRI; the other 30 carry voice.
E1_VOICE_TIMESLOTS = (*range(1, 16), *range(17, 32))
CHANNELS_PER_E1_SPAN = len(E1_VOICE_TIMESLOTS)  # 30

# ITU-T Q.850 Table 1 cause values, and the SIP status RFC 3398 §8.2.6.1 maps them to.
Q850_NO_CIRCUIT_CHANNEL_AVAILABLE = 34  # Q.850 Table 1, class 010 "resource unavailable"
Q850_NETWORK_OUT_OF_ORDER = 38  # Q.850 Table 1, class 010 "resource unavailable"
SIP_SERVICE_UNAVAILABLE = 503  # RFC 3398 §8.2.6.1: causes 34 and 38 -> 503

TRANSPORTS = frozenset({"UDP", "TCP", "TLS"})


class TrunkError(PriGatewayError):
    """A trunk configuration is invalid, or a caller used the accounting wrongly."""


class Direction(Enum):
    INBOUND = "inbound"  # PSTN -> gateway -> us
    OUTBOUND = "outbound"  # us -> gateway -> PSTN


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    host: str
    port: int = 5060
    transport: str = "UDP"
    spans: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise TrunkError("gateway name must not be empty")
        if not self.host:
            raise TrunkError(f"gateway {self.name!r}: host must not be empty")
        if not 1 <= self.port <= 65535:
            raise TrunkError(f"gateway {self.name!r}: port {self.port} is out of range")
        if self.transport not in TRANSPORTS:
            raise TrunkError(
                f"gateway {self.name!r}: transport {self.transport!r} is not UDP, TCP or TLS"
            )
        if self.spans < 1:
            raise TrunkError(f"gateway {self.name!r}: spans must be >= 1, got {self.spans}")

    @property
    def channels(self) -> int:
        return self.spans * CHANNELS_PER_E1_SPAN


@dataclass(frozen=True, slots=True)
class Seizure:
    """One busy channel on `gateway`, held by the call leg `call_id`."""

    gateway: Gateway
    call_id: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why no channel could be had: what the switch answers the caller with."""

    status: int = SIP_SERVICE_UNAVAILABLE
    q850_cause: int = Q850_NO_CIRCUIT_CHANNEL_AVAILABLE
    reason_text: str = "No circuit/channel available"

    def reason_header_value(self) -> str:
        """The `Reason` header value (RFC 3326 §2, Q.850 codes in responses: RFC 6432)."""
        return f'Q.850;cause={self.q850_cause};text="{self.reason_text}"'


# A full trunk: Q.850 cause 34, "no appropriate circuit/channel presently available".
TRUNK_FULL = Rejection()
# Every gateway of the group is out of service (keepalive failing). Cause 38 rather than
# 34: Q.850 defines 38 as "the network is not functioning correctly and the condition is
# likely to last a relatively long period of time ... immediately re-attempting the call
# is not likely to be successful", which is exactly what a dead gateway means, while 34
# says channels exist but are busy right now. Keeping them apart lets CDRs and reports
# tell an outage from a capacity shortage; both map to 503 (RFC 3398 §8.2.6.1).
ALL_GATEWAYS_DOWN = Rejection(
    q850_cause=Q850_NETWORK_OUT_OF_ORDER, reason_text="Network out of order"
)


class ChannelPool:
    """Busy-channel count of one gateway, shared by inbound and outbound calls."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._seized: dict[str, Seizure] = {}

    def __repr__(self) -> str:
        return f"<ChannelPool {self.gateway.name} {self.busy}/{self.capacity}>"

    @property
    def capacity(self) -> int:
        return self.gateway.channels

    @property
    def busy(self) -> int:
        return len(self._seized)

    @property
    def free(self) -> int:
        return self.capacity - self.busy

    def busy_in(self, direction: Direction) -> int:
        return sum(1 for s in self._seized.values() if s.direction is direction)

    def holds(self, call_id: str) -> bool:
        return call_id in self._seized

    def seize(self, call_id: str, direction: Direction) -> Seizure | None:
        """Take a channel for `call_id`; None when every channel is busy. Seizing again
        for a call that already holds one returns the same seizure (no second channel)."""
        held = self._seized.get(call_id)
        if held is not None:
            if held.direction is not direction:
                raise TrunkError(
                    f"call {call_id!r} already holds a channel on gateway "
                    f"{self.gateway.name!r} as {held.direction.value}"
                )
            return held
        if self.free <= 0:
            return None
        seizure = Seizure(self.gateway, call_id, direction)
        self._seized[call_id] = seizure
        return seizure

    def release(self, call_id: str) -> bool:
        """Free the channel of `call_id`. Idempotent: a BYE and a CANCEL race, a timer
        and a BYE race; the second release is harmless. True if a channel was freed."""
        return self._seized.pop(call_id, None) is not None


@dataclass(frozen=True, slots=True)
class TrunkGroup:
    name: str
    gateways: tuple[Gateway, ...]

    def __init__(self, name: str, gateways: Sequence[Gateway]) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "gateways", tuple(gateways))
        if not name:
            raise TrunkError("trunk group name must not be empty")
        if not self.gateways:
            raise TrunkError(f"trunk group {name!r} has no gateways")
        names = [g.name for g in self.gateways]
        if len(set(names)) != len(names):
            raise TrunkError(f"trunk group {name!r} lists a gateway twice")

    def select(
        self, pools: Mapping[str, ChannelPool], live: Mapping[str, bool]
    ) -> Gateway | Rejection:
        """The least-busy live gateway with a free channel, ties to the first configured.

        Busy is measured as the fraction of the gateway's channels in use, so a 4-span
        gateway takes four times the calls of a 1-span one. Gateways missing from `live`
        count as live (no keepalive configured for them).
        """
        candidates = [g for g in self.gateways if live.get(g.name, True)]
        if not candidates:
            return ALL_GATEWAYS_DOWN
        with_room = [g for g in candidates if pools[g.name].free > 0]
        if not with_room:
            return TRUNK_FULL
        # min() keeps the first of equal keys, which is the configured order.
        return min(with_room, key=lambda g: Fraction(pools[g.name].busy, g.channels))


@functools.lru_cache(maxsize=1024)  # asked for every INVITE, about a few addresses
def _same_host(a: str, b: str) -> bool:
    """Exact address match; IP literals compare by value ("::1" is "0:0::1")."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


class Trunks:
    """The configured gateways and trunk groups with their live accounting and health.

    The keepalive adapter drives `health[name]` for each gateway; outbound selection
    skips gateways whose health says they are not live.
    """

    def __init__(
        self,
        groups: Iterable[TrunkGroup],
        gateways: Iterable[Gateway] = (),
        make_health: Callable[[str], GatewayHealth] = GatewayHealth,
    ) -> None:
        """`gateways` adds gateways that are in no group (inbound only); `make_health`
        builds each gateway's keepalive (pass a lambda to set intervals and counts)."""
        self.groups: dict[str, TrunkGroup] = {}
        self.gateways: dict[str, Gateway] = {}
        for gateway in gateways:
            self._add_gateway(gateway)
        for group in groups:
            if group.name in self.groups:
                raise TrunkError(f"trunk group {group.name!r} is configured twice")
            self.groups[group.name] = group
            for gateway in group.gateways:
                self._add_gateway(gateway)
        self.pools = {name: ChannelPool(g) for name, g in self.gateways.items()}
        self.health = {name: make_health(name) for name in self.gateways}

    def _add_gateway(self, gateway: Gateway) -> None:
        known = self.gateways.get(gateway.name)
        if known is not None and known != gateway:
            raise TrunkError(f"gateway {gateway.name!r} is configured twice, differently")
        self.gateways[gateway.name] = gateway

    def gateway_for_source(self, host: str, port: int | None = None) -> Gateway | None:
        """The configured gateway a request came from, by source address, or None.

        The host must match exactly. The port only chooses between gateways on one
        host: over TCP/TLS a gateway connects from an ephemeral port, so a port that
        matches no configured one still matches the host.
        """
        on_host = [g for g in self.gateways.values() if _same_host(g.host, host)]
        for gateway in on_host:
            if gateway.port == port:
                return gateway
        return on_host[0] if on_host else None

    def select_outbound(self, group_name: str) -> Gateway | Rejection:
        group = self._group(group_name)
        live = {name: self.health[name].is_live for name in self.health}
        return group.select(self.pools, live)

    def seize_outbound(self, group_name: str, call_id: str) -> Seizure | Rejection:
        choice = self.select_outbound(group_name)
        if isinstance(choice, Rejection):
            return choice
        seizure = self.pools[choice.name].seize(call_id, Direction.OUTBOUND)
        assert seizure is not None  # select() only offers gateways with a free channel
        return seizure

    def seize_inbound(self, gateway: Gateway, call_id: str) -> Seizure | Rejection:
        """A channel for a call the gateway sent us. Health is not consulted: the call
        arriving is the gateway working. Full (an outbound call took the last channel
        at the same moment) gives the same 503 / cause 34 as a full trunk."""
        pool = self.pools.get(gateway.name)
        if pool is None:
            raise TrunkError(f"gateway {gateway.name!r} is not configured")
        seizure = pool.seize(call_id, Direction.INBOUND)
        return TRUNK_FULL if seizure is None else seizure

    def release(self, seizure: Seizure) -> bool:
        """Free the channel of a seizure; idempotent."""
        return self.pools[seizure.gateway.name].release(seizure.call_id)

    def _group(self, group_name: str) -> TrunkGroup:
        try:
            return self.groups[group_name]
        except KeyError:
            raise TrunkError(f"trunk group {group_name!r} is not configured") from None
