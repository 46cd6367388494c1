"""The audit log (audit.view): newest first, filtered by action and by user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from apps.audit import MAX_RECENT_LIMIT, AuditEntry
from web.admin_common import API, AdminServices, invalid, timestamp
from web.audit_text import ACTIONS, action_label, source_label, summary
from web.auth import requires
from web.openapi import documented
from web.templating import NavItem, language_of, render

CAPABILITY = "audit.view"
NAV = NavItem("/admin/audit", "nav.admin_audit", CAPABILITY)
DEFAULT_LIMIT = 100


class BadFilter(ValueError):
    pass


@dataclass(frozen=True)
class AuditFilter:
    action: str | None
    username: str | None
    limit: int

    @classmethod
    def parse(cls, query: Any) -> AuditFilter:
        raw_limit = query.get("limit") or str(DEFAULT_LIMIT)
        if not (raw_limit.isascii() and raw_limit.isdigit()
                and 1 <= int(raw_limit) <= MAX_RECENT_LIMIT):
            raise BadFilter(f"limit must be a whole number from 1 to {MAX_RECENT_LIMIT}")
        return cls(action=(query.get("action") or "").strip() or None,
                   username=(query.get("user") or "").strip() or None,
                   limit=int(raw_limit))


def entry_json(lang: str, entry: AuditEntry) -> dict[str, Any]:
    """The stored fields as they are, with how the page reads them in ``lang``."""
    return {
        "id": entry.id,
        "at": timestamp(entry.at),
        "actor_id": entry.actor_id,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": dict(entry.detail),
        "source_ip": entry.source_ip,
        "label": action_label(lang, entry.action),
        "summary": summary(lang, entry),
        "source": source_label(lang, entry.source_ip),
    }


class AuditAdmin:
    def __init__(self, services: AdminServices) -> None:
        self._services = services

    async def _entries(self, wanted: AuditFilter) -> list[AuditEntry]:
        actor_id = None
        if wanted.username is not None:
            users = {user.username: user.id for user in await self._services.users.list_users()}
            if wanted.username not in users:
                return []
            actor_id = users[wanted.username]
        return await self._services.audit.recent(wanted.limit, action=wanted.action,
                                                 actor_id=actor_id)

    @documented(responses={"200": {"description": "Entries, newest first"},
                           "400": {"description": "A bad limit"}})
    async def api_list(self, request: Request) -> Response:
        """Read the audit log, newest first.

        Query: ``action`` (exact, e.g. permission.grant), ``user`` (the acting username),
        ``limit`` (1 to 1000, default 100). Each entry has the stored fields (``source_ip``
        is the client address, "command-line", or null for an entry written before
        sources were recorded) and, in the request's language, ``label`` (the action),
        ``summary`` (the detail as one line) and ``source`` (the address, 命令行, or —)."""
        try:
            wanted = AuditFilter.parse(request.query_params)
        except BadFilter as exc:
            return invalid(request, str(exc))
        entries = await self._entries(wanted)
        lang = language_of(request)
        return JSONResponse({"entries": [entry_json(lang, entry) for entry in entries]})

    async def page(self, request: Request) -> Response:
        error: str | None = None
        try:
            wanted = AuditFilter.parse(request.query_params)
        except BadFilter as exc:
            wanted, error = AuditFilter(None, None, DEFAULT_LIMIT), str(exc)
        entries = await self._entries(wanted)
        lang = language_of(request)
        return render(request, "admin/audit.html", {
            "rows": [entry_json(lang, entry) for entry in entries],
            "actions": [(action, action_label(lang, action)) for action in ACTIONS],
            "wanted": wanted, "error": error,
        }, status_code=400 if error else 200)


def routes(services: AdminServices) -> list[BaseRoute]:
    admin = AuditAdmin(services)
    guard = requires(CAPABILITY)
    return [
        Route(f"{API}/audit", guard(admin.api_list), methods=["GET"]),
        Route("/admin/audit", guard(admin.page), methods=["GET"]),
    ]
