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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

DEFAULT_CONFIG_FILE = "callcenter.toml"  # read from the current directory when it exists
SQLITE_FILE_NAME = "callcenter.sqlite3"

# RFC 8760 §2: the digest algorithms a SIP registrar may offer.
DIGEST_ALGORITHMS = ("SHA-256", "SHA-512-256", "MD5")

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


@dataclass(frozen=True)
class DatabaseConfig:
    url: str  # never empty: the SQLite default is filled in


@dataclass(frozen=True)
class DataConfig:
    dir: Path  # absolute


@dataclass(frozen=True)
class WebConfig:
    listen: HostPort


@dataclass(frozen=True)
class Config:
    sip: SipConfig
    rtp: RtpConfig
    database: DatabaseConfig
    data: DataConfig
    web: WebConfig


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
    "rtp": {"ports": _Field(_port_range, "20000-29999")},
    "database": {"url": _Field(_text, "")},
    "data": {"dir": _Field(_name, "var")},
    "web": {"listen": _Field(_host_port, "127.0.0.1:8080")},
}

# Environment variable -> (section, key, how to turn its text into a raw TOML value).
ENVIRONMENT: dict[str, tuple[str, str, Callable[[str], object]]] = {
    # Several addresses separated by commas: "127.0.0.1:5060,[::1]:5060".
    "CALLCENTER_SIP_LISTEN": ("sip", "listen", lambda text: text.split(",")),
    "CALLCENTER_DB_URL": ("database", "url", str),
    "CALLCENTER_DATA_DIR": ("data", "dir", str),
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
    return _build(values, source)


def _build(values: Mapping[tuple[str, str], Any], source: str) -> Config:
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

    data_dir = Path.cwd() / values["data", "dir"]  # an absolute dir replaces the cwd
    url = values["database", "url"] or f"sqlite+aiosqlite:///{data_dir / SQLITE_FILE_NAME}"
    return Config(
        sip=SipConfig(
            **sip,
            auth=SipAuthConfig(**section("sip.auth")),
            bans=SipBansConfig(**section("sip.bans")),
        ),
        rtp=RtpConfig(**section("rtp")),
        database=DatabaseConfig(url=url),
        data=DataConfig(dir=data_dir),
        web=WebConfig(**section("web")),
    )
