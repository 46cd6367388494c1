"""The event bus: each subscriber gets the kinds it asked for, in order, stamped with the
injected clocks; a subscriber that stops reading loses events of its own (counted and
logged) and never stalls the publisher or the others. Then the switch on it: a phone's
registration and a call's events arrive on the bus from real SIP over loopback."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from switch.calls import CallEnded, CallStarted, LegEnded
from switch.event_bus import EventBus, Published, batches
from switch.media import DtmfReceived
from switch.sip import RegistrationChanged
from tests.switch.test_signalling_gateways import (
    DID,
    GATEWAY_HOST,
    Endpoint,
    address,
    gateway,
    invite,
    phone,
    register_1002,
    switch_with_gateway,
)

__all__ = ["gateway", "phone"]  # fixtures, imported for pytest

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


class FakeWallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def started(call_id: str) -> CallStarted:
    return CallStarted(call_id, "inbound", "13800138000", "4008123456")


def test_subscribers_get_their_kinds_in_order_with_both_times() -> None:
    wall = FakeWallClock()
    bus = EventBus(wall)
    cdrs = bus.subscribe("cdrs", CallStarted, CallEnded)
    everything = bus.subscribe("metrics")
    bus.publish(started("c1"), 10.0)
    wall.now = T0 + timedelta(seconds=2)
    bus.publish_all([DtmfReceived(leg=3, digit="5", duration_ms=80),
                     CallEnded("c1", "answered", 16, None, "caller-bye")], 12.0)
    assert cdrs.take() == [
        Published(10.0, T0, started("c1")),
        Published(12.0, T0 + timedelta(seconds=2),
                  CallEnded("c1", "answered", 16, None, "caller-bye"))]
    assert [type(p.event) for p in everything.take()] == [CallStarted, DtmfReceived,
                                                          CallEnded]
    assert cdrs.take() == [] and bus.published == 3


def test_a_subscriber_that_stops_reading_loses_only_its_own_events(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus(FakeWallClock())
    stuck = bus.subscribe("wallboard", max_queued=2)
    reader = bus.subscribe("cdrs")
    with caplog.at_level(logging.WARNING, logger="switch.event_bus"):
        for i in range(5):
            bus.publish(started(f"c{i}"), float(i))
            assert [p.event.call_id for p in reader.take()] == [f"c{i}"]
        assert stuck.dropped == 3
        assert [p.event.call_id for p in stuck.take()] == ["c0", "c1"]  # the oldest kept
        bus.publish(started("c5"), 5.0)
    assert [p.event.call_id for p in stuck.take()] == ["c5"]
    assert [r.getMessage() for r in caplog.records] == [
        "event bus: subscriber wallboard is 2 events behind; dropping its events until "
        "it catches up",
        "event bus: subscriber wallboard caught up after losing 3 events"]


def test_a_closed_subscription_gets_nothing_more() -> None:
    bus = EventBus(FakeWallClock())
    gone = bus.subscribe("gone")
    gone.close()
    bus.publish(started("c1"), 1.0)
    assert gone.take() == [] and bus.subscriptions == []


def test_max_queued_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queued must be at least 1, not 0"):
        EventBus(FakeWallClock()).subscribe("x", max_queued=0)


async def test_batches_wait_for_events_and_end_when_closed() -> None:
    bus = EventBus(FakeWallClock())
    subscription = bus.subscribe("cdrs", CallStarted)
    seen: list[list[str]] = []
    first = asyncio.Event()

    async def read() -> None:
        async for batch in batches(subscription):
            seen.append([p.event.call_id for p in batch])
            first.set()

    reader = asyncio.create_task(read())
    bus.publish_all([started("c1"), started("c2")], 1.0)
    await asyncio.wait_for(first.wait(), 5)
    bus.publish(started("c3"), 2.0)
    subscription.close()
    await asyncio.wait_for(reader, 5)
    assert seen == [["c1", "c2"], ["c3"]]


# -- the switch publishes on it (real UDP on loopback, in process)


@pytest.mark.integration
async def test_registrations_and_calls_are_published(gateway: Endpoint,
                                                     phone: Endpoint) -> None:
    async with switch_with_gateway(gateway) as service:
        registrations = service.bus.subscribe("presence", RegistrationChanged)
        calls = service.bus.subscribe("cdrs", CallStarted, LegEnded, CallEnded)
        slow = service.bus.subscribe("never-reads", max_queued=1)
        switch = address(service)
        await register_1002(phone, switch)
        [registered] = registrations.take()
        assert registered.event == RegistrationChanged("1002", True, "registered")
        assert 0 < registered.at <= service.now

        # A call the phone refuses: started, both legs ended, the call ended; in order.
        gateway.send(invite(gateway, GATEWAY_HOST, switch, DID, "gw-bus"), switch)
        offered = await phone.next(lambda m: getattr(m, "method", None) == "INVITE")
        phone.send(_busy_here(offered), switch)
        assert (await gateway.final_response("gw-bus")).status == 486
        events = [p.event for p in calls.take()]
        assert [type(e) for e in events] == [CallStarted, LegEnded, LegEnded, CallEnded]
        assert events[0].caller == "13800138000" and events[0].trunk == "pstn"
        assert {(e.leg_index, e.sip_status) for e in events[1:3]} >= {(1, 486)}
        assert isinstance(events[3], CallEnded) and events[3].disposition == "busy"
        assert slow.dropped > 0 and len(slow) == 1  # it lost events; the call did not


def _busy_here(invite_request: object) -> str:
    from switch.sip import Request, build_response

    assert isinstance(invite_request, Request)
    return build_response(invite_request, 486, to_tag="busy1").serialize().decode()

