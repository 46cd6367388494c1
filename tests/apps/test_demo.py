"""Demo data on a fresh install: an account of each role (test_users.py) and enterprise
groups with members a newcomer can look up by calling number in the web UI."""

from __future__ import annotations

from apps import ContactRecordService, CustomerService, Database, UserService, seed_demo_data
from apps.demo import DEMO_ACCOUNT_MANAGER, DEMO_GROUPS, seed_demo_customers


async def test_demo_customers_are_found_by_their_numbers(db: Database) -> None:
    users = UserService(db, "callcenter")
    await seed_demo_data(users)
    async with CustomerService(db) as customers:
        contacts = ContactRecordService(db)
        created = await seed_demo_customers(customers, contacts, users)
        assert created == sum(len(members) for *_, members in DEMO_GROUPS)

        # A member calls from a fixed line written the way a gateway may present it.
        match = await customers.lookup_by_number("+86 10 8888 0001")
        assert match is not None
        assert (match.name, match.number) == ("刘建国", "01088880001")
        assert (match.group_code, match.vip_level) == ("G0001", 3)
        assert match.account_manager_username == DEMO_ACCOUNT_MANAGER
        [note] = await contacts.last(match.customer_id, 5)
        assert note.channel == "phone" and "演示" in note.text
        assert await customers.lookup_by_number("13900000099") is None
