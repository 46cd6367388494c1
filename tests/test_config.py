"""switch.config: defaults, the example file, environment overrides, exact errors."""

import dataclasses
import ipaddress
import os
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.config import (
    SCHEMA,
    TABLE_ARRAYS,
    Config,
    ConfigError,
    GatewayConfig,
    HostPort,
    RingGroupConfig,
    RouteConfig,
    TrunkGroupConfig,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "callcenter.example.toml"


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # load_config reads ./callcenter.toml and resolves the data dir against the cwd.
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(directory: Path, text: str, name: str = "callcenter.toml") -> str:
    (directory / name).write_text(text, encoding="utf-8")
    return name


def load_text(directory: Path, text: str) -> Config:
    return load_config(write(directory, text), environ={})


def error_of(directory: Path, text: str) -> str:
    with pytest.raises(ConfigError) as excinfo:
        load_text(directory, text)
    return str(excinfo.value)


def test_defaults(empty_cwd: Path) -> None:
    config = load_config(environ={})
    assert config.sip.listen == (HostPort("127.0.0.1", 5060),)
    assert config.sip.realm == "callcenter"
    assert config.sip.user_agent == "callcenter"
    assert config.sip.max_message_bytes == 65535
    assert config.sip.max_tcp_connections == 1024
    assert (config.sip.min_expires_s, config.sip.max_expires_s) == (60, 3600)
    assert config.sip.default_expires_s == 3600
    assert config.sip.auth.algorithms == ("SHA-256", "MD5")
    assert config.sip.auth.nonce_ttl_s == 300
    bans = config.sip.bans
    assert (bans.max_failures, bans.window_s, bans.ban_s, bans.whitelist) == (5, 60, 600, ())
    assert config.rtp.ports == (20000, 29999)
    assert config.rtp.wakeup_window_us == 0
    assert config.rtp.relatch_silence_s == 2.0
    assert (config.dialplan.default, config.dialplan.status) == ("reject", 404)
    assert (config.gateways, config.trunk_groups, config.routes) == ((), (), ())
    assert config.recording.enabled is True  # every call, from its first answer
    assert config.data.dir == empty_cwd / "var"
    assert config.database.url == f"sqlite+aiosqlite:///{empty_cwd}/var/callcenter.sqlite3"
    assert config.web.listen == HostPort("127.0.0.1", 8080)
    web = config.web
    assert (web.session_max_age_s, web.secure_cookies) == (43200, False)
    assert (web.login_max_failures, web.login_window_s) == (5, 300)
    assert (web.login_address_max_failures, web.login_user_delay_s) == (20, 2.0)
    assert web.timezone == "Asia/Shanghai"  # pages show Beijing time


def test_example_file_gives_exactly_the_defaults() -> None:
    assert load_config(str(EXAMPLE), environ={}) == load_config(environ={})


def _document_shape(table: dict[str, object]) -> dict[str, object]:
    return {
        key: _document_shape(value) if isinstance(value, dict) else None
        for key, value in table.items()
    }


def test_example_names_every_setting_and_nothing_else() -> None:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert _document_shape(document) == {
        "sip": {
            **dict.fromkeys(SCHEMA["sip"]),
            "auth": dict.fromkeys(SCHEMA["sip.auth"]),
            "bans": dict.fromkeys(SCHEMA["sip.bans"]),
        },
        "rtp": dict.fromkeys(SCHEMA["rtp"]),
        "calls": dict.fromkeys(SCHEMA["calls"]),
        "media": dict.fromkeys(SCHEMA["media"]),
        "recording": dict.fromkeys(SCHEMA["recording"]),
        "customers": dict.fromkeys(SCHEMA["customers"]),
        "database": dict.fromkeys(SCHEMA["database"]),
        "data": dict.fromkeys(SCHEMA["data"]),
        "web": dict.fromkeys(SCHEMA["web"]),
        "dialplan": dict.fromkeys(SCHEMA["dialplan"]),
    }
    # ... and the dataclasses hold the same names, so operators' keys are the code's.
    # The arrays of tables are empty by default; their example is commented out.
    assert _field_names(load_config(environ={})) == {
        **_document_shape(document),
        **dict.fromkeys(TABLE_ARRAYS),
    }


def _commented_example() -> str:
    """The [[gateways]]/[[trunk_groups]]/[[routes]] example, with its "# " removed."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text.split("# ---- example\n")[1].split("# ---- end of example\n")[0]
    return "".join(line[2:] if line.startswith("# ") else "\n" for line in block.splitlines(True))


def test_commented_example_loads_and_names_every_array_key(empty_cwd: Path) -> None:
    example = _commented_example()
    document = tomllib.loads(example)
    assert set(document) == set(TABLE_ARRAYS)
    for name, fields in TABLE_ARRAYS.items():
        assert set().union(*document[name]) == set(fields), name
    config = load_text(empty_cwd, example)
    assert config.gateways == (
        GatewayConfig(name="gw1", host="192.0.2.10", port=5060, transport="udp", spans=4,
                      keepalive_s=30.0),
        GatewayConfig(name="gw2", host="192.0.2.11", port=5060, transport="udp", spans=1,
                      keepalive_s=30.0),
    )
    assert config.trunk_groups == (TrunkGroupConfig(name="pstn", gateways=("gw1", "gw2")),)
    assert [route.did or route.prefix or route.extension for route in config.routes] == [
        "4008001234",
        "4008005678",
        True,
        "0",
        "4008009999",
    ]
    assert config.ring_groups == (
        RingGroupConfig(name="sales", strategy="sequential",
                        targets=("1001", "1002", "013800138000"), ring_timeout_s=20.0),
    )
    for name, cls in [
        ("gateways", GatewayConfig),
        ("trunk_groups", TrunkGroupConfig),
        ("routes", RouteConfig),
        ("ring_groups", RingGroupConfig),
    ]:
        assert [field.name for field in dataclasses.fields(cls)] == list(TABLE_ARRAYS[name])


def test_every_array_key_has_a_comment_in_the_commented_example() -> None:
    commented: set[tuple[str, str]] = set()
    section = ""
    for line in _commented_example().splitlines():
        if line.startswith("[["):
            section = line.strip("[]")
        elif "=" in line and "#" in line.split("=", 1)[1]:
            commented.add((section, line.split("=")[0].strip()))
    assert commented == {(name, key) for name, fields in TABLE_ARRAYS.items() for key in fields}


def _field_names(value: object) -> dict[str, object]:
    return {
        field.name: (
            _field_names(getattr(value, field.name))
            if dataclasses.is_dataclass(getattr(value, field.name))
            else None
        )
        for field in dataclasses.fields(value)  # type: ignore[arg-type]
    }


def test_every_key_in_the_example_has_a_comment() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if "=" not in line or line.startswith("#"):
            continue
        block = []
        for above in reversed(lines[:number]):
            if not above.strip() or above.startswith("["):
                break
            block.append(above)
        assert any(text.startswith("#") for text in block), f"no comment above {line!r}"


def test_listen_accepts_a_list_and_ipv6(empty_cwd: Path) -> None:
    config = load_text(empty_cwd, '[sip]\nlisten = ["0.0.0.0:5060", "[::1]:5062"]\n')
    assert config.sip.listen == (HostPort("0.0.0.0", 5060), HostPort("::1", 5062))
    assert [str(address) for address in config.sip.listen] == ["0.0.0.0:5060", "[::1]:5062"]


def test_partial_file_keeps_other_defaults(empty_cwd: Path) -> None:
    config = load_text(
        empty_cwd,
        '[sip.bans]\nwhitelist = ["10.0.0.0/8", "192.0.2.7"]\n[rtp]\nports = "30000-30099"\n',
    )
    assert config.sip.bans.whitelist == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
    )
    assert config.sip.bans.max_failures == 5
    assert config.rtp.ports == (30000, 30099)
    assert config.sip.realm == "callcenter"


def test_config_file_in_current_directory_is_read(empty_cwd: Path) -> None:
    write(empty_cwd, '[sip]\nrealm = "example.com"\n')
    assert load_config(environ={}).sip.realm == "example.com"


def test_environment_overrides(empty_cwd: Path) -> None:
    write(empty_cwd, '[sip]\nlisten = "127.0.0.1:5080"\n[data]\ndir = "elsewhere"\n')
    environ = {
        "CALLCENTER_SIP_LISTEN": "127.0.0.1:5070,[::1]:5070",
        "CALLCENTER_DATA_DIR": "data",
    }
    config = load_config(environ=environ)
    assert config.sip.listen == (HostPort("127.0.0.1", 5070), HostPort("::1", 5070))
    assert config.data.dir == empty_cwd / "data"
    assert config.database.url == f"sqlite+aiosqlite:///{empty_cwd}/data/callcenter.sqlite3"

    environ = {"CALLCENTER_WEB_LISTEN": "127.0.0.1:0"}
    assert load_config(environ=environ).web.listen == HostPort("127.0.0.1", 0)

    environ = {"CALLCENTER_DB_URL": "postgresql://cc@localhost/cc", "CALLCENTER_DATA_DIR": "/srv"}
    config = load_config(environ=environ)
    assert config.database.url == "postgresql://cc@localhost/cc"
    assert config.data.dir == Path("/srv")


def test_config_is_frozen() -> None:
    config = load_config(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sip.realm = "other"  # type: ignore[misc]


ERRORS = [
    ("[sip]\nlisten = 5060\n", 'callcenter.toml: [sip] listen: expected "host:port", got 5060'),
    (
        '[sip]\nlisten = "localhost"\n',
        'callcenter.toml: [sip] listen: expected "host:port", got "localhost"',
    ),
    (
        '[sip]\nlisten = "[::zz]:5060"\n',
        'callcenter.toml: [sip] listen: expected "host:port" (IPv6 as "[::1]:5060"),'
        ' got "[::zz]:5060"',
    ),
    (
        '[sip]\nlisten = "127.0.0.1:70000"\n',
        'callcenter.toml: [sip] listen: expected "host:port" with a port from 0 to 65535,'
        ' got "127.0.0.1:70000"',
    ),
    (
        "[sip]\nlisten = []\n",
        'callcenter.toml: [sip] listen: expected at least one "host:port", got []',
    ),
    ('[sip]\nlisten = "127.0.0.1:5060"\nlisen = 1\n', "callcenter.toml: [sip] lisen: unknown key"),
    ("[sip.auth]\nalgorithm = []\n", "callcenter.toml: [sip.auth] algorithm: unknown key"),
    ("[sipp]\nlisten = 1\n", "callcenter.toml: [sipp]: unknown section"),
    ('realm = "x"\n', "callcenter.toml: realm: unknown key"),
    ("sip = 1\n", "callcenter.toml: [sip]: expected a table, got 1"),
    (
        '[sip]\nmax_expires_s = "60"\n',
        'callcenter.toml: [sip] max_expires_s: expected a positive integer, got "60"',
    ),
    (
        "[sip.bans]\nmax_failures = true\n",
        "callcenter.toml: [sip.bans] max_failures: expected a positive integer, got true",
    ),
    (
        "[sip.bans]\nwindow_s = 0\n",
        "callcenter.toml: [sip.bans] window_s: expected a positive integer, got 0",
    ),
    (
        '[sip.bans]\nwhitelist = ["10.0.0.300"]\n',
        "callcenter.toml: [sip.bans] whitelist: expected a list of addresses or networks"
        ' such as "10.0.0.0/8", got ["10.0.0.300"]',
    ),
    (
        '[sip.auth]\nalgorithms = ["SHA-1"]\n',
        "callcenter.toml: [sip.auth] algorithms: expected a non-empty list of distinct names"
        ' from "SHA-256", "SHA-512-256", "MD5", got ["SHA-1"]',
    ),
    ('[sip]\nrealm = ""\n', 'callcenter.toml: [sip] realm: expected a non-empty string, got ""'),
    (
        '[rtp]\nports = "20001-29999"\n',
        'callcenter.toml: [rtp] ports: expected "lo-hi" with an even lo (RTP takes even ports,'
        ' RTCP odd), got "20001-29999"',
    ),
    (
        '[rtp]\nports = "30000-20000"\n',
        'callcenter.toml: [rtp] ports: expected "lo-hi" with 1024 <= lo < hi <= 65535,'
        ' got "30000-20000"',
    ),
    (
        "[rtp]\nports = 20000\n",
        'callcenter.toml: [rtp] ports: expected "lo-hi" such as "20000-29999", got 20000',
    ),
    ("[database]\nurl = 5\n", "callcenter.toml: [database] url: expected a string, got 5"),
    (
        "[sip]\ndefault_expires_s = 30\n",
        "callcenter.toml: [sip] default_expires_s: must lie between min_expires_s (60)"
        " and max_expires_s (3600), got 30",
    ),
    (
        "[sip]\nmin_expires_s = 7200\n",
        "callcenter.toml: [sip] min_expires_s: must not exceed max_expires_s (3600), got 7200",
    ),
    (
        '[web]\nlisten = { host = "x" }\n',
        'callcenter.toml: [web] listen: expected "host:port", got a table',
    ),
    (
        "[web]\nlogin_user_delay_s = 60\n",
        "callcenter.toml: [web] login_user_delay_s: expected a number of seconds from 0 to 30,"
        " got 60",
    ),
    (
        '[web]\ntimezone = "Mars/Olympus"\n',
        'callcenter.toml: [web] timezone: expected an IANA time zone name such as'
        ' "Asia/Shanghai", got "Mars/Olympus"',
    ),
    (
        "[sip\n",
        "callcenter.toml: invalid TOML: Expected ']' at the end of a table declaration"
        " (at line 1, column 5)",
    ),
]


GW = '[[gateways]]\nname = "gw1"\nhost = "192.0.2.10"\n'
GROUP = '[[trunk_groups]]\nname = "pstn"\ngateways = ["gw1"]\n'
ROUTE_TO_PSTN = '[[routes]]\nprefix = "0"\ntrunk_group = "pstn"\n'

ERRORS += [
    (
        "[rtp]\nwakeup_window_us = 20000\n",
        "callcenter.toml: [rtp] wakeup_window_us: expected an integer from 0 to 10000, got 20000",
    ),
    (
        "[rtp]\nrelatch_silence_s = -1\n",
        "callcenter.toml: [rtp] relatch_silence_s: expected a non-negative number of seconds,"
        " got -1",
    ),
    (
        '[dialplan]\ndefault = "hangup"\n',
        'callcenter.toml: [dialplan] default: expected one of "reject", got "hangup"',
    ),
    (
        "[dialplan]\nstatus = 200\n",
        "callcenter.toml: [dialplan] status: expected a SIP status from 400 to 699, got 200",
    ),
    (
        '[gateways]\nname = "gw1"\n',
        "callcenter.toml: [[gateways]]: expected an array of tables, got a table",
    ),
    ("gateways = [1]\n", "callcenter.toml: [[gateways]] #1: expected a table, got 1"),
    ('[[gateways]]\nname = "gw1"\n', "callcenter.toml: [[gateways]] #1: host is required"),
    (
        GW + 'adress = "x"\n',
        "callcenter.toml: [[gateways]] #1 adress: unknown key",
    ),
    (
        GW + "port = 0\n",
        "callcenter.toml: [[gateways]] #1 port: expected a port from 1 to 65535, got 0",
    ),
    (
        GW + 'transport = "tls"\n',
        'callcenter.toml: [[gateways]] #1 transport: expected one of "udp", "tcp", got "tls"',
    ),
    (
        GW + "spans = 0\n",
        "callcenter.toml: [[gateways]] #1 spans: expected a positive integer, got 0",
    ),
    (
        GW + GW,
        'callcenter.toml: [[gateways]] #2: name "gw1" is already used by #1',
    ),
    (
        GW + GROUP + GROUP,
        'callcenter.toml: [[trunk_groups]] #2: name "pstn" is already used by #1',
    ),
    (
        GW + '[[trunk_groups]]\nname = "pstn"\ngateways = ["gw1", "gw2"]\n',
        'callcenter.toml: [[trunk_groups]] #1: gateway "gw2" is not defined',
    ),
    (
        GW + '[[trunk_groups]]\nname = "pstn"\ngateways = []\n',
        "callcenter.toml: [[trunk_groups]] #1 gateways: expected a non-empty list of distinct"
        " names, got []",
    ),
    (
        GW + GROUP + ROUTE_TO_PSTN + '[[routes]]\nprefix = "9"\ntrunk_group = "pstn2"\n',
        'callcenter.toml: [[routes]] #2: trunk_group "pstn2" is not defined',
    ),
    (
        GW + GROUP + '[[routes]]\ndid = "4008001234"\nfrom_trunk = "pri"\nextension = "1001"\n',
        'callcenter.toml: [[routes]] #1: from_trunk "pri" is not defined',
    ),
    (
        '[[routes]]\ndid = "4008001234"\n',
        'callcenter.toml: [[routes]] #1: no action: give one of extension = "...",'
        " application, trunk_group, ring_group",
    ),
    (
        '[[routes]]\ndid = "4008001234"\nring_group = "sales"\n',
        'callcenter.toml: [[routes]] #1: ring_group "sales" is not defined',
    ),
    (
        '[[ring_groups]]\nname = "sales"\ntargets = []\n',
        "callcenter.toml: [[ring_groups]] #1 targets: expected a non-empty list of numbers"
        ' such as ["1001", "013800138000"], got []',
    ),
    (
        '[[ring_groups]]\nname = "sales"\nstrategy = "random"\ntargets = ["1001"]\n',
        'callcenter.toml: [[ring_groups]] #1 strategy: expected one of "simultaneous",'
        ' "sequential", got "random"',
    ),
    (
        '[[ring_groups]]\nname = "sales"\ntargets = ["1001"]\n'
        '[[ring_groups]]\nname = "sales"\ntargets = ["1002"]\n',
        'callcenter.toml: [[ring_groups]] #2: name "sales" is already used by #1',
    ),
    (
        GW + GROUP + '[[routes]]\ndid = "4008001234"\nextension = "1001"\ntrunk_group = "pstn"\n',
        "callcenter.toml: [[routes]] #1: extension and trunk_group both given:"
        " a route takes one action",
    ),
    (
        '[[routes]]\nextension = "1001"\n',
        "callcenter.toml: [[routes]] #1: no match: give one of did, prefix, extension = true",
    ),
    (
        '[[routes]]\ndid = "4008001234"\nprefix = "400"\nextension = "1001"\n',
        "callcenter.toml: [[routes]] #1: did and prefix both given: a route matches on one",
    ),
    (
        "[[routes]]\nextension = false\n",
        "callcenter.toml: [[routes]] #1 extension: expected true (match extensions) or an"
        " extension of 2 to 8 digits, got false",
    ),
    (
        '[[routes]]\ndid = "400-800"\nextension = "1001"\n',
        'callcenter.toml: [[routes]] #1 did: expected a number such as "4008001234"'
        ' (digits, optionally after +), got "400-800"',
    ),
    (
        '[[routes]]\nprefix = ""\nextension = "1001"\n',
        "callcenter.toml: [[routes]] #1 prefix: expected a non-empty string of 0-9, *, #"
        ' and +, got ""',
    ),
    (
        '[[routes]]\ndid = "4008001234"\napplication = "ivr"\n',
        'callcenter.toml: [[routes]] #1 application: expected one of "prompt", got "ivr"',
    ),
    (
        '[[routes]]\nextension = true\nrecording = "sometimes"\n',
        'callcenter.toml: [[routes]] #1 recording: expected one of "always", "never",'
        ' "on_demand", got "sometimes"',
    ),
    (
        '[[routes]]\ndid = "4008001234"\napplication = "prompt"\n',
        'callcenter.toml: [[routes]] #1: application "prompt" needs prompt',
    ),
    (
        '[[routes]]\ndid = "4008001234"\nextension = "1001"\nprompt = "welcome"\n',
        'callcenter.toml: [[routes]] #1: prompt applies only to application = "prompt"',
    ),
    (
        "[[routes]]\nextension = true\nstrip = 1\n",
        "callcenter.toml: [[routes]] #1: strip applies only to a trunk_group route",
    ),
    (
        GW + GROUP + ROUTE_TO_PSTN + "strip = -1\n",
        "callcenter.toml: [[routes]] #1 strip: expected a non-negative integer, got -1",
    ),
    (
        GW + GROUP + ROUTE_TO_PSTN + 'prepend = "x"\n',
        'callcenter.toml: [[routes]] #1 prepend: expected a string of 0-9, *, # and +, got "x"',
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_exact_error_messages(empty_cwd: Path, text: str, message: str) -> None:
    assert error_of(empty_cwd, text) == message


def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^nope\.toml: cannot read: No such file or directory$"):
        load_config("nope.toml", environ={})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "CALLCENTER_SIP_LISTEN",
            "5060",
            'CALLCENTER_SIP_LISTEN: expected "host:port", got "5060"',
        ),
        ("CALLCENTER_DATA_DIR", "", 'CALLCENTER_DATA_DIR: expected a non-empty string, got ""'),
    ],
)
def test_bad_environment_values(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={variable: value})
    assert str(excinfo.value) == message


TOML_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.text(max_size=12), max_size=3),
    st.lists(st.integers(min_value=0, max_value=99), max_size=3),
)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(f"\\U{ord(c):08x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return str(value)


@given(
    section_key=st.sampled_from([(s, k) for s, keys in SCHEMA.items() for k in keys]),
    value=TOML_VALUES,
)
def test_any_value_loads_or_raises_config_error(
    section_key: tuple[str, str], value: object
) -> None:
    section, key = section_key
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "c.toml")
        Path(path).write_text(f"[{section}]\n{key} = {_toml(value)}\n", encoding="utf-8")
        try:
            config = load_config(path, environ={})
        except ConfigError as error:
            # Names the key, or a key of the same section it must agree with
            # (max_expires_s = 60 makes the default 3600 out of range).
            assert str(error).startswith(f"{path}: [{section}] ")
        else:
            assert isinstance(config, Config)


@given(
    section_key=st.sampled_from([(s, k) for s, keys in TABLE_ARRAYS.items() for k in keys]),
    value=TOML_VALUES,
)
def test_any_array_value_loads_or_raises_config_error(
    section_key: tuple[str, str], value: object
) -> None:
    section, key = section_key
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "c.toml")
        text = f"{GW}{GROUP}[[{section}]]\n{key} = {_toml(value)}\n"
        Path(path).write_text(text, encoding="utf-8")
        try:
            config = load_config(path, environ={})
        except ConfigError as error:
            assert str(error).startswith(f"{path}: [[{section}]] #")
        else:
            assert isinstance(config, Config)


@given(
    host=st.one_of(
        st.ip_addresses().map(str),
        st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    ),
    port=st.integers(min_value=0, max_value=65535),
)
def test_listen_address_round_trips(host: str, port: int) -> None:
    address = HostPort(host, port)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "c.toml")
        Path(path).write_text(f'[web]\nlisten = "{address}"\n', encoding="utf-8")
        assert load_config(path, environ={}).web.listen == address


@pytest.mark.parametrize(("written", "kept"), [("", ""), ("755", "755"), ("0755", "755"),
                                               ("10", "10")])
def test_default_area_code_is_kept_without_its_trunk_prefix(
        tmp_path: Path, written: str, kept: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[customers]\ndefault_area_code = "{written}"\n', encoding="utf-8")
    assert load_config(str(path), environ={}).customers.default_area_code == kept


@pytest.mark.parametrize("written", ['"7"', '"00755"', '"abc"', "755"])
def test_a_bad_area_code_is_refused_by_name(tmp_path: Path, written: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[customers]\ndefault_area_code = {written}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[customers\] default_area_code: expected an area"):
        load_config(str(path), environ={})


def test_vip_levels_default_to_the_cards_operators_use(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("", encoding="utf-8")
    assert load_config(str(path), environ={}).customers.vip_levels == (
        "钻石卡", "金卡", "银卡", "普通")
    path.write_text('[customers]\nvip_levels = ["黑金", " 白金 ", "普通"]\n', encoding="utf-8")
    assert load_config(str(path), environ={}).customers.vip_levels == ("黑金", "白金", "普通")


@pytest.mark.parametrize("written", ["[]", '"金卡"', '["金卡", "金卡"]', '["金卡", ""]',
                                     '["金卡", "VIP3"]', '["3", "金卡"]', '["金卡", 2]',
                                     '["' + "卡" * 33 + '"]'])
def test_bad_vip_levels_are_refused_by_name(tmp_path: Path, written: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[customers]\nvip_levels = {written}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[customers\] vip_levels: expected a list of "
                                          r"distinct level names, highest first"):
        load_config(str(path), environ={})
