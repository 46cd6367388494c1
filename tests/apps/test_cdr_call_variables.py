"""From an application to the CDR: what the IVR learnt on a call, over the in-memory
harness of tests/switch (real CallControl and applications), reaches the call's CDR
through the CDR writer as call control reports it."""

from __future__ import annotations

from datetime import UTC, datetime

from apps import CallState, CdrStore, Database, Disposition
from apps.cdr_writer import CdrWriter
from switch.applications import Channel
from tests.switch.harness import Desk, settle

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


async def test_what_an_ivr_learnt_is_in_the_cdr_of_its_call(db: Database) -> None:
    async def menu(channel: Channel) -> None:
        await channel.answer()
        pressed = await channel.collect_digits(4)
        channel.variables.update(customer_id=42, vip_level="金卡", digits=pressed,
                                 ivr_path=[{"node": "menu", "pressed": pressed}])
        await channel.hand_off("survey")
        await channel.hang_up()

    async def survey(channel: Channel) -> None:
        path = channel.variables["ivr_path"]
        assert isinstance(path, list)
        channel.variables["ivr_path"] = [*path, {"node": "survey"}]

    desk = Desk({"desk": menu, "survey": survey})
    desk.call_in()
    await settle(lambda: desk.net.control.calls != {} and desk.call.answered_at is not None)
    desk.press("2#")
    await settle(desk.customer_got_bye)

    store = CdrStore(db, clock=lambda: T0)
    writer = CdrWriter(store, clock=lambda: T0)
    await writer.start()
    writer.submit(desk.net.reports)  # what call control reported, CDR events and others
    await writer.stop()
    [started] = desk.net.started()
    cdr = await store.get_call(started.call_id)
    assert cdr is not None
    assert (cdr.state, cdr.disposition) == (CallState.closed, Disposition.answered)
    assert cdr.variables == {
        "customer_id": 42, "vip_level": "金卡", "digits": "2",
        "ivr_path": [{"node": "menu", "pressed": "2"}, {"node": "survey"}],
    }
