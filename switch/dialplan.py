"""The dialplan: which way a new call goes. Pure: a query in, a decision out, no I/O.

Routes come from ``[[routes]]`` in the configuration and are tried in order; the first
that matches decides. What a route matches on and which calls it may see are data
(``_MATCHES``, ``_SIDES``); call control turns the decision into SIP and media.

Which calls a route sees: with ``from_trunk`` only inbound calls from that trunk group.
Without it a ``did`` route sees every inbound call, while ``prefix`` and ``extension``
routes see only calls from our side (phones and applications): an inbound caller must
never reach a trunk group by dialling a prefix (toll fraud through hairpinning) unless a
route says so with ``from_trunk``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from switch.config import EXTENSION_RE, Config, ConfigError, RingGroupConfig, RouteConfig
from switch.sip import reason_phrase

ADDRESS_INCOMPLETE = 484  # RFC 3261 §21.4.22: nothing left to dial after `strip`


class CallDirection(Enum):
    INBOUND = "inbound"  # from a trunk (a PRI gateway)
    INTERNAL = "internal"  # from one of our phones
    OUTBOUND = "outbound"  # placed by an application (the dialer, a transfer)


@dataclass(frozen=True, slots=True)
class RouteQuery:
    direction: CallDirection
    from_trunk: str | None  # the trunk group an inbound call arrived through
    called: str  # the called (dialled) number: Request-URI user part, normalised
    caller: str


@dataclass(frozen=True, slots=True)
class ToExtension:
    extension: str


@dataclass(frozen=True, slots=True)
class ToApplication:
    name: str
    # Read-only; left out of the hash since a mapping has none.
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True, slots=True)
class ToTrunkGroup:
    group: str
    dialled_number: str  # after strip and prepend


@dataclass(frozen=True, slots=True)
class RingGroup:
    """Several numbers (extensions, or outside numbers through the outbound routes)
    rung at once (``simultaneous``) or one after another (``sequential``), each for
    ``ring_timeout_s`` (switch.calls.forking rings them)."""

    name: str
    strategy: str  # "simultaneous" or "sequential"
    targets: tuple[str, ...]
    ring_timeout_s: float | None = None  # None: [calls] ring_timeout_s

    @classmethod
    def from_config(cls, group: RingGroupConfig) -> RingGroup:
        return cls(group.name, group.strategy, group.targets, group.ring_timeout_s)


@dataclass(frozen=True, slots=True)
class ToRingGroup:
    group: RingGroup


@dataclass(frozen=True, slots=True)
class Reject:
    status: int  # SIP status for the caller's leg
    reason: str  # its reason phrase


RouteDecision = ToExtension | ToApplication | ToTrunkGroup | ToRingGroup | Reject

_FROM_OUR_SIDE = frozenset({CallDirection.INTERNAL, CallDirection.OUTBOUND})

# Match kind -> does the called number match the route's value.
_MATCHES: dict[str, Callable[[str, str], bool]] = {
    "did": lambda called, did: called == did,
    "prefix": lambda called, prefix: called.startswith(prefix),
    "extension": lambda called, _: EXTENSION_RE.fullmatch(called) is not None,
}
# Match kind -> the directions a route without from_trunk sees (see the module doc).
_SIDES: dict[str, frozenset[CallDirection]] = {
    "did": frozenset({CallDirection.INBOUND}),
    "prefix": _FROM_OUR_SIDE,
    "extension": _FROM_OUR_SIDE,
}


@dataclass(frozen=True, slots=True)
class Route:
    """One rule: ``kind`` and ``value`` say what it matches, the rest what it does."""

    kind: str  # a key of _MATCHES
    value: str  # the DID or prefix; "" for extension
    from_trunk: str | None
    decide: Callable[[str], RouteDecision]  # called number -> decision
    recording: str | None = None  # the call's recording policy; None: the default

    def matches(self, query: RouteQuery) -> bool:
        if self.from_trunk is not None:
            if query.direction is not CallDirection.INBOUND or query.from_trunk != self.from_trunk:
                return False
        elif query.direction not in _SIDES[self.kind]:
            return False
        return _MATCHES[self.kind](query.called, self.value)

    @classmethod
    def from_config(cls, route: RouteConfig,
                    ring_groups: Mapping[str, RingGroup] | None = None) -> Route:
        """``route`` has been validated by switch.config: one match, one action, and
        its ring group (in ``ring_groups``) exists."""
        if route.did is not None:
            kind, value = "did", route.did
        elif route.prefix is not None:
            kind, value = "prefix", route.prefix
        else:
            kind, value = "extension", ""
        return cls(kind, value, route.from_trunk, _action(route, ring_groups or {}),
                   route.recording)


def _action(route: RouteConfig,
            ring_groups: Mapping[str, RingGroup]) -> Callable[[str], RouteDecision]:
    if route.ring_group is not None:
        ring = ToRingGroup(ring_groups[route.ring_group])
        return lambda _: ring
    if isinstance(route.extension, str):
        decision = ToExtension(route.extension)
        return lambda _: decision
    if route.application is not None:
        params = {"prompt": route.prompt} if route.prompt is not None else {}
        application = ToApplication(route.application, params)
        return lambda _: application
    if route.trunk_group is not None:
        return _to_trunk_group(route.trunk_group, route.strip, route.prepend)
    return ToExtension  # extension = true alone: ring the dialled extension


def _to_trunk_group(group: str, strip: int, prepend: str) -> Callable[[str], RouteDecision]:
    def decide(called: str) -> RouteDecision:
        rest = called[strip:]
        if not any(c.isdigit() for c in rest):  # "" or a lone "+": nothing to dial
            return Reject(ADDRESS_INCOMPLETE, reason_phrase(ADDRESS_INCOMPLETE))
        return ToTrunkGroup(group, prepend + rest)

    return decide


class Dialplan:
    def __init__(self, routes: Sequence[Route], default: Reject) -> None:
        self.routes = tuple(routes)
        self.default = default

    def __repr__(self) -> str:
        return f"<Dialplan {len(self.routes)} routes, default {self.default.status}>"

    @classmethod
    def from_config(cls, config: Config) -> Dialplan:
        """With no [[routes]] at all, phones may call each other's extensions (an implicit
        `extension = true` route), so a fresh install works; once routes are written,
        only they apply."""
        status = config.dialplan.status  # default = "reject" is the only choice so far
        groups = {group.name: RingGroup.from_config(group) for group in config.ring_groups}
        routes = [Route.from_config(route, groups) for route in config.routes] or [
            Route("extension", "", None, ToExtension)]
        dialplan = cls(routes, Reject(status, reason_phrase(status)))
        dialplan.check_ring_groups(groups.values())
        return dialplan

    def check_ring_groups(self, groups: Iterable[RingGroup]) -> None:
        """Every target of every ring group must lead to a phone or a trunk group from
        our side; raises ConfigError naming the group and the target."""
        for group in groups:
            for target in group.targets:
                decision = self.route(RouteQuery(CallDirection.OUTBOUND, None, target, ""))
                if not isinstance(decision, ToExtension | ToTrunkGroup):
                    raise ConfigError(
                        f"[[ring_groups]] {group.name!r}: target {target!r} reaches no "
                        "extension or trunk group through [[routes]]")

    @classmethod
    def extensions_only(cls) -> Dialplan:
        """Phones call each other's extensions, nothing else (a fresh install)."""
        return cls([Route("extension", "", None, ToExtension)], Reject(404, reason_phrase(404)))

    def route(self, call: RouteQuery) -> RouteDecision:
        """The decision of the first route that matches ``call``, else the default."""
        for rule in self.routes:
            if rule.matches(call):
                return rule.decide(call.called)
        return self.default

    def recording(self, call: RouteQuery) -> str | None:
        """The recording policy of the route ``call`` takes, if that route names one."""
        return next((rule.recording for rule in self.routes if rule.matches(call)), None)
