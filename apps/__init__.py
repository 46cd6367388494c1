"""Business services on the database. The only package that knows SQL."""

from apps.agent_groups import GroupError, GroupMember, GroupRecord, GroupService
from apps.audit import SYSTEM, Actor, AuditEntry, AuditError, AuditLog, SystemActor
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
from apps.permissions import (
    CAPABILITIES,
    ROLE_DEFAULTS,
    AccessError,
    Capability,
    PermissionDenied,
    PermissionService,
    Scope,
    UnknownCapability,
    check_capability,
    resolve,
)
from apps.users import Role, SipCredentials, UserError, UserRecord, UserService

__all__ = [
    "CAPABILITIES",
    "ROLE_DEFAULTS",
    "SYSTEM",
    "AccessError",
    "Actor",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "CallEnd",
    "CallRecord",
    "CallStart",
    "CallState",
    "Capability",
    "CdrError",
    "CdrStore",
    "Database",
    "DemoAccount",
    "Direction",
    "Disposition",
    "GroupError",
    "GroupMember",
    "GroupRecord",
    "GroupService",
    "LegRecord",
    "LegStart",
    "PermissionDenied",
    "PermissionService",
    "Role",
    "Scope",
    "SipCredentials",
    "SystemActor",
    "UnknownCapability",
    "UserError",
    "UserRecord",
    "UserService",
    "check_capability",
    "resolve",
    "seed_demo_data",
    "upgrade_database",
]
