"""Business services on the database. The only package that knows SQL."""

from apps.cdrs import (
    CallEnd,
    CallRecord,
    CallStart,
    CallState,
    CdrError,
    CdrStore,
    Direction,
    Disposition,
    LegRecord,
    LegStart,
)
from apps.db import Database, upgrade_database
from apps.demo import DemoAccount, seed_demo_data
from apps.users import Role, SipCredentials, UserError, UserRecord, UserService

__all__ = [
    "CallEnd",
    "CallRecord",
    "CallStart",
    "CallState",
    "CdrError",
    "CdrStore",
    "Database",
    "DemoAccount",
    "Direction",
    "Disposition",
    "LegRecord",
    "LegStart",
    "Role",
    "SipCredentials",
    "UserError",
    "UserRecord",
    "UserService",
    "seed_demo_data",
    "upgrade_database",
]
