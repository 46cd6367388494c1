"""Customer pages and API (客户): search by name or number, view with the last contact
records (沟通记录), edit, add a contact record.

Who may do what (apps.permissions): ``customers.view`` sees every customer (an agent must
recognise any caller, so an account manager also sees customers that are not theirs);
``customers.edit`` changes any customer; ``customers.edit_own`` changes only the
customers one is the account manager of (the customer's own manager, or its group's
when the customer names none) and cannot hand them to someone else; ``contacts.write``
adds contact records. The row-level rule is checked here, against the customer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from apps.audit import AuditLog
from apps.contacts import ContactChannel, ContactEntry, ContactError, ContactRecordService
from apps.customers import (
    UNSET,
    CustomerError,
    CustomerGroupRecord,
    CustomerRecord,
    CustomerService,
)
from apps.users import Role, UserRecord, UserService
from web.auth import error_response, requires
from web.customer_messages import register_messages
from web.errors import WebError
from web.i18n import translate
from web.openapi import documented
from web.templating import NavItem, language_of, render

API = "/api/v1"
VIEW, EDIT, EDIT_OWN, WRITE_CONTACTS = (
    "customers.view", "customers.edit", "customers.edit_own", "contacts.write")
PAGE_SIZE: Final = 20
MAX_API_PAGE_SIZE: Final = 200
LAST_CONTACTS: Final = 10  # contact records shown with a customer

NAV: Final = (NavItem("/customers", "nav.customers", VIEW),)

register_messages()


@dataclass(frozen=True)
class CustomerWebServices:
    customers: CustomerService
    contacts: ContactRecordService
    users: UserService
    audit: AuditLog


class BadInput(WebError):
    """A field that is missing or of the wrong type; the message names the field."""


# ---- request helpers (shared with web.customer_import_routes) -----------------------------


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def invalid(message: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": "invalid", "message": message}, status_code=status_code)


def not_found(request: Request, message_key: str = "customers.not_found") -> Response:
    message = translate(language_of(request), message_key)
    if request.url.path.startswith(API):
        return JSONResponse({"error": "not_found", "message": message}, status_code=404)
    return render(request, "error.html", {"message": message}, status_code=404)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadInput(f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


def timestamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


# ---- JSON shapes ----------------------------------------------------------------------------


def phones_json(customer: CustomerRecord) -> list[dict[str, Any]]:
    return [{"number": p.number, "label": p.label} for p in customer.phones]


def summary_json(customer: CustomerRecord) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "title": customer.title,
        "group_id": customer.group_id,
        "vip_level": customer.vip_level,
        "account_manager_id": customer.account_manager_id,
        "phones": phones_json(customer),
    }


def contact_json(entry: ContactEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": timestamp(entry.at), "channel": entry.channel.value,
            "text": entry.text, "agent_id": entry.agent_id,
            "agent_username": entry.agent_username, "call_id": entry.call_id}


def _user_json(user: UserRecord | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "name": user.name}


# ---- the row-level rule -----------------------------------------------------------------------


def manager_of(customer: CustomerRecord, group: CustomerGroupRecord | None) -> int | None:
    """The customer's account manager: its own, else its group's."""
    if customer.account_manager_id is not None:
        return customer.account_manager_id
    return group.account_manager_id if group is not None else None


def may_edit(permissions: frozenset[str], user_id: int, customer: CustomerRecord,
             group: CustomerGroupRecord | None) -> bool:
    return EDIT in permissions or (
        EDIT_OWN in permissions and manager_of(customer, group) == user_id)


@dataclass(frozen=True)
class Changes:
    """An edit, checked as far as possible before anything is written."""

    fields: Mapping[str, Any]  # keyword arguments of CustomerService.update_customer
    add_phones: Sequence[tuple[str, str | None]]  # (national number, label)
    remove_phones: Sequence[str]  # national numbers


class CustomerPages:
    """The endpoints; each route wraps one method in ``requires(...)``."""

    def __init__(self, services: CustomerWebServices) -> None:
        self.s = services

    async def _load(self, customer_id: int) -> tuple[CustomerRecord, CustomerGroupRecord | None]:
        customer = await self.s.customers.get_customer(customer_id)
        if customer is None:
            raise LookupError(customer_id)
        group = (None if customer.group_id is None
                 else await self.s.customers.get_group(customer.group_id))
        return customer, group

    async def _detail(self, request: Request, customer: CustomerRecord,
                      group: CustomerGroupRecord | None) -> dict[str, Any]:
        manager_id = manager_of(customer, group)
        manager = None if manager_id is None else await self.s.users.get_user(manager_id)
        contacts = await self.s.contacts.last(customer.id, LAST_CONTACTS)
        return {
            **summary_json(customer),
            "custom_fields": dict(customer.custom_fields),
            "external_key": customer.external_key,
            "group": None if group is None else {
                "id": group.id, "code": group.code, "name": group.name,
                "vip_level": group.vip_level},
            "effective_vip_level": max(customer.vip_level, group.vip_level if group else 0),
            "account_manager": _user_json(manager),
            "contacts": [contact_json(entry) for entry in contacts],
            "can_edit": may_edit(request.state.permissions, request.state.user.id,
                                 customer, group),
            "created_at": timestamp(customer.created_at),
            "updated_at": timestamp(customer.updated_at),
        }

    # -- API ---------------------------------------------------------------------------------

    async def api_search(self, request: Request) -> Response:
        """Search customers by name or by a number written in any format (paged)."""
        try:
            offset = query_int(request, "offset", 0, 0, 10**9)
            limit = query_int(request, "limit", PAGE_SIZE, 1, MAX_API_PAGE_SIZE)
        except BadInput as error:
            return invalid(str(error))
        page = await self.s.customers.search(request.query_params.get("q", ""),
                                             offset=offset, limit=limit)
        return JSONResponse({"customers": [summary_json(c) for c in page.customers],
                             "total": page.total, "offset": page.offset, "limit": page.limit})

    async def api_get(self, request: Request) -> Response:
        """One customer: group (集团), phones, VIP level, account manager, custom fields
        and the last contact records (沟通记录)."""
        try:
            customer, group = await self._load(request.path_params["id"])
        except LookupError:
            return not_found(request)
        return JSONResponse(await self._detail(request, customer, group))

    async def api_update(self, request: Request) -> Response:
        """Change a customer (needs customers.edit, or customers.edit_own for one's own
        customers). Phones are added with ``add_phones`` and removed with
        ``remove_phones``; an unusable number refuses the whole change."""
        try:
            customer, group = await self._load(request.path_params["id"])
        except LookupError:
            return not_found(request)
        if not may_edit(request.state.permissions, request.state.user.id, customer, group):
            return error_response(request, 403, "forbidden")
        try:
            changes = self._changes_from_json(await json_object(request), customer)
            if not self._may_reassign(request, customer, changes):
                return error_response(request, 403, "forbidden")
            updated = await self._apply(customer, changes)
        except (BadInput, CustomerError) as error:
            return invalid(str(error))
        return JSONResponse(await self._detail(request, updated, group))

    async def api_add_contact(self, request: Request) -> Response:
        """Add a contact record (沟通记录) to a customer, written by the caller."""
        try:
            body = await json_object(request)
            channel, text = body.get("channel", "phone"), body.get("text")
            if not isinstance(channel, str) or not isinstance(text, str) or not text.strip():
                raise BadInput("'channel' and a non-empty 'text' are required")
            entry = await self.s.contacts.add(request.path_params["id"], channel, text.strip(),
                                              agent_id=request.state.user.id)
        except BadInput as error:
            return invalid(str(error))
        except ContactError as error:
            if str(error).startswith("no customer"):
                return not_found(request)
            return invalid(str(error))
        return JSONResponse(contact_json(entry), status_code=201)

    # -- pages -------------------------------------------------------------------------------

    async def page_list(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        try:
            page_number = query_int(request, "page", 1, 1, 10**6)
        except BadInput:
            page_number = 1
        page = await self.s.customers.search(query, offset=(page_number - 1) * PAGE_SIZE,
                                             limit=PAGE_SIZE)
        pages = max(1, -(-page.total // PAGE_SIZE))
        return render(request, "customers/list.html", {
            "query": query, "page": page, "page_number": page_number, "pages": pages})

    async def page_view(self, request: Request) -> Response:
        try:
            customer, group = await self._load(request.path_params["id"])
        except LookupError:
            return not_found(request)
        detail = await self._detail(request, customer, group)
        return render(request, "customers/view.html", {
            "c": detail, "channels": [c.value for c in ContactChannel],
            "may_write": WRITE_CONTACTS in request.state.permissions})

    async def page_edit(self, request: Request) -> Response:
        try:
            customer, group = await self._load(request.path_params["id"])
        except LookupError:
            return not_found(request)
        if not may_edit(request.state.permissions, request.state.user.id, customer, group):
            return error_response(request, 403, "forbidden")
        return await self._edit_form(request, customer, None, {})

    async def page_edit_submit(self, request: Request) -> Response:
        try:
            customer, group = await self._load(request.path_params["id"])
        except LookupError:
            return not_found(request)
        if not may_edit(request.state.permissions, request.state.user.id, customer, group):
            return error_response(request, 403, "forbidden")
        form = await request.form()
        try:
            changes = self._changes_from_form(form, customer)
            if not self._may_reassign(request, customer, changes):
                return error_response(request, 403, "forbidden")
            await self._apply(customer, changes)
        except (BadInput, CustomerError) as error:
            return await self._edit_form(request, customer, str(error), form, 400)
        return RedirectResponse(f"/customers/{customer.id}", status_code=303)

    async def page_add_contact(self, request: Request) -> Response:
        customer_id = request.path_params["id"]
        form = await request.form()
        channel, text = form.get("channel", "phone"), form.get("text")
        if not isinstance(channel, str) or not isinstance(text, str) or not text.strip():
            return error_response(request, 400, "bad_request")
        try:
            await self.s.contacts.add(customer_id, channel, text.strip(),
                                      agent_id=request.state.user.id)
        except ContactError:
            return not_found(request)
        return RedirectResponse(f"/customers/{customer_id}", status_code=303)

    async def _edit_form(self, request: Request, customer: CustomerRecord, error: str | None,
                         form: Mapping[str, Any], status_code: int = 200) -> Response:
        managers = [u for u in await self.s.users.list_users()
                    if u.role is Role.account_manager or u.id == customer.account_manager_id]
        custom_text = "\n".join(f"{k}={v}" for k, v in customer.custom_fields.items())
        return render(request, "customers/edit.html", {
            "c": customer, "error": error, "form": form, "managers": managers,
            "custom_text": form.get("custom_fields", custom_text),
            "may_reassign": EDIT in request.state.permissions,
        }, status_code=status_code)

    # -- changes -----------------------------------------------------------------------------

    def _may_reassign(self, request: Request, customer: CustomerRecord,
                      changes: Changes) -> bool:
        """Only customers.edit hands a customer to another account manager."""
        new = changes.fields.get("account_manager_id", customer.account_manager_id)
        return new == customer.account_manager_id or EDIT in request.state.permissions

    def _changes_from_json(self, body: Mapping[str, Any], customer: CustomerRecord) -> Changes:
        fields: dict[str, Any] = {}
        for name in ("name", "title"):
            if name in body:
                value = body[name]
                if not (isinstance(value, str) or (value is None and name == "title")):
                    raise BadInput(f"'{name}' must be a string")
                fields[name] = value
        for name in ("vip_level", "account_manager_id"):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not (
                        isinstance(value, int) or (value is None and name != "vip_level")):
                    raise BadInput(f"'{name}' must be an integer")
                fields[name] = value
        if "custom_fields" in body:
            if not isinstance(body["custom_fields"], dict):
                raise BadInput("'custom_fields' must be an object")
            fields["custom_fields"] = body["custom_fields"]
        add = body.get("add_phones", [])
        remove = body.get("remove_phones", [])
        if not isinstance(add, list) or not isinstance(remove, list):
            raise BadInput("'add_phones' and 'remove_phones' must be lists")
        additions: list[tuple[str, str | None]] = []
        for item in add:
            if isinstance(item, str):
                item = {"number": item}
            if not isinstance(item, dict) or not isinstance(item.get("number"), str):
                raise BadInput("each of 'add_phones' must be a number or {number, label}")
            label = item.get("label")
            additions.append((item["number"], label if isinstance(label, str) else None))
        if not all(isinstance(number, str) for number in remove):
            raise BadInput("'remove_phones' must list numbers")
        return self._checked(customer, fields, additions, remove)

    def _changes_from_form(self, form: FormData, customer: CustomerRecord) -> Changes:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        fields: dict[str, Any] = {"name": text("name"), "title": text("title") or None}
        vip = text("vip_level") or "0"
        if not (vip.isascii() and vip.isdigit()):
            raise BadInput(f"VIP level must be a whole number from 0 up, not {vip!r}")
        fields["vip_level"] = int(vip)
        manager = text("account_manager_id")
        if "account_manager_id" in form:
            fields["account_manager_id"] = int(manager) if manager.isdigit() else None
        fields["custom_fields"] = _parse_custom_fields(text("custom_fields"),
                                                       customer.custom_fields)
        additions = [(text("new_phone"), text("new_phone_label") or None)] \
            if text("new_phone") else []
        removals = [v for v in form.getlist("remove_phone") if isinstance(v, str)]
        return self._checked(customer, fields, additions, removals)

    def _checked(self, customer: CustomerRecord, fields: dict[str, Any],
                 additions: Sequence[tuple[str, str | None]],
                 removals: Sequence[str]) -> Changes:
        """Numbers normalised and checked against the customer's before any write, so
        that a bad number leaves the customer as it was."""
        have = {p.number for p in customer.phones}
        removed = [self.s.customers.normalize(number) for number in removals]
        for number in removed:
            if number not in have:
                raise CustomerError(f"customer {customer.id} has no number {number}")
        added: list[tuple[str, str | None]] = []
        for number, label in additions:
            national = self.s.customers.normalize(number)
            if national in have and national not in removed:
                raise CustomerError(f"customer {customer.id} already has the number {national}")
            added.append((national, label))
        return Changes(fields, added, removed)

    async def _apply(self, customer: CustomerRecord, changes: Changes) -> CustomerRecord:
        updated = await self.s.customers.update_customer(customer.id, **changes.fields) \
            if changes.fields else customer
        for number in changes.remove_phones:
            await self.s.customers.remove_phone(customer.id, number)
        for number, label in changes.add_phones:
            await self.s.customers.add_phone(customer.id, number, label)
        if changes.remove_phones or changes.add_phones:
            refreshed = await self.s.customers.get_customer(customer.id)
            assert refreshed is not None
            return refreshed
        return updated


def _parse_custom_fields(text: str, before: Mapping[str, Any]) -> dict[str, Any]:
    """``key=value`` lines; a value written as it was shown keeps its type (a number
    stays a number)."""
    fields: dict[str, Any] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"custom fields line {line_number}: write it as name=value")
        key, value = key.strip(), value.strip()
        old = before.get(key, UNSET)
        fields[key] = old if old is not UNSET and str(old) == value else value
    return fields


_SEARCH_PARAMS = {"200": {"description": "A page of customers; ?q= name or number, "
                                         "?offset=, ?limit= (at most 200)"}}
_UPDATE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "vip_level": {"type": "integer", "minimum": 0},
        "account_manager_id": {"type": ["integer", "null"]},
        "custom_fields": {"type": "object"},
        "add_phones": {"type": "array", "items": {"type": "object", "properties": {
            "number": {"type": "string"}, "label": {"type": ["string", "null"]}}}},
        "remove_phones": {"type": "array", "items": {"type": "string"}},
    },
}
_CONTACT_BODY: dict[str, Any] = {
    "type": "object", "required": ["text"],
    "properties": {"channel": {"type": "string",
                               "enum": [c.value for c in ContactChannel]},
                   "text": {"type": "string"}},
}


def endpoint(method: Any, *capabilities: str, request_body: dict[str, Any] | None = None,
             responses: dict[str, Any] | None = None) -> Any:
    """``method`` behind ``requires(*capabilities)``, described for the OpenAPI page."""
    guarded = requires(*capabilities)(method)
    return documented(request_body=request_body, responses=responses)(guarded)


def routes(services: CustomerWebServices) -> list[BaseRoute]:
    p = CustomerPages(services)
    return [
        Route(f"{API}/customers", endpoint(p.api_search, VIEW, responses=_SEARCH_PARAMS),
              methods=["GET"]),
        Route(f"{API}/customers/{{id:int}}", endpoint(p.api_get, VIEW), methods=["GET"]),
        Route(f"{API}/customers/{{id:int}}",
              endpoint(p.api_update, VIEW, request_body=_UPDATE_BODY), methods=["PATCH"]),
        Route(f"{API}/customers/{{id:int}}/contacts",
              endpoint(p.api_add_contact, VIEW, WRITE_CONTACTS, request_body=_CONTACT_BODY),
              methods=["POST"]),
        Route("/customers", endpoint(p.page_list, VIEW), methods=["GET"]),
        Route("/customers/{id:int}", endpoint(p.page_view, VIEW), methods=["GET"]),
        Route("/customers/{id:int}/edit", endpoint(p.page_edit, VIEW), methods=["GET"]),
        Route("/customers/{id:int}/edit", endpoint(p.page_edit_submit, VIEW),
              methods=["POST"]),
        Route("/customers/{id:int}/contacts",
              endpoint(p.page_add_contact, VIEW, WRITE_CONTACTS), methods=["POST"]),
    ]
