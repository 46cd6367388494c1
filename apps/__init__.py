"""Business services on the database. The only package that knows SQL."""

from apps.db import Database, upgrade_database
from apps.demo import DemoAccount, seed_demo_data
from apps.users import Role, SipCredentials, UserError, UserRecord, UserService

__all__ = [
    "Database",
    "DemoAccount",
    "Role",
    "SipCredentials",
    "UserError",
    "UserRecord",
    "UserService",
    "seed_demo_data",
    "upgrade_database",
]
