"""Who is asking and what they may do: the session's user, login and logout, and the
``requires``/``public`` wrappers that every route's endpoint goes through.

The session cookie (signed) holds a random session id and the CSRF token, nothing about
the user: the user comes from the session's row on the server (``SessionStore.resume``)
on every request, so ending the row ends the session at once.

An API request (HTTP or WebSocket) may instead carry ``Authorization: Bearer <token>``
(apps.api_tokens): then the token alone says who is asking, with that user's permissions
now. Such a request never falls back to the cookie, even when it carries one: a token
that is unknown, revoked or whose user is disabled is refused with 401 (the same answer
for each). It needs no CSRF token and its socket no Origin, since a browser cannot be
made to send the header by another site. On pages the header is not accepted (and the
cookie is not used either).

create_app refuses to build an app with an endpoint that went through neither, so a new
route cannot forget its permission check.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.websockets import WebSocket

from apps import UserRecord
from web import csrf
from web.i18n import translate
from web.services import WebServices
from web.templating import language_of, render
from web.throttle import LoginThrottle

SESSION_ID_KEY = "sid"  # the cookie session's one key besides csrf.SESSION_KEY
API_PREFIX = "/api/"
BEARER_SCHEME = "bearer"  # RFC 6750 §2.1; auth schemes are case-insensitive (RFC 9110 §11.1)
MAX_USERNAME_LENGTH = 64  # apps.models.User.username
WS_POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1: the close code for a refused socket

E = TypeVar("E", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class WebUser:
    """The logged-in user, as the database has them at this request."""

    id: int
    username: str
    name: str | None
    role: str
    extension: str | None

    @classmethod
    def from_record(cls, record: UserRecord) -> WebUser:
        return cls(record.id, record.username, record.name, record.role.value,
                   record.extension)



@dataclass(frozen=True)
class Access:
    """An endpoint's rule: public, or logged in and holding every capability."""

    public: bool
    capabilities: frozenset[str]


ACCESS_ATTRIBUTE = "web_access"


def access_of(endpoint: object) -> Access | None:
    access = getattr(endpoint, ACCESS_ATTRIBUTE, None)
    return access if isinstance(access, Access) else None


def services_of(conn: HTTPConnection) -> WebServices:
    services: WebServices = conn.app.state.services
    return services


def current_user(conn: HTTPConnection) -> WebUser | None:
    """The logged-in user, once ``requires`` or ``public`` let the request in."""
    user: WebUser | None = getattr(conn.state, "user", None)
    return user


def session_id_of(conn: HTTPConnection) -> str | None:
    """The session id the cookie carries (a cookie from before server-side sessions
    carries none); None for a request that carries a bearer token, whose cookie is not
    used."""
    if bearer_token(conn) is not None:
        return None
    session_id = conn.session.get(SESSION_ID_KEY)
    return session_id if isinstance(session_id, str) else None


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header ("" when the header names the
    scheme but no token); None when the request has no such header. Other schemes (a
    proxy's Basic login in front of the pages) are not ours and are left alone."""
    scheme, _, token = conn.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == BEARER_SCHEME else None


def client_ip(conn: HTTPConnection) -> str | None:
    return conn.client.host if conn.client is not None else None


def is_api(conn: HTTPConnection) -> bool:
    return conn.url.path.startswith(API_PREFIX)


def requires(*capabilities: str) -> Callable[[E], E]:
    """Wrap an HTTP or WebSocket endpoint: the caller must be logged in and hold every
    capability named (none: any logged-in user), by session cookie or, on the API, by
    bearer token. State-changing HTTP requests with the cookie must also carry the
    session's CSRF token. Refusals: 401 JSON (API) or a redirect to /login
    (page) when not logged in, 403 when a capability or the token is missing; a refused
    WebSocket is closed before it opens. The endpoint finds ``state.user`` (WebUser) and
    ``state.permissions`` on its request."""
    return _guard(Access(public=False, capabilities=frozenset(capabilities)))


def public(endpoint: E) -> E:
    """Wrap an endpoint anyone may call (login, health); CSRF is still checked."""
    return _guard(Access(public=True, capabilities=frozenset()))(endpoint)


def _guard(access: Access) -> Callable[[E], E]:
    def decorate(endpoint: E) -> E:
        @functools.wraps(endpoint)
        async def guarded(conn: HTTPConnection) -> Any:
            if isinstance(conn, WebSocket):
                if await _admit_socket(conn, access):
                    return await endpoint(conn)
                await conn.close(code=WS_POLICY_VIOLATION)
                return None
            assert isinstance(conn, Request)
            refusal = await _check_request(conn, access)
            return refusal if refusal is not None else await endpoint(conn)

        setattr(guarded, ACCESS_ATTRIBUTE, access)
        return cast(E, guarded)

    return decorate


async def _load_user(conn: HTTPConnection, access: Access) -> tuple[bool, bool]:
    """(logged in, permitted); sets state.user and state.permissions."""
    conn.state.user = None
    conn.state.permissions = frozenset()
    token = bearer_token(conn)
    if token is not None:
        # Only the token counts, on the API only: never the cookie beside it.
        record = await services_of(conn).tokens.authenticate(token) if is_api(conn) else None
        if record is None:
            return False, access.public
    else:
        session_id = session_id_of(conn)
        if session_id is None:
            return False, access.public
        found = await services_of(conn).sessions.resume(session_id)
        if found is None:
            # Ended (logout, a password or role change, a disabled account, "log out
            # everywhere") or idle too long: the cookie forgets it, and its CSRF token too.
            conn.session.pop(SESSION_ID_KEY, None)
            csrf.rotate(conn.session)
            return False, access.public
        record = found.user
    user = conn.state.user = WebUser.from_record(record)
    permissions = frozenset(await services_of(conn).permissions_of(user.id))
    conn.state.permissions = permissions
    return True, access.capabilities <= permissions


async def identify(request: Request) -> WebUser | None:
    """Who is asking, for a page that is answered outside any endpoint (the 404 page):
    sets ``state.user`` and ``state.permissions`` as ``requires`` does, refusing nothing."""
    await _load_user(request, Access(public=True, capabilities=frozenset()))
    return current_user(request)


async def _check_request(request: Request, access: Access) -> Response | None:
    logged_in, permitted = await _load_user(request, access)
    if not logged_in and not access.public:
        if is_api(request) and bearer_token(request) is not None:
            # RFC 6750 §3.1: unknown, revoked and a disabled user's tokens alike.
            return error_response(request, 401, "unauthenticated",
                                  {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if is_api(request):
            return error_response(request, 401, "unauthenticated")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if not permitted:
        return error_response(request, 403, "forbidden")
    if not (logged_in and bearer_token(request) is not None) and (
            not await csrf.request_is_trusted(request)):
        return error_response(request, 403, "csrf")
    return None


async def _admit_socket(websocket: WebSocket, access: Access) -> bool:
    cookie_socket = bearer_token(websocket) is None
    if cookie_socket and not same_origin(websocket.headers.get("origin"),
                                         websocket.headers.get("host")):
        return False
    logged_in, permitted = await _load_user(websocket, access)
    return (logged_in or access.public) and permitted


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's WebSocket says which page opened it; only our own pages may (a
    cross-site page would otherwise ride on the user's cookie)."""
    if not origin or not host:
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


_ERROR_MESSAGE_KEYS = {
    "unauthenticated": "error.unauthenticated",
    "forbidden": "error.forbidden",
    "csrf": "error.csrf",
    "bad_request": "error.bad_request",
    "not_found": "error.not_found",
    "internal": "error.internal",
    "bad_credentials": "login.failed",
    "throttled": "login.throttled",
}


def error_response(
    request: Request, status_code: int, error: str, headers: dict[str, str] | None = None,
    **params: object,
) -> Response:
    """A refusal in the caller's language: JSON ``{"error", "message"}`` for the API, an
    error page otherwise."""
    message = translate(language_of(request), _ERROR_MESSAGE_KEYS[error], **params)
    if is_api(request):
        return JSONResponse({"error": error, "message": message}, status_code=status_code,
                            headers=headers)
    response = render(request, "error.html", {"message": message}, status_code=status_code)
    response.headers.update(headers or {})
    return response


@dataclass(frozen=True)
class LoginOutcome:
    user: WebUser | None  # None: refused
    retry_after_s: int | None = None  # set when refused for too many failures


async def log_in(request: Request, username: str, password: str) -> LoginOutcome:
    """Check a login against the throttle and the password; on success start a fresh
    session. An unknown user and a wrong password are refused alike (same answer, same
    time spent, same throttle counting) so usernames cannot be probed."""
    services = services_of(request)
    throttle: LoginThrottle = request.app.state.throttle
    source_ip = client_ip(request)
    admission = throttle.admit(source_ip, username, services.clock())
    if admission.retry_after_s is not None:
        await _audit(services, "login_failed", None, username, source_ip, reason="throttled")
        return LoginOutcome(None, admission.retry_after_s)
    if admission.delay_s > 0:
        await services.sleep(admission.delay_s)
    record = await services.users.verify_web_password(username, password)
    if record is None:
        throttle.record_failure(source_ip, username, services.clock())
        await _audit(services, "login_failed", None, username, source_ip,
                     reason="bad_credentials")
        return LoginOutcome(None)
    throttle.record_success(source_ip, username)
    user = WebUser.from_record(record)
    await _forget_session(request)  # a session of whoever was logged in here before
    request.session[SESSION_ID_KEY] = await services.sessions.start(
        user.id, source_ip=source_ip, user_agent=request.headers.get("user-agent"))
    csrf.rotate(request.session)
    await _audit(services, "login", user.id, user.username, source_ip)
    return LoginOutcome(user)


async def log_out(request: Request) -> None:
    """End this session (a bearer request has none: nothing is ended)."""
    user = current_user(request)
    if bearer_token(request) is not None:
        return
    await _forget_session(request)
    if user is not None:
        services_of(request).hub.sessions_ended(user.id)
        await _audit(services_of(request), "logout", user.id, user.username,
                     client_ip(request))


async def log_out_everywhere(request: Request) -> int:
    """End every session of the logged-in user, this one included; returns how many."""
    user: WebUser = request.state.user
    services = services_of(request)
    ended = await services.sessions.end_all(user.id)
    await _forget_session(request)
    services.hub.sessions_ended(user.id)
    await _audit(services, "logout_all", user.id, user.username, client_ip(request),
                 sessions=ended)
    return ended


async def _forget_session(request: Request) -> None:
    """End the cookie's session on the server, empty the cookie and give it a new CSRF
    token (a token seen before does not carry over). A bearer request's cookie is left
    alone."""
    if bearer_token(request) is not None:
        return
    session_id = session_id_of(request)
    if session_id is not None:
        await services_of(request).sessions.end(session_id)
    request.session.clear()
    csrf.rotate(request.session)


async def _audit(services: WebServices, action: str, actor_id: int | None, actor: str,
                 source_ip: str | None, **detail: object) -> None:
    # Cut to the username column's length: a failed login may name anything.
    name = actor[:MAX_USERNAME_LENGTH]
    await services.audit.record(action, actor_id=actor_id, actor=name, target=name,
                                detail=detail, source_ip=source_ip)
