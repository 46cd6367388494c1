"""The switch's configuration: one TOML file, a few environment overrides, frozen values.

Every key, its default and its parser sit in one table, ``SCHEMA``; the loader walks the
file against it, so an unknown key or a value of the wrong type is reported with the file,
the section and the key, and nothing half-valid gets through. callcenter.example.toml at
the top of the repository documents every key; a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

DEFAULT_CONFIG_FILE = "callcenter.toml"  # read from the current directory when it exists
SQLITE_FILE_NAME = "callcenter.sqlite3"

# RFC 8760 §2: the digest algorithms a SIP registrar may offer.
DIGEST_ALGORITHMS = ("SHA-256", "SHA-512-256", "MD5")

GATEWAY_TRANSPORTS = ("udp", "tcp")
RING_STRATEGIES = ("simultaneous", "sequential")
# A route's recording: from the first answer on; not at all; only once asked
# (Call.start_recording, by an application or the agent).
RECORDING_POLICIES = ("always", "never", "on_demand")
# Application -> the route keys that carry its parameters (all required). IVR and
# queues join this table in later issues.
APPLICATIONS: dict[str, tuple[str, ...]] = {"prompt": ("prompt",)}
# What the dialplan does with a call no route matches.
DIALPLAN_DEFAULTS = ("reject",)
# Internal extensions: 2 to 8 digits (a registered user's number).
EXTENSION_RE = re.compile(r"[0-9]{2,8}")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file (or variable) and key."""


class HostPort(NamedTuple):
    """A listening address; a plain (host, port) tuple for asyncio, IPv6 host unbracketed."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SipAuthConfig:
    algorithms: tuple[str, ...]  # offered in this order, one challenge header each
    nonce_ttl_s: int


@dataclass(frozen=True)
class SipBansConfig:
    max_failures: int  # failed authentications from one source address ...
    window_s: int  # ... within this many seconds ...
    ban_s: int  # ... ban it for this long
    whitelist: tuple[IpNetwork, ...]  # never banned


@dataclass(frozen=True)
class SipConfig:
    listen: tuple[HostPort, ...]  # UDP and TCP on each address
    realm: str
    user_agent: str
    max_message_bytes: int
    max_tcp_connections: int
    min_expires_s: int
    max_expires_s: int
    default_expires_s: int
    auth: SipAuthConfig
    bans: SipBansConfig


@dataclass(frozen=True)
class RtpConfig:
    ports: tuple[int, int]  # (lo, hi) inclusive; lo even: RTP on even ports, RTCP on odd
    wakeup_window_us: int  # MediaEngine's coalescing window; 0: no added delay
    relatch_silence_s: float  # silence before another source may take over a leg


@dataclass(frozen=True)
class CallsConfig:
    ring_timeout_s: float  # a dialled phone or number that rings this long is given up
    max_duration_s: float  # an answered call is cut after this; 0: no limit
    session_expires_s: int  # RFC 4028 session timer interval; 0: no session timers
    min_se_s: int  # the shortest session interval we accept (Min-SE)
    drain_timeout_s: float  # on SIGTERM, wait this long for calls to end by themselves


@dataclass(frozen=True)
class MediaConfig:
    music_on_hold: str  # a WAV file; empty: the built-in tune in <data dir>/prompts


@dataclass(frozen=True)
class RecordingConfig:
    enabled: bool  # record every call from its first answer (stereo WAV under
    # <data dir>/recordings) unless its route says otherwise; false: only routes
    # with recording = "always" or "on_demand" record


@dataclass(frozen=True)
class CustomersConfig:
    default_area_code: str  # places 7-8 digit local numbers ("755"); "" refuses them
    vip_levels: tuple[str, ...]  # VIP level names, highest first (apps.VipLevels ranks them)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str  # never empty: the SQLite default is filled in


@dataclass(frozen=True)
class DataConfig:
    dir: Path  # absolute


@dataclass(frozen=True)
class WebConfig:
    listen: HostPort
    session_max_age_s: int  # a login ends after this long without a request
    secure_cookies: bool  # send cookies over HTTPS only (set behind a TLS proxy)
    login_max_failures: int  # failed logins of one username from one address ...
    login_address_max_failures: int  # ... or from one address for any usernames ...
    login_window_s: int  # ... within this window lock further attempts (HTTP 429)
    login_user_delay_s: float  # a username failing from anywhere: each login waits this
    timezone: str  # IANA zone the pages show times in (stored times stay UTC)


@dataclass(frozen=True)
class GatewayConfig:
    """One ``[[gateways]]`` entry: a PRI media gateway, trusted by its source address."""

    name: str
    host: str
    port: int
    transport: str  # one of GATEWAY_TRANSPORTS
    spans: int  # E1 spans, 30 voice channels each
    keepalive_s: float  # OPTIONS probe interval while the gateway is up


@dataclass(frozen=True)
class TrunkGroupConfig:
    """One ``[[trunk_groups]]`` entry; every gateway name is a configured gateway."""

    name: str
    gateways: tuple[str, ...]


@dataclass(frozen=True)
class RouteConfig:
    """One ``[[routes]]`` entry, as written; validated: exactly one match (did, prefix or
    ``extension = true``) and at most one action (none only for ``extension = true``,
    which then routes to the dialled extension). switch.dialplan turns these into rules.
    """

    did: str | None
    prefix: str | None
    extension: bool | str | None  # True: match extensions; "1001": route to 1001
    from_trunk: str | None
    application: str | None
    prompt: str | None
    trunk_group: str | None
    strip: int
    prepend: str
    ring_group: str | None = None
    recording: str | None = None  # RECORDING_POLICIES; None: from [recording] enabled


@dataclass(frozen=True)
class RingGroupConfig:
    """One ``[[ring_groups]]`` entry: numbers rung at once or one after another."""

    name: str
    strategy: str  # one of RING_STRATEGIES
    targets: tuple[str, ...]  # extensions or numbers, routed by the [[routes]]
    ring_timeout_s: float | None  # each target's (sequential) or the group's; None: [calls]


@dataclass(frozen=True)
class DialplanConfig:
    default: str  # one of DIALPLAN_DEFAULTS
    status: int  # the SIP status of that rejection


@dataclass(frozen=True)
class Config:
    sip: SipConfig
    rtp: RtpConfig
    calls: CallsConfig
    media: MediaConfig
    recording: RecordingConfig
    customers: CustomersConfig
    database: DatabaseConfig
    data: DataConfig
    web: WebConfig
    dialplan: DialplanConfig
    gateways: tuple[GatewayConfig, ...]
    trunk_groups: tuple[TrunkGroupConfig, ...]
    routes: tuple[RouteConfig, ...]
    ring_groups: tuple[RingGroupConfig, ...] = ()


class _Invalid(Exception):
    """Raised by a value parser: ``expected`` says what the value should have been."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


# ---- value parsers: raw TOML value -> typed value, or _Invalid ------------------------

_HOST_PORT_RE = re.compile(
    r"\[(?P<v6>[^\]]+)\]:(?P<port6>\d{1,5})"  # [IPv6]:port
    r"|(?P<host>[^:\[\]\s]+):(?P<port>\d{1,5})"  # IPv4 or name:port
)
_PORT_RANGE_RE = re.compile(r"(\d{1,5})-(\d{1,5})")


def _host_port(raw: object) -> HostPort:
    expected = 'expected "host:port"'
    match = _HOST_PORT_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise _Invalid(expected)
    if match["v6"] is not None:
        try:
            host = str(ipaddress.IPv6Address(match["v6"]))
        except ValueError:
            raise _Invalid(expected + ' (IPv6 as "[::1]:5060")') from None
        port = int(match["port6"])
    else:
        host, port = match["host"], int(match["port"])
    if port > 65535:
        raise _Invalid(expected + " with a port from 0 to 65535")
    return HostPort(host, port)


def _listen_list(raw: object) -> tuple[HostPort, ...]:
    if not isinstance(raw, list):
        return (_host_port(raw),)
    if not raw:
        raise _Invalid('expected at least one "host:port"')
    return tuple(_host_port(item) for item in raw)


def _text(raw: object) -> str:
    if not isinstance(raw, str):
        raise _Invalid("expected a string")
    return raw


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("expected a non-empty string")
    return raw


def _positive_int(raw: object) -> int:
    # bool is an int in Python but `true` is no number in TOML.
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise _Invalid("expected a positive integer")
    return raw


def _algorithms(raw: object) -> tuple[str, ...]:
    choices = ", ".join(f'"{name}"' for name in DIGEST_ALGORITHMS)
    if (
        not isinstance(raw, list)
        or not raw
        or any(item not in DIGEST_ALGORITHMS for item in raw)
        or len(set(raw)) != len(raw)
    ):
        raise _Invalid(f"expected a non-empty list of distinct names from {choices}")
    return tuple(raw)


def _networks(raw: object) -> tuple[IpNetwork, ...]:
    expected = 'expected a list of addresses or networks such as "10.0.0.0/8"'
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise _Invalid(expected)
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in raw)
    except ValueError:
        raise _Invalid(expected) from None


def _port_range(raw: object) -> tuple[int, int]:
    match = _PORT_RANGE_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise _Invalid('expected "lo-hi" such as "20000-29999"')
    lo, hi = int(match[1]), int(match[2])
    if not 1024 <= lo < hi <= 65535:
        raise _Invalid('expected "lo-hi" with 1024 <= lo < hi <= 65535')
    if lo % 2:
        raise _Invalid('expected "lo-hi" with an even lo (RTP takes even ports, RTCP odd)')
    return lo, hi


def _non_negative_int(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise _Invalid("expected a non-negative integer")
    return raw


def _wakeup_window_us(raw: object) -> int:
    # MediaEngine's own bound: beyond 10 ms the wait would outlast a 20 ms packet's slack.
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 10000:
        raise _Invalid("expected an integer from 0 to 10000")
    return raw


def _seconds(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1e9:
        raise _Invalid("expected a non-negative number of seconds")
    return float(raw)


def _login_delay_s(raw: object) -> float:
    # A delayed login holds its request open: past half a minute browsers and proxies
    # give up, and the owner would be as locked out as before.
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 30:
        raise _Invalid("expected a number of seconds from 0 to 30")
    return float(raw)


_TIMEZONE_EXPECTED = 'expected an IANA time zone name such as "Asia/Shanghai"'


def _timezone(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise _Invalid(_TIMEZONE_EXPECTED)
    try:
        zoneinfo.ZoneInfo(raw)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _Invalid(_TIMEZONE_EXPECTED) from None
    return raw


def _positive_seconds(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise _Invalid("expected a positive number of seconds")
    return float(raw)


def _area_code(raw: object) -> str:
    # A Chinese area code without or with its trunk prefix: 10, 755, 0755, 0851.
    if not isinstance(raw, str) or (raw and re.fullmatch(r"0?[1-9][0-9]{1,3}", raw) is None):
        raise _Invalid('expected an area code such as "755" or "0755", or ""')
    return raw.removeprefix("0")


_LEVEL_AS_NUMBER = re.compile(r"(?:vip|v)?\s*[0-9]+\s*级?", re.IGNORECASE)
_VIP_LEVELS_EXPECTED = ('expected a list of distinct level names, highest first, such as '
                        '["钻石卡", "金卡", "银卡", "普通"]')


def _vip_levels(raw: object) -> tuple[str, ...]:
    # The lowest name is rank 0 in the database; a name that reads as a number ("3",
    # "VIP2") could not be told from a rank, and at most 100 names fit ranks 0 to 99.
    if not isinstance(raw, list) or not 1 <= len(raw) <= 100:
        raise _Invalid(_VIP_LEVELS_EXPECTED)
    names = [item.strip() if isinstance(item, str) else "" for item in raw]
    if (not all(0 < len(name) <= 32 and not _LEVEL_AS_NUMBER.fullmatch(name)
                for name in names)
            or len({name.casefold() for name in names}) != len(names)):
        raise _Invalid(_VIP_LEVELS_EXPECTED + " (1 to 32 characters each, not a number)")
    return tuple(names)


def _bool(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _Invalid("expected true or false")
    return raw


def _min_se_s(raw: object) -> int:
    # RFC 4028 §4: Min-SE is never below 90 seconds.
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 90:
        raise _Invalid("expected an integer of at least 90 (RFC 4028)")
    return raw


def _session_expires_s(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or (raw != 0 and raw < 90):
        raise _Invalid("expected 0 (off) or an integer of at least 90 (RFC 4028)")
    return raw


def _port(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 65535:
        raise _Invalid("expected a port from 1 to 65535")
    return raw


def _choice(choices: tuple[str, ...]) -> Callable[[object], str]:
    def parse(raw: object) -> str:
        if raw not in choices:
            raise _Invalid("expected one of " + ", ".join(f'"{name}"' for name in choices))
        return str(raw)

    return parse


def _names(raw: object) -> tuple[str, ...]:
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(item, str) and item.strip() for item in raw)
        or len(set(raw)) != len(raw)
    ):
        raise _Invalid("expected a non-empty list of distinct names")
    return tuple(raw)


def _numbers(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(
            isinstance(item, str) and _NUMBER_RE.fullmatch(item) for item in raw):
        raise _Invalid('expected a non-empty list of numbers such as ["1001", "013800138000"]')
    return tuple(raw)


_NUMBER_RE = re.compile(r"\+?[0-9]+")
_DIGITS_RE = re.compile(r"[0-9*#+]*")


def _number(raw: object) -> str:
    if not isinstance(raw, str) or not _NUMBER_RE.fullmatch(raw):
        raise _Invalid('expected a number such as "4008001234" (digits, optionally after +)')
    return raw


def _digits(raw: object) -> str:
    if not isinstance(raw, str) or not _DIGITS_RE.fullmatch(raw):
        raise _Invalid("expected a string of 0-9, *, # and +")
    return raw


def _prefix(raw: object) -> str:
    if raw == "":
        raise _Invalid("expected a non-empty string of 0-9, *, # and +")
    return _digits(raw)


def _route_extension(raw: object) -> bool | str:
    if raw is True or (isinstance(raw, str) and EXTENSION_RE.fullmatch(raw)):
        return raw
    raise _Invalid("expected true (match extensions) or an extension of 2 to 8 digits")


def _sip_failure_status(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 400 <= raw <= 699:
        raise _Invalid("expected a SIP status from 400 to 699")
    return raw


class _Field(NamedTuple):
    parse: Callable[[object], Any]
    default: object  # as it would be written in TOML


# Section path -> key -> field. The defaults are raw TOML values and go through the same
# parsers as the file, so a default can never be something the file could not say.
SCHEMA: dict[str, dict[str, _Field]] = {
    "sip": {
        "listen": _Field(_listen_list, "127.0.0.1:5060"),
        "realm": _Field(_name, "callcenter"),
        "user_agent": _Field(_name, "callcenter"),
        "max_message_bytes": _Field(_positive_int, 65535),
        "max_tcp_connections": _Field(_positive_int, 1024),
        "min_expires_s": _Field(_positive_int, 60),
        "max_expires_s": _Field(_positive_int, 3600),
        "default_expires_s": _Field(_positive_int, 3600),
    },
    "sip.auth": {
        "algorithms": _Field(_algorithms, ["SHA-256", "MD5"]),
        "nonce_ttl_s": _Field(_positive_int, 300),
    },
    "sip.bans": {
        "max_failures": _Field(_positive_int, 5),
        "window_s": _Field(_positive_int, 60),
        "ban_s": _Field(_positive_int, 600),
        "whitelist": _Field(_networks, []),
    },
    "rtp": {
        "ports": _Field(_port_range, "20000-29999"),
        "wakeup_window_us": _Field(_wakeup_window_us, 0),
        "relatch_silence_s": _Field(_seconds, 2.0),
    },
    "calls": {
        "ring_timeout_s": _Field(_positive_seconds, 60),
        "max_duration_s": _Field(_seconds, 14400),
        "session_expires_s": _Field(_session_expires_s, 1800),
        "min_se_s": _Field(_min_se_s, 90),
        "drain_timeout_s": _Field(_seconds, 300),
    },
    "media": {"music_on_hold": _Field(_text, "")},
    "recording": {"enabled": _Field(_bool, True)},
    "customers": {
        "default_area_code": _Field(_area_code, ""),
        "vip_levels": _Field(_vip_levels, ["钻石卡", "金卡", "银卡", "普通"]),
    },
    "database": {"url": _Field(_text, "")},
    "data": {"dir": _Field(_name, "var")},
    "web": {
        "listen": _Field(_host_port, "127.0.0.1:8080"),
        "session_max_age_s": _Field(_positive_int, 43200),
        "secure_cookies": _Field(_bool, False),
        "login_max_failures": _Field(_positive_int, 5),
        "login_address_max_failures": _Field(_positive_int, 20),
        "login_window_s": _Field(_positive_int, 300),
        "login_user_delay_s": _Field(_login_delay_s, 2.0),
        "timezone": _Field(_timezone, "Asia/Shanghai"),
    },
    "dialplan": {
        "default": _Field(_choice(DIALPLAN_DEFAULTS), "reject"),
        "status": _Field(_sip_failure_status, 404),
    },
}

REQUIRED = object()  # a TABLE_ARRAYS default: the key must be given

# Arrays of tables ([[name]]), each empty by default: name -> key -> field. A default of
# None means "absent" (TOML has no null) and is kept as None without parsing.
TABLE_ARRAYS: dict[str, dict[str, _Field]] = {
    "gateways": {
        "name": _Field(_name, REQUIRED),
        "host": _Field(_name, REQUIRED),
        "port": _Field(_port, 5060),
        "transport": _Field(_choice(GATEWAY_TRANSPORTS), "udp"),
        "spans": _Field(_positive_int, 1),
        "keepalive_s": _Field(_positive_seconds, 30),
    },
    "trunk_groups": {
        "name": _Field(_name, REQUIRED),
        "gateways": _Field(_names, REQUIRED),
    },
    "routes": {
        "did": _Field(_number, None),
        "prefix": _Field(_prefix, None),
        "extension": _Field(_route_extension, None),
        "from_trunk": _Field(_name, None),
        "application": _Field(_choice(tuple(APPLICATIONS)), None),
        "prompt": _Field(_name, None),
        "trunk_group": _Field(_name, None),
        "strip": _Field(_non_negative_int, 0),
        "prepend": _Field(_digits, ""),
        "ring_group": _Field(_name, None),
        "recording": _Field(_choice(RECORDING_POLICIES), None),
    },
    "ring_groups": {
        "name": _Field(_name, REQUIRED),
        "strategy": _Field(_choice(RING_STRATEGIES), "simultaneous"),
        "targets": _Field(_numbers, REQUIRED),
        "ring_timeout_s": _Field(_positive_seconds, None),
    },
}

# Environment variable -> (section, key, how to turn its text into a raw TOML value).
ENVIRONMENT: dict[str, tuple[str, str, Callable[[str], object]]] = {
    # Several addresses separated by commas: "127.0.0.1:5060,[::1]:5060".
    "CALLCENTER_SIP_LISTEN": ("sip", "listen", lambda text: text.split(",")),
    "CALLCENTER_DB_URL": ("database", "url", str),
    "CALLCENTER_DATA_DIR": ("data", "dir", str),
    "CALLCENTER_WEB_LISTEN": ("web", "listen", str),
}


def _show(value: object) -> str:
    """A value as it would look in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _subsections(path: str) -> set[str]:
    prefix = f"{path}." if path else ""
    return {
        section[len(prefix) :]
        for section in SCHEMA
        if section.startswith(prefix) and "." not in section[len(prefix) :]
    }


def _check_keys(table: Mapping[str, object], path: str, source: str) -> None:
    """Reject what SCHEMA does not know, depth first, naming the first offender."""
    where = f"[{path}] " if path else ""
    subsections = _subsections(path)
    for key, value in table.items():
        child = f"{path}.{key}" if path else key
        if not path and key in TABLE_ARRAYS:
            continue  # checked entry by entry in _table_array
        if key in subsections:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{child}]: expected a table, got {_show(value)}")
            _check_keys(value, child, source)
        elif key not in SCHEMA.get(path, {}):
            what = "unknown key" if path or not isinstance(value, dict) else "unknown section"
            name = f"[{child}]" if what == "unknown section" else key
            raise ConfigError(f"{source}: {where}{name}: {what}")


def _raw_value(document: Mapping[str, Any], section: str, key: str) -> object:
    table: Mapping[str, Any] = document
    for part in section.split("."):
        table = table.get(part, {})
    return table.get(key, SCHEMA[section][key].default)


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def load_config(path: str | None = None, environ: Mapping[str, str] = os.environ) -> Config:
    """Load ``path`` (default: ./callcenter.toml if it exists, else built-in defaults),
    apply the CALLCENTER_* environment overrides, and validate everything."""
    if path is None and os.path.exists(DEFAULT_CONFIG_FILE):
        path = DEFAULT_CONFIG_FILE
    document = _read(path) if path is not None else {}
    source = path if path is not None else "defaults"
    _check_keys(document, "", source)

    values: dict[tuple[str, str], object] = {}
    for section, fields in SCHEMA.items():
        for key, field in fields.items():
            raw = _raw_value(document, section, key)
            try:
                values[section, key] = field.parse(raw)
            except _Invalid as error:
                raise ConfigError(
                    f"{source}: [{section}] {key}: {error.expected}, got {_show(raw)}"
                ) from None
    for variable, (section, key, convert) in ENVIRONMENT.items():
        if variable in environ:
            text = environ[variable]
            try:
                values[section, key] = SCHEMA[section][key].parse(convert(text))
            except _Invalid as error:
                raise ConfigError(f"{variable}: {error.expected}, got {_show(text)}") from None
    arrays = {name: _table_array(document, name, source) for name in TABLE_ARRAYS}
    return _build(values, arrays, source)


def _table_array(document: Mapping[str, Any], name: str, source: str) -> list[dict[str, Any]]:
    """Each ``[[name]]`` entry parsed against TABLE_ARRAYS[name], in file order."""
    raw = document.get(name, [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: [[{name}]]: expected an array of tables, got {_show(raw)}")
    fields = TABLE_ARRAYS[name]
    entries = []
    for number, entry in enumerate(raw, start=1):
        where = f"{source}: [[{name}]] #{number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a table, got {_show(entry)}")
        for key in entry:
            if key not in fields:
                raise ConfigError(f"{where} {key}: unknown key")
        parsed: dict[str, Any] = {}
        for key, field in fields.items():
            if key not in entry:
                if field.default is REQUIRED:
                    raise ConfigError(f"{where}: {key} is required")
                parsed[key] = None if field.default is None else field.parse(field.default)
                continue
            try:
                parsed[key] = field.parse(entry[key])
            except _Invalid as error:
                raise ConfigError(
                    f"{where} {key}: {error.expected}, got {_show(entry[key])}"
                ) from None
        entries.append(parsed)
    return entries


def _unique_names(entries: list[dict[str, Any]], section: str, source: str) -> None:
    first: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        if entry["name"] in first:
            raise ConfigError(
                f"{source}: [[{section}]] #{number}: name {_show(entry['name'])} is already"
                f" used by #{first[entry['name']]}"
            )
        first[entry["name"]] = number


_MATCH_KEYS = ("did", "prefix", "extension")
_ACTION_KEYS = ("extension", "application", "trunk_group", "ring_group")
_TRUNK_ONLY_DEFAULTS = {"strip": 0, "prepend": ""}


def _check_route(route: dict[str, Any], where: str, trunk_groups: set[str],
                 ring_groups: set[str]) -> None:
    """One match, one action (implied for ``extension = true``), names that exist."""
    # `extension` is a match when true and an action when it names an extension.
    matches = [key for key in _MATCH_KEYS if route[key] is not None]
    matches = [key for key in matches if key != "extension" or route[key] is True]
    actions = [key for key in _ACTION_KEYS if isinstance(route[key], str)]
    if not matches:
        raise ConfigError(f"{where}: no match: give one of did, prefix, extension = true")
    if len(matches) > 1:
        raise ConfigError(
            f"{where}: {matches[0]} and {matches[1]} both given: a route matches on one"
        )
    if not actions and matches != ["extension"]:
        raise ConfigError(
            f'{where}: no action: give one of extension = "...", application, trunk_group,'
            " ring_group"
        )
    if len(actions) > 1:
        raise ConfigError(
            f"{where}: {actions[0]} and {actions[1]} both given: a route takes one action"
        )
    for key in ("from_trunk", "trunk_group"):
        if route[key] is not None and route[key] not in trunk_groups:
            raise ConfigError(f"{where}: {key} {_show(route[key])} is not defined")
    if route["ring_group"] is not None and route["ring_group"] not in ring_groups:
        raise ConfigError(f"{where}: ring_group {_show(route['ring_group'])} is not defined")
    wanted = APPLICATIONS.get(route["application"], ())
    for parameter in sorted({p for params in APPLICATIONS.values() for p in params}):
        if parameter in wanted and route[parameter] is None:
            raise ConfigError(
                f"{where}: application {_show(route['application'])} needs {parameter}"
            )
        if parameter not in wanted and route[parameter] is not None:
            takers = " or ".join(
                _show(app) for app, params in APPLICATIONS.items() if parameter in params
            )
            raise ConfigError(f"{where}: {parameter} applies only to application = {takers}")
    if route["trunk_group"] is None:
        for key, default in _TRUNK_ONLY_DEFAULTS.items():
            if route[key] != default:
                raise ConfigError(f"{where}: {key} applies only to a trunk_group route")


def _build(
    values: Mapping[tuple[str, str], Any],
    arrays: Mapping[str, list[dict[str, Any]]],
    source: str,
) -> Config:
    def section(name: str) -> dict[str, Any]:
        return {key: values[name, key] for key in SCHEMA[name]}

    sip = section("sip")
    lo, default, hi = sip["min_expires_s"], sip["default_expires_s"], sip["max_expires_s"]
    if lo > hi:
        raise ConfigError(
            f"{source}: [sip] min_expires_s: must not exceed max_expires_s ({hi}), got {lo}"
        )
    if not lo <= default <= hi:
        raise ConfigError(
            f"{source}: [sip] default_expires_s: must lie between min_expires_s ({lo}) "
            f"and max_expires_s ({hi}), got {default}"
        )

    gateways, groups, routes = arrays["gateways"], arrays["trunk_groups"], arrays["routes"]
    _unique_names(gateways, "gateways", source)
    _unique_names(groups, "trunk_groups", source)
    gateway_names = {gateway["name"] for gateway in gateways}
    for number, group in enumerate(groups, start=1):
        for name in group["gateways"]:
            if name not in gateway_names:
                raise ConfigError(
                    f"{source}: [[trunk_groups]] #{number}: gateway {_show(name)} is not defined"
                )
    group_names = {group["name"] for group in groups}
    _unique_names(arrays["ring_groups"], "ring_groups", source)
    ring_names = {group["name"] for group in arrays["ring_groups"]}
    for number, route in enumerate(routes, start=1):
        _check_route(route, f"{source}: [[routes]] #{number}", group_names, ring_names)

    data_dir = Path.cwd() / values["data", "dir"]  # an absolute dir replaces the cwd
    url = values["database", "url"] or f"sqlite+aiosqlite:///{data_dir / SQLITE_FILE_NAME}"
    return Config(
        sip=SipConfig(
            **sip,
            auth=SipAuthConfig(**section("sip.auth")),
            bans=SipBansConfig(**section("sip.bans")),
        ),
        rtp=RtpConfig(**section("rtp")),
        calls=CallsConfig(**section("calls")),
        media=MediaConfig(**section("media")),
        recording=RecordingConfig(**section("recording")),
        customers=CustomersConfig(**section("customers")),
        database=DatabaseConfig(url=url),
        data=DataConfig(dir=data_dir),
        web=WebConfig(**section("web")),
        dialplan=DialplanConfig(**section("dialplan")),
        gateways=tuple(GatewayConfig(**gateway) for gateway in gateways),
        trunk_groups=tuple(TrunkGroupConfig(**group) for group in groups),
        routes=tuple(RouteConfig(**route) for route in routes),
        ring_groups=tuple(RingGroupConfig(**group) for group in arrays["ring_groups"]),
    )
