"""switch.dialplan: the first matching route decides; otherwise the configured rejection."""

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.config import load_config
from switch.dialplan import (
    CallDirection,
    Dialplan,
    Reject,
    RouteQuery,
    ToApplication,
    ToExtension,
    ToTrunkGroup,
)

INBOUND, INTERNAL, OUTBOUND = CallDirection.INBOUND, CallDirection.INTERNAL, CallDirection.OUTBOUND

TRUNKS = """
[[gateways]]
name = "gw1"
host = "192.0.2.10"
[[gateways]]
name = "gw2"
host = "192.0.2.11"
[[trunk_groups]]
name = "pstn"
gateways = ["gw1"]
[[trunk_groups]]
name = "mobile"
gateways = ["gw2"]
"""

# The call center's own dialplan, the way an operator would write it.
ROUTES = """
[[routes]]
did = "4008001234"
from_trunk = "pstn"
application = "prompt"
prompt = "welcome"

[[routes]]
did = "4008001234"
extension = "1000"

[[routes]]
did = "4008005678"
extension = "1001"

[[routes]]
prefix = "00"
trunk_group = "mobile"
strip = 2
prepend = "+"

[[routes]]
extension = true

[[routes]]
prefix = "0"
trunk_group = "pstn"
strip = 1

[[routes]]
prefix = "9"
trunk_group = "pstn"
strip = 1
prepend = "0"
"""


def dialplan_of(tmp_path: Path, text: str) -> Dialplan:
    path = tmp_path / "callcenter.toml"
    path.write_text(text, encoding="utf-8")
    return Dialplan.from_config(load_config(str(path), environ={}))


@pytest.fixture
def dialplan(tmp_path: Path) -> Dialplan:
    return dialplan_of(tmp_path, TRUNKS + ROUTES)


def query(direction: CallDirection, called: str, from_trunk: str | None = None) -> RouteQuery:
    return RouteQuery(direction, from_trunk, called, caller="13800138000")


TABLE = [
    # DID from the PSTN trunk -> the welcome prompt.
    (query(INBOUND, "4008001234", "pstn"), ToApplication("prompt", {"prompt": "welcome"})),
    # The same DID from another trunk skips the from_trunk route and takes the next.
    (query(INBOUND, "4008001234", "mobile"), ToExtension("1000")),
    (query(INBOUND, "4008005678", "pstn"), ToExtension("1001")),
    # Extension to extension.
    (query(INTERNAL, "1002"), ToExtension("1002")),
    (query(OUTBOUND, "87654321"), ToExtension("87654321")),
    # Prefix 0 to the PSTN with the 0 stripped; "00" comes first and wins for 00...
    (query(INTERNAL, "013800138000"), ToTrunkGroup("pstn", "13800138000")),
    (query(INTERNAL, "008613800138000"), ToTrunkGroup("mobile", "+8613800138000")),
    (query(OUTBOUND, "913800138000"), ToTrunkGroup("pstn", "013800138000")),
    # "0" alone leaves nothing to dial.
    (query(INTERNAL, "0"), Reject(484, "Address Incomplete")),
    # The extension route comes before the prefix 0 route: 0755 is an extension.
    (query(INTERNAL, "0755"), ToExtension("0755")),
    # Nothing matches: the default.
    (query(INTERNAL, "4008001234"), Reject(404, "Not Found")),
    (query(INTERNAL, "alice"), Reject(404, "Not Found")),
    (query(INTERNAL, ""), Reject(404, "Not Found")),
    (query(INBOUND, "4008009999", "pstn"), Reject(404, "Not Found")),
    # An inbound caller reaches neither extensions nor trunks by dialling them.
    (query(INBOUND, "1002", "pstn"), Reject(404, "Not Found")),
    (query(INBOUND, "013800138000", "pstn"), Reject(404, "Not Found")),
]


@pytest.mark.parametrize(("call", "decision"), TABLE)
def test_route_table(dialplan: Dialplan, call: RouteQuery, decision: object) -> None:
    assert dialplan.route(call) == decision


def test_from_trunk_admits_only_inbound_calls_from_that_group(tmp_path: Path) -> None:
    dialplan = dialplan_of(
        tmp_path,
        TRUNKS + '[[routes]]\nprefix = "0"\nfrom_trunk = "mobile"\ntrunk_group = "pstn"\n'
        "strip = 1\n",
    )
    assert dialplan.route(query(INBOUND, "0101", "mobile")) == ToTrunkGroup("pstn", "101")
    for call in [
        query(INBOUND, "0101", "pstn"),
        query(INBOUND, "0101", None),
        query(INTERNAL, "0101"),
        query(OUTBOUND, "0101", "mobile"),
    ]:
        assert dialplan.route(call) == Reject(404, "Not Found"), call


def test_first_matching_route_wins(tmp_path: Path) -> None:
    first = '[[routes]]\nprefix = "8"\nextension = "1001"\n'
    second = '[[routes]]\nprefix = "80"\nextension = "1002"\n'
    call = query(INTERNAL, "8000")
    assert dialplan_of(tmp_path, first + second).route(call) == ToExtension("1001")
    assert dialplan_of(tmp_path, second + first).route(call) == ToExtension("1002")


def test_the_matching_route_says_how_its_calls_are_recorded(tmp_path: Path) -> None:
    dialplan = dialplan_of(
        tmp_path,
        '[[routes]]\ndid = "4008001234"\nextension = "1001"\nrecording = "on_demand"\n'
        '[[routes]]\nextension = true\nrecording = "never"\n'
        '[[routes]]\ndid = "4008005678"\nextension = "1002"\n',
    )
    assert dialplan.recording(query(INBOUND, "4008001234")) == "on_demand"
    assert dialplan.recording(query(INTERNAL, "1002")) == "never"
    assert dialplan.recording(query(INBOUND, "4008005678")) is None  # [recording] enabled
    assert dialplan.recording(query(INBOUND, "4008009999")) is None  # no route


def test_no_routes_means_extensions_only(tmp_path: Path) -> None:
    # A fresh install: phones reach each other's extensions, nothing else gets through.
    empty = dialplan_of(tmp_path, "")
    assert empty.route(query(INTERNAL, "1001")) == ToExtension("1001")
    assert empty.route(query(INTERNAL, "013800138000")) == Reject(404, "Not Found")
    assert empty.route(query(INBOUND, "1001", "pstn")) == Reject(404, "Not Found")
    dialplan = dialplan_of(tmp_path, "[dialplan]\nstatus = 403\n")
    assert dialplan.route(query(INBOUND, "4008001234", "pstn")) == Reject(403, "Forbidden")


def test_written_routes_replace_the_implicit_extension_route(tmp_path: Path) -> None:
    dialplan = dialplan_of(tmp_path, '[[routes]]\nprefix = "9"\nextension = "1001"\n')
    assert dialplan.route(query(INTERNAL, "1002")) == Reject(404, "Not Found")


def test_example_file_lets_extensions_call_each_other() -> None:
    example = Path(__file__).resolve().parents[2] / "callcenter.example.toml"
    dialplan = Dialplan.from_config(load_config(str(example), environ={}))
    assert dialplan.route(query(INTERNAL, "1001")) == ToExtension("1001")
    assert dialplan.route(query(INBOUND, "4008001234", "pstn")) == Reject(404, "Not Found")


def test_decisions_are_frozen(dialplan: Dialplan) -> None:
    decision = dialplan.route(query(INBOUND, "4008001234", "pstn"))
    assert isinstance(decision, ToApplication)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        decision.params["prompt"] = "other"  # type: ignore[index]
    assert hash(decision) == hash(ToApplication("prompt", {"prompt": "welcome"}))


NUMBERS = st.one_of(
    st.text(max_size=16),
    st.text(alphabet="0123456789*#+", max_size=16),
    st.sampled_from(["4008001234", "4008005678", "0", "00", "9", "1001"]),
)


@given(
    direction=st.sampled_from(CallDirection),
    from_trunk=st.one_of(st.none(), st.sampled_from(["pstn", "mobile"]), st.text(max_size=8)),
    called=NUMBERS,
    caller=st.text(max_size=16),
)
def test_route_always_decides(
    direction: CallDirection, from_trunk: str | None, called: str, caller: str
) -> None:
    decision = DIALPLAN.route(RouteQuery(direction, from_trunk, called, caller))
    assert isinstance(decision, ToExtension | ToApplication | ToTrunkGroup | Reject)
    if isinstance(decision, ToTrunkGroup):
        # Only a matched prefix is stripped and only configured digits added.
        assert direction is not INBOUND
        assert decision.dialled_number in {"+" + called[2:], called[1:], "0" + called[1:]}
        assert decision.dialled_number not in ("", "+")
    if isinstance(decision, ToExtension) and direction is INBOUND:
        assert decision.extension in ("1000", "1001")


def _module_dialplan() -> Dialplan:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "callcenter.toml")
        Path(path).write_text(TRUNKS + ROUTES, encoding="utf-8")
        return Dialplan.from_config(load_config(path, environ={}))


DIALPLAN = _module_dialplan()
