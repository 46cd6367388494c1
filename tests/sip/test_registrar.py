"""Registrar rules of RFC 3261 §10.3, driven with explicit `now`."""

from __future__ import annotations

from switch.sip.message import Request, parse_message
from switch.sip.peer import Peer
from switch.sip.registrar import Registrar

FLOW = Peer("UDP", "203.0.113.7", 40000)


def register(contact: str | None = "<sip:1001@192.168.1.20:5062>", *, expires: str | None = None,
             cseq: int = 1, call_id: str = "reg-1", extra: str = "") -> Request:
    lines = [
        "REGISTER sip:callcenter SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK-r1;rport=40000;received=203.0.113.7",
        "Max-Forwards: 70",
        "From: <sip:1001@callcenter>;tag=ft1",
        "To: <sip:1001@callcenter>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if extra:
        lines.append(extra)
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_binding_is_created_with_default_expiry_and_listed_in_the_200():
    registrar = Registrar(default_expires_s=3600)
    response = registrar.register(register(), FLOW, now=100.0, to_tag="tt")
    assert response.status == 200
    assert response.headers.get_all("Contact") == ["<sip:1001@192.168.1.20:5062>;expires=3600"]
    assert response.to.tag == "tt"
    [binding] = registrar.lookup("1001", now=100.0)
    assert binding.flow == FLOW  # reached where the packets came from, not the Contact
    assert binding.expires_at == 3700.0


def test_binding_expires_after_its_interval():
    registrar = Registrar()
    registrar.register(register(expires="120"), FLOW, now=0.0, to_tag="t")
    assert registrar.lookup("1001", now=119.9)
    assert registrar.lookup("1001", now=120.0) == []
    registrar.expire(now=121.0)
    assert len(registrar) == 0
    changes = registrar.changes()
    assert [(c.aor, c.registered) for c in changes] == [("1001", True), ("1001", False)]


def test_too_brief_interval_gets_423_with_min_expires():
    registrar = Registrar(min_expires_s=60)
    response = registrar.register(register(expires="30"), FLOW, now=0.0, to_tag="t")
    assert response.status == 423
    assert response.reason == "Interval Too Brief"
    assert response.headers.get("Min-Expires") == "60"
    assert len(registrar) == 0


def test_expiry_above_maximum_is_shortened():
    registrar = Registrar(max_expires_s=3600)
    response = registrar.register(register(expires="86400"), FLOW, now=0.0, to_tag="t")
    assert response.headers.get("Contact") == "<sip:1001@192.168.1.20:5062>;expires=3600"


def test_contact_expires_parameter_overrides_header():
    registrar = Registrar()
    response = registrar.register(
        register("<sip:1001@10.0.0.1>;expires=300", expires="3600"), FLOW, 0.0, to_tag="t")
    assert response.headers.get("Contact") == "<sip:1001@10.0.0.1>;expires=300"


def test_several_contacts_per_aor_and_refresh_replaces_same_contact():
    registrar = Registrar()
    registrar.register(register("<sip:1001@10.0.0.1>"), FLOW, 0.0, to_tag="t")
    registrar.register(register("<sip:1001@10.0.0.2>", call_id="other"), FLOW, 0.0, to_tag="t")
    response = registrar.register(register("<sip:1001@10.0.0.1>", cseq=2), FLOW, 10.0,
                                  to_tag="t")
    assert sorted(response.headers.get_all("Contact")) == [
        "<sip:1001@10.0.0.1>;expires=3600", "<sip:1001@10.0.0.2>;expires=3590"]
    assert len(registrar) == 2


def test_query_without_contact_lists_bindings_and_changes_nothing():
    registrar = Registrar()
    registrar.register(register(), FLOW, 0.0, to_tag="t")
    response = registrar.register(register(None, cseq=2), FLOW, 1.0, to_tag="t")
    assert response.status == 200
    assert response.headers.get_all("Contact") == ["<sip:1001@192.168.1.20:5062>;expires=3599"]


def test_expires_zero_removes_one_binding():
    registrar = Registrar()
    registrar.register(register(), FLOW, 0.0, to_tag="t")
    response = registrar.register(register(expires="0", cseq=2), FLOW, 1.0, to_tag="t")
    assert response.status == 200
    assert response.headers.get_all("Contact") == []
    assert registrar.lookup("1001", 1.0) == []


def test_wildcard_contact_removes_all_bindings():
    registrar = Registrar()
    registrar.register(register("<sip:1001@10.0.0.1>"), FLOW, 0.0, to_tag="t")
    registrar.register(register("<sip:1001@10.0.0.2>", call_id="b"), FLOW, 0.0, to_tag="t")
    response = registrar.register(register("*", expires="0", cseq=2), FLOW, 1.0, to_tag="t")
    assert response.status == 200
    assert len(registrar) == 0


def test_wildcard_contact_without_expires_zero_is_rejected():
    registrar = Registrar()
    registrar.register(register(), FLOW, 0.0, to_tag="t")
    response = registrar.register(register("*", expires="60", cseq=2), FLOW, 1.0, to_tag="t")
    assert response.status == 400
    assert response.reason == "Invalid Wildcard Contact"
    assert len(registrar) == 1


def test_out_of_order_cseq_on_same_call_id_gets_500():
    registrar = Registrar()
    registrar.register(register(cseq=5), FLOW, 0.0, to_tag="t")
    response = registrar.register(register("<sip:1001@10.9.9.9>", cseq=5), FLOW, 1.0,
                                  to_tag="t")
    assert response.status == 500
    assert [b.contact.serialize() for b in registrar.lookup("1001", 1.0)] == [
        "<sip:1001@192.168.1.20:5062>"]


def test_bad_contact_expires_gets_400():
    registrar = Registrar()
    response = registrar.register(register("<sip:1001@10.0.0.1>;expires=soon"), FLOW, 0.0,
                                  to_tag="t")
    assert response.status == 400


def test_next_deadline_is_the_earliest_expiry():
    registrar = Registrar()
    assert registrar.next_deadline() is None
    registrar.register(register("<sip:1001@10.0.0.1>;expires=600"), FLOW, 0.0, to_tag="t")
    registrar.register(register("<sip:1001@10.0.0.2>;expires=300", call_id="x"), FLOW, 0.0,
                       to_tag="t")
    assert registrar.next_deadline() == 300.0


def test_registered_aors_are_those_with_a_live_binding_now():
    registrar = Registrar()
    assert registrar.registered_aors(now=0.0) == frozenset()
    registrar.register(register(expires="120"), FLOW, now=0.0, to_tag="t")
    assert registrar.registered_aors(now=119.9) == {"1001"}
    assert registrar.registered_aors(now=120.0) == frozenset()  # not yet swept, but gone
    registrar.register(register(expires="600", cseq=2), FLOW, now=200.0, to_tag="t")
    registrar.register(register(expires="0", cseq=3), FLOW, now=300.0, to_tag="t")
    assert registrar.registered_aors(now=300.0) == frozenset()
