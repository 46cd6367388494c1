"""The admin pages and API: users, agent groups 分组, permissions, queues 队列 and the
audit log.

The composition root hands them to create_app::

    admin = AdminServices(users, groups, permissions, audit,
                          registered_extensions=sip_service.registered_extensions,
                          queues=QueueService(db, audit))
    create_app(services, routes=web.admin.routes(admin), nav=web.admin.NAV)
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from web import admin_audit, admin_groups, admin_permissions, admin_queues, admin_users
from web.admin_common import AdminServices, RegisteredExtensions
from web.templating import NavItem

__all__ = ["NAV", "AdminServices", "RegisteredExtensions", "routes"]

_AREAS = (admin_users, admin_groups, admin_permissions, admin_queues, admin_audit)

NAV: tuple[NavItem, ...] = tuple(area.NAV for area in _AREAS)


def routes(services: AdminServices) -> list[BaseRoute]:
    return [route for area in _AREAS for route in area.routes(services)]
