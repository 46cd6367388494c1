"""Customer pages and API (客户): search by name or number, view with the last contact
records (沟通记录), edit, add a contact record.

Who may do what (apps.permissions): ``customers.view`` sees every customer (an agent must
recognise any caller, so an account manager also sees customers that are not theirs);
``customers.edit`` changes any customer; ``customers.edit_own`` changes only the
customers one is the account manager of (the customer's own manager, or its group's
when the customer names none), and may change neither their VIP level (which decides
whose screen pop a shared number shows) nor their account manager; ``contacts.write``
adds contact records. The row-level rule is checked here, against the customer. A number
another customer has is not added to this one (apps.PhoneTaken), as in the import.
"""

from __future__ import annotations

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
from apps.customer_levels import MAX_VIP_LEVEL, VipLevelError, VipLevels
from apps.customers import (
    UNSET,
    CustomerError,
    CustomerGroupRecord,
    CustomerPage,
    CustomerRecord,
    CustomerService,
    PhoneTaken,
    customer_manager_id,
    customer_vip_level,
)
from apps.users import Role, UserRecord, UserService
from web import inputs
from web.auth import error_response, requires
from web.customer_messages import register_messages
from web.i18n import add_messages, translate
from web.inputs import BadInput as BadInput
from web.inputs import id_field
from web.inputs import json_object as json_object
from web.openapi import documented
from web.templating import NavItem, flash, language_of, render

API = "/api/v1"
VIEW, EDIT, EDIT_OWN, WRITE_CONTACTS = (
    "customers.view", "customers.edit", "customers.edit_own", "contacts.write")
PAGE_SIZE: Final = 20
MAX_API_PAGE_SIZE: Final = 200
LAST_CONTACTS: Final = 10  # contact records shown with a customer

NAV: Final = (NavItem("/customers", "nav.customers", VIEW),)

register_messages()
EDIT_MESSAGES: dict[str, dict[str, str]] = {
    "customers.bad_vip_level": {
        "zh": "VIP等级“{value}”无效：请选择 {names} 之一，或填写 0 到 {max} 的整数",
        "en": "The VIP level “{value}” is unknown: choose one of {names}, or give a whole "
              "number from 0 to {max}"},
    "customers.vip_needs_edit": {
        "zh": "只有可编辑全部客户的用户才能修改VIP等级",
        "en": "Only users who may edit every customer can change the VIP level"},
    "customers.bad_mine": {
        "zh": "“mine”必须是 1 或 0", "en": "'mine' must be 1 or 0"},
    "customers.manager_needs_edit": {
        "zh": "只有可编辑全部客户的用户才能更换客户经理",
        "en": "Only users who may edit every customer can change the account manager"},
    "customers.phone_taken": {
        "zh": "号码 {number} 已属于客户“{name}”（编号 {id}），不能添加给其他客户",
        "en": "The number {number} already belongs to customer “{name}” (id {id}); "
              "it cannot be added to another customer"},
}
add_messages("customer edit", EDIT_MESSAGES)


@dataclass(frozen=True)
class CustomerWebServices:
    customers: CustomerService
    contacts: ContactRecordService
    users: UserService
    audit: AuditLog


# ---- request helpers (shared with web.customer_import_routes) -----------------------------


def invalid(message: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"error": "invalid", "message": message}, status_code=status_code)


def refusal(request: Request, status_code: int, error: str, message_key: str) -> Response:
    """JSON ``{"error", "message"}`` for the API, the error page otherwise."""
    message = translate(language_of(request), message_key)
    if request.url.path.startswith(API):
        return JSONResponse({"error": error, "message": message}, status_code=status_code)
    return render(request, "error.html", {"message": message}, status_code=status_code)


def not_found(request: Request, message_key: str = "customers.not_found") -> Response:
    return refusal(request, 404, "not_found", message_key)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise BadInput(f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


_FLAGS: Final = {"1": True, "true": True, "0": False, "false": False, "": False}


def mine_flag(request: Request) -> bool:
    """``?mine=1``: only the caller's own customers."""
    raw = request.query_params.get("mine", "")
    if raw.lower() not in _FLAGS:
        raise BadInput.of("customers.bad_mine")
    return _FLAGS[raw.lower()]


def timestamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


# ---- JSON shapes ----------------------------------------------------------------------------


def phones_json(customer: CustomerRecord) -> list[dict[str, Any]]:
    return [{"number": p.number, "label": p.label} for p in customer.phones]


def summary_json(customer: CustomerRecord, group: CustomerGroupRecord | None,
                 levels: VipLevels, manager: UserRecord | None) -> dict[str, Any]:
    """A customer as the list and the API show it. ``vip_level`` is the one level the
    customer shows everywhere (its own, or its group's when higher), with its name;
    ``own_vip_level`` is what editing the customer changes. ``account_manager`` is the
    customer's own, else its group's; ``account_manager_id`` is the customer's own."""
    rank = customer_vip_level(customer, group)
    return {
        "id": customer.id,
        "name": customer.name,
        "title": customer.title,
        "group_id": customer.group_id,
        "group": None if group is None else {
            "id": group.id, "code": group.code, "name": group.name},
        "vip_level": rank,
        "vip_level_name": levels.name(rank),
        "own_vip_level": customer.vip_level,
        "account_manager_id": customer.account_manager_id,
        "account_manager": _user_json(manager),
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


manager_of = customer_manager_id  # the customer's account manager: its own, else its group's


def may_edit(permissions: frozenset[str], user_id: int, customer: CustomerRecord,
             group: CustomerGroupRecord | None) -> bool:
    return EDIT in permissions or (
        EDIT_OWN in permissions and manager_of(customer, group) == user_id)


@dataclass(frozen=True)
class Changes:
    """An edit, made in one transaction by CustomerService.update_customer."""

    fields: Mapping[str, Any]  # its keyword arguments for the customer's own fields
    add_phones: Sequence[tuple[str, str | None]]  # (number as written, label)
    remove_phones: Sequence[str]  # numbers as written


class NotAllowed(Exception):
    """A change the caller may not make; ``message_key`` says which."""

    def __init__(self, message_key: str) -> None:
        super().__init__(message_key)
        self.message_key = message_key


# Fields only customers.edit changes, and what refuses anyone else.
EDITORS_ONLY: Final = {"vip_level": "customers.vip_needs_edit",
                       "account_manager_id": "customers.manager_needs_edit"}
def vip_level(value: object, levels: VipLevels) -> int:
    """A VIP level's rank: a level name (金卡), a whole number 0 to 99, or its digits."""
    try:
        if not isinstance(value, int | str):
            raise VipLevelError(value, levels)
        return levels.rank(value)
    except VipLevelError as error:
        raise BadInput.of("customers.bad_vip_level", value=error.value,
                          names="、".join(levels.names), max=MAX_VIP_LEVEL) from None


def reason(request: Request, error: Exception) -> str:
    """Why an edit was refused, in the caller's language where the catalogue has it."""
    if isinstance(error, PhoneTaken):
        return translate(language_of(request), "customers.phone_taken", number=error.number,
                         name=error.owner_name, id=error.owner_id)
    return inputs.reason(request, error)


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
        levels = self.s.customers.vip_levels
        return {
            **summary_json(customer, group, levels, manager),
            "custom_fields": dict(customer.custom_fields),
            "external_key": customer.external_key,
            "group": None if group is None else {
                "id": group.id, "code": group.code, "name": group.name,
                "vip_level": group.vip_level, "vip_level_name": levels.name(group.vip_level)},
            "contacts": [contact_json(entry) for entry in contacts],
            "can_edit": may_edit(request.state.permissions, request.state.user.id,
                                 customer, group),
            "created_at": timestamp(customer.created_at),
            "updated_at": timestamp(customer.updated_at),
        }

    async def _search(self, request: Request, query: str, offset: int, limit: int,
                      mine: bool) -> tuple[CustomerPage, list[dict[str, Any]]]:
        """A page of customers (with ``mine``, only the caller's own), as JSON."""
        page = await self.s.customers.search(
            query, offset=offset, limit=limit,
            manager_id=request.state.user.id if mine else None)
        managers = {user.id: user for user in await self.s.users.list_users()} \
            if page.customers else {}
        shown = []
        for customer in page.customers:
            group = page.group_of(customer)
            manager_id = manager_of(customer, group)
            shown.append(summary_json(customer, group, self.s.customers.vip_levels,
                                      None if manager_id is None else managers.get(manager_id)))
        return page, shown

    # -- API ---------------------------------------------------------------------------------

    async def api_search(self, request: Request) -> Response:
        """Search customers by name or by a number written in any format (paged);
        ``?mine=1``: only the customers the caller is account manager of (我的客户)."""
        try:
            offset = query_int(request, "offset", 0, 0, 10**9)
            limit = query_int(request, "limit", PAGE_SIZE, 1, MAX_API_PAGE_SIZE)
            page, shown = await self._search(request, request.query_params.get("q", ""),
                                             offset, limit, mine_flag(request))
        except BadInput as error:
            return invalid(reason(request, error))
        return JSONResponse({"customers": shown, "total": page.total, "offset": page.offset,
                             "limit": page.limit})

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
            self._check_may_change(request, customer, changes)
            updated = await self._apply(customer, changes)
        except NotAllowed as refused:
            return refusal(request, 403, "forbidden", refused.message_key)
        except (BadInput, CustomerError) as error:
            return invalid(reason(request, error))
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
            return invalid(reason(request, error))
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
        try:
            mine = mine_flag(request)
        except BadInput:
            mine = False
        page, shown = await self._search(request, query, (page_number - 1) * PAGE_SIZE,
                                         PAGE_SIZE, mine)
        pages = max(1, -(-page.total // PAGE_SIZE))
        return render(request, "customers/list.html", {
            "query": query, "page": page, "customers": shown, "page_number": page_number,
            "pages": pages, "mine": mine,
            "offer_mine": (EDIT_OWN in request.state.permissions
                           or request.state.user.role is Role.account_manager)})

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
            self._check_may_change(request, customer, changes)
            await self._apply(customer, changes)
        except NotAllowed as refused:
            return refusal(request, 403, "forbidden", refused.message_key)
        except (BadInput, CustomerError) as error:
            return await self._edit_form(request, customer, reason(request, error), form, 400)
        flash(request, translate(language_of(request), "customers.saved"))
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
        flash(request, translate(language_of(request), "customers.contact_saved"))
        return RedirectResponse(f"/customers/{customer_id}", status_code=303)

    async def _edit_form(self, request: Request, customer: CustomerRecord, error: str | None,
                         form: Mapping[str, Any], status_code: int = 200) -> Response:
        managers = [u for u in await self.s.users.list_users()
                    if u.role is Role.account_manager or u.id == customer.account_manager_id]
        custom_text = "\n".join(f"{k}={v}" for k, v in customer.custom_fields.items())
        levels = self.s.customers.vip_levels
        choices = list(levels.ranks)
        if customer.vip_level not in dict(choices):  # a number above the names, kept
            choices.insert(0, (customer.vip_level, levels.name(customer.vip_level)))
        return render(request, "customers/edit.html", {
            "c": customer, "error": error, "form": form, "managers": managers,
            "vip_levels": choices, "own_vip_name": levels.name(customer.vip_level),
            "custom_text": form.get("custom_fields", custom_text),
            "may_edit_all": EDIT in request.state.permissions,
        }, status_code=status_code)

    # -- changes -----------------------------------------------------------------------------

    def _check_may_change(self, request: Request, customer: CustomerRecord,
                          changes: Changes) -> None:
        """Only customers.edit changes a customer's VIP level or account manager: with
        customers.edit_own, one could otherwise make one's customer win the screen pop
        of a number, or hand it to someone else."""
        if EDIT in request.state.permissions:
            return
        for name, message_key in EDITORS_ONLY.items():
            if name in changes.fields and changes.fields[name] != getattr(customer, name):
                raise NotAllowed(message_key)

    def _changes_from_json(self, body: Mapping[str, Any], customer: CustomerRecord) -> Changes:
        fields: dict[str, Any] = {}
        for name in ("name", "title"):
            if name in body:
                value = body[name]
                if not (isinstance(value, str) or (value is None and name == "title")):
                    raise BadInput(f"'{name}' must be a string")
                fields[name] = value
        if "vip_level" in body:
            fields["vip_level"] = vip_level(body["vip_level"], self.s.customers.vip_levels)
        if "account_manager_id" in body:
            fields["account_manager_id"] = (None if body["account_manager_id"] is None
                                            else id_field(body, "account_manager_id"))
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
        return Changes(fields, additions, remove)

    def _changes_from_form(self, form: FormData, customer: CustomerRecord) -> Changes:
        def text(name: str) -> str:
            value = form.get(name, "")
            return value.strip() if isinstance(value, str) else ""

        fields: dict[str, Any] = {"name": text("name"), "title": text("title") or None}
        if "vip_level" in form:  # only editors of every customer are shown the field
            fields["vip_level"] = vip_level(text("vip_level") or "0",
                                            self.s.customers.vip_levels)
        if "account_manager_id" in form:
            fields["account_manager_id"] = (id_field(form, "account_manager_id")
                                            if text("account_manager_id") else None)
        fields["custom_fields"] = _parse_custom_fields(text("custom_fields"),
                                                       customer.custom_fields)
        additions = [(text("new_phone"), text("new_phone_label") or None)] \
            if text("new_phone") else []
        removals = [v for v in form.getlist("remove_phone") if isinstance(v, str)]
        return Changes(fields, additions, removals)

    async def _apply(self, customer: CustomerRecord, changes: Changes) -> CustomerRecord:
        if not (changes.fields or changes.add_phones or changes.remove_phones):
            return customer
        return await self.s.customers.update_customer(
            customer.id, **changes.fields, add_phones=changes.add_phones,
            remove_phones=changes.remove_phones)


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
                                         "?offset=, ?limit= (at most 200), ?mine=1 (only "
                                         "the caller's own customers, 我的客户)"}}
_UPDATE_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "vip_level": {"type": ["integer", "string"], "description":
                      "a level name ([customers] vip_levels, e.g. 金卡) or its rank 0-99"},
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
        Route(f"{API}/customers/{{id:id}}", endpoint(p.api_get, VIEW), methods=["GET"]),
        Route(f"{API}/customers/{{id:id}}",
              endpoint(p.api_update, VIEW, request_body=_UPDATE_BODY), methods=["PATCH"]),
        Route(f"{API}/customers/{{id:id}}/contacts",
              endpoint(p.api_add_contact, VIEW, WRITE_CONTACTS, request_body=_CONTACT_BODY),
              methods=["POST"]),
        Route("/customers", endpoint(p.page_list, VIEW), methods=["GET"]),
        Route("/customers/{id:id}", endpoint(p.page_view, VIEW), methods=["GET"]),
        Route("/customers/{id:id}/edit", endpoint(p.page_edit, VIEW), methods=["GET"]),
        Route("/customers/{id:id}/edit", endpoint(p.page_edit_submit, VIEW),
              methods=["POST"]),
        Route("/customers/{id:id}/contacts",
              endpoint(p.page_add_contact, VIEW, WRITE_CONTACTS), methods=["POST"]),
    ]
