"""SIP dialogs (RFC 3261 §12): creation on both sides, in-dialog requests, CSeq rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.dialog import (
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    DialogTable,
    build_dialog_response,
    is_in_dialog,
    reject_unknown_dialog,
)
from switch.sip.errors import LocalProtocolError
from switch.sip.headers import HeaderError, NameAddr, Via
from switch.sip.message import Request, Response, build_response, parse_message
from switch.sip.uri import SipUri, parse_uri

CALL_ID = "a84b4c76e66710@pc33.atlanta.com"
ALICE_CONTACT = "<sip:alice@pc33.atlanta.com>"
BOB_CONTACT = "<sip:bob@192.0.2.4>"
# Alice's INVITE crosses P1 (atlanta) then P2 (biloxi); each prepends its Record-Route,
# so Bob sees the proxy nearest to him first.
RECORD_ROUTES = ("<sip:p2.biloxi.com;lr>", "<sip:p1.atlanta.com;lr>")


def wire(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def make_invite(*, record_routes: tuple[str, ...] = RECORD_ROUTES,
                contact: str | None = ALICE_CONTACT, uri: str = "sip:bob@biloxi.com",
                transport: str = "UDP", cseq: int = 314159) -> Request:
    lines = [f"INVITE {uri} SIP/2.0",
             f"Via: SIP/2.0/{transport} pc33.atlanta.com;branch=z9hG4bK776asdhds",
             "Max-Forwards: 70"]
    lines += [f"Record-Route: {rr}" for rr in record_routes]
    lines += ["To: Bob <sip:bob@biloxi.com>",
              "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
              f"Call-ID: {CALL_ID}",
              f"CSeq: {cseq} INVITE"]
    return finish_request(lines, contact)


def finish_request(lines: list[str], contact: str | None) -> Request:
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines += ["Content-Length: 0", "", ""]
    request = parse_message(wire("\n".join(lines)))
    assert isinstance(request, Request)
    return request


def answer(invite: Request, status: int, *, to_tag: str = "a6c85cf",
           contact: str = BOB_CONTACT) -> Response:
    return build_dialog_response(invite, status, to_tag=to_tag,
                                 contact=NameAddr.parse(contact))


def via(branch: str) -> Via:
    return Via("UDP", "pc33.atlanta.com", None, {"branch": branch})


def bob_via(branch: str) -> Via:
    return Via("UDP", "192.0.2.4", None, {"branch": branch})


def uac_dialog(status: int = 200, **invite_args: object) -> Dialog:
    invite = make_invite(**invite_args)  # type: ignore[arg-type]
    return Dialog.from_uac(invite, answer(invite, status))


def uas_dialog(status: int = 200, **invite_args: object) -> Dialog:
    invite = make_invite(**invite_args)  # type: ignore[arg-type]
    return Dialog.from_uas(invite, answer(invite, status))


def in_dialog_request(method: str, seq: int, *, contact: str | None = None) -> Request:
    """A request from Alice to Bob inside the dialog Bob created."""
    lines = [f"{method} sip:bob@192.0.2.4 SIP/2.0",
             "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK-x",
             "Max-Forwards: 70",
             "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
             "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf",
             f"Call-ID: {CALL_ID}",
             f"CSeq: {seq} {method}"]
    return finish_request(lines, contact)


def in_dialog_response(dialog: Dialog, method: str, seq: int, status: int,
                       *, contact: str | None = None) -> Response:
    """A response from Bob to a request Alice sent in `dialog`."""
    request = dialog.create_request(method, via=via("z9hG4bK-r"),
                                    contact=NameAddr.parse(ALICE_CONTACT))
    request.headers.set("CSeq", f"{seq} {method}")
    response = build_response(request, status)
    if contact is not None:
        response.headers.add("Contact", contact)
    return response


# --- creation (§12.1) ----------------------------------------------------------------


def test_uac_dialog_from_provisional_is_early_with_reversed_route_set() -> None:
    dialog = uac_dialog(180)
    assert dialog.state is DialogState.EARLY
    assert dialog.id == DialogId(CALL_ID, "1928301774", "a6c85cf")
    assert dialog.local_seq == 314159
    assert dialog.remote_seq is None
    assert dialog.local_uri.serialize() == "Alice <sip:alice@atlanta.com>;tag=1928301774"
    assert dialog.remote_uri.serialize() == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert dialog.remote_target.serialize() == "sip:bob@192.0.2.4"
    # Alice's next hop is P1, the proxy nearest her.
    assert [r.serialize() for r in dialog.route_set] == [
        "<sip:p1.atlanta.com;lr>", "<sip:p2.biloxi.com;lr>"]
    assert dialog.secure is False


def test_uac_dialog_from_2xx_is_confirmed() -> None:
    assert uac_dialog(200).state is DialogState.CONFIRMED


def test_uas_dialog_keeps_record_route_order() -> None:
    dialog = uas_dialog(180)
    assert dialog.state is DialogState.EARLY
    assert dialog.id == DialogId(CALL_ID, "a6c85cf", "1928301774")
    assert dialog.local_seq is None
    assert dialog.remote_seq == 314159
    assert dialog.local_uri.serialize() == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert dialog.remote_uri.serialize() == "Alice <sip:alice@atlanta.com>;tag=1928301774"
    assert dialog.remote_target.serialize() == "sip:alice@pc33.atlanta.com"
    # Bob's next hop is P2, the proxy nearest him.
    assert [r.serialize() for r in dialog.route_set] == [
        "<sip:p2.biloxi.com;lr>", "<sip:p1.atlanta.com;lr>"]


def test_dialog_response_copies_record_route_and_adds_tag_and_contact() -> None:
    response = answer(make_invite(), 200)
    assert response.headers.get_all("Record-Route") == list(RECORD_ROUTES)
    assert response.to.tag == "a6c85cf"
    assert response.headers.get("Contact") == BOB_CONTACT


def test_secure_flag_needs_tls_and_sips() -> None:
    assert uac_dialog(transport="TLS", uri="sips:bob@biloxi.com").secure is True
    assert uas_dialog(transport="TLS", uri="sips:bob@biloxi.com").secure is True
    assert uac_dialog(transport="TLS").secure is False
    assert uac_dialog(transport="UDP", uri="sips:bob@biloxi.com").secure is False


def test_100_trying_creates_no_dialog() -> None:
    invite = make_invite()
    with pytest.raises(LocalProtocolError, match=r"^a 100 response does not create a dialog$"):
        Dialog.from_uac(invite, build_response(invite, 100))


def test_response_without_to_tag_creates_no_dialog() -> None:
    invite = make_invite()
    with pytest.raises(DialogError, match=r"^180 response has no To tag$"):
        Dialog.from_uac(invite, build_response(invite, 180))


def test_request_without_contact_is_answered_400() -> None:
    invite = make_invite(contact=None)
    with pytest.raises(DialogError, match=r"^INVITE creating a dialog has no Contact$") as info:
        Dialog.from_uas(invite, answer(invite, 200))
    assert info.value.status == 400


def test_two_contacts_are_answered_400() -> None:
    invite = make_invite(contact="<sip:a@h1>, <sip:a@h2>")
    with pytest.raises(DialogError,
                       match=r"^expected one Contact in a dialog message, got 2$") as info:
        Dialog.from_uas(invite, answer(invite, 200))
    assert info.value.status == 400


def test_non_sip_record_route_is_answered_400() -> None:
    invite = make_invite(record_routes=("<tel:+15551234>",))
    with pytest.raises(HeaderError, match=r"^expected a SIP URI, got tel:$"):
        Dialog.from_uas(invite, answer(invite, 200))


# --- requests inside the dialog (§12.2.1.1) ------------------------------------------


def test_loose_routing_request_exact_bytes() -> None:
    dialog = uac_dialog(200)
    bye = dialog.create_request("BYE", via=via("z9hG4bKnashds7"))
    assert bye.serialize() == wire(
        "BYE sip:bob@192.0.2.4 SIP/2.0\n"
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds7\n"
        "Max-Forwards: 70\n"
        "Route: <sip:p1.atlanta.com;lr>\n"
        "Route: <sip:p2.biloxi.com;lr>\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\n"
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n"
        f"Call-ID: {CALL_ID}\n"
        "CSeq: 314160 BYE\n"
        "Content-Length: 0\n\n")


def test_strict_routing_puts_first_route_in_request_uri_and_target_last() -> None:
    # P1 is an RFC 2543 strict router: no lr. Its URI headers and method parameter
    # are not allowed in a Request-URI (§19.1.1) and are stripped there.
    invite = make_invite(record_routes=("<sip:p2.biloxi.com;lr>",
                                        "<sip:p1.atlanta.com;method=INVITE?X-A=1>"))
    dialog = Dialog.from_uac(invite, answer(invite, 200))
    info = dialog.create_request("INFO", via=via("z9hG4bK-info"),
                                 headers=[("Content-Type", "application/dtmf-relay")],
                                 body=b"Signal=5\r\nDuration=160\r\n")
    assert info.serialize() == wire(
        "INFO sip:p1.atlanta.com SIP/2.0\n"
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK-info\n"
        "Max-Forwards: 70\n"
        "Route: <sip:p2.biloxi.com;lr>\n"
        "Route: <sip:bob@192.0.2.4>\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\n"
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n"
        f"Call-ID: {CALL_ID}\n"
        "CSeq: 314160 INFO\n"
        "Content-Type: application/dtmf-relay\n"
        "Content-Length: 24\n\n") + b"Signal=5\r\nDuration=160\r\n"
    # The dialog's route set itself is unchanged.
    assert len(dialog.route_set) == 2


def test_no_route_set_sends_to_remote_target_without_route() -> None:
    dialog = uas_dialog(200, record_routes=())
    bye = dialog.create_request("BYE", via=bob_via("z9hG4bK-b"))
    assert str(bye.uri) == "sip:alice@pc33.atlanta.com"
    assert bye.headers.get_all("Route") == []
    assert bye.headers.get("From") == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert bye.headers.get("To") == "Alice <sip:alice@atlanta.com>;tag=1928301774"
    # Bob never sent a request in this dialog: his first CSeq is 1.
    assert bye.headers.get("CSeq") == "1 BYE"


def test_cseq_increments_and_ack_cancel_reuse_the_invite_number() -> None:
    dialog = uac_dialog(200)
    # The 2xx ACK of the initial INVITE carries its number.
    assert dialog.create_request("ACK", via=via("b1")).headers.get("CSeq") == "314159 ACK"
    assert dialog.create_request("INFO", via=via("b2")).headers.get("CSeq") == "314160 INFO"
    reinvite = dialog.create_request("INVITE", via=via("b3"))
    assert reinvite.headers.get("CSeq") == "314161 INVITE"
    assert reinvite.headers.get("Contact") == ALICE_CONTACT  # §12.2.1.1: target refresh
    assert dialog.create_request("CANCEL", via=via("b3")).headers.get("CSeq") == "314161 CANCEL"
    assert dialog.create_request("ACK", via=via("b4")).headers.get("CSeq") == "314161 ACK"
    assert dialog.create_ack(314159, via("b5")).headers.get("CSeq") == "314159 ACK"
    assert dialog.create_request("BYE", via=via("b6")).headers.get("CSeq") == "314162 BYE"
    assert dialog.local_seq == 314162


def test_ack_has_the_same_uri_and_routes_as_other_requests() -> None:
    dialog = uac_dialog(200)
    ack = dialog.create_ack(314159, via("z9hG4bK-ack"), body=b"v=0\r\n")
    bye = dialog.create_request("BYE", via=via("z9hG4bK-bye"))
    assert ack.uri == bye.uri
    assert ack.headers.get_all("Route") == bye.headers.get_all("Route")
    assert ack.headers.get("Contact") is None
    assert ack.body == b"v=0\r\n"


def test_new_contact_on_reinvite_becomes_the_default() -> None:
    dialog = uac_dialog(200)
    dialog.create_request("INVITE", via=via("b1"), contact=NameAddr.parse("<sip:alice@10.9.9.9>"))
    update = dialog.create_request("UPDATE", via=via("b2"))
    assert update.headers.get("Contact") == "<sip:alice@10.9.9.9>"


def test_ack_or_cancel_without_an_invite_is_our_bug() -> None:
    dialog = uas_dialog(200)
    with pytest.raises(LocalProtocolError, match=r"^no INVITE in this dialog for CANCEL to reuse$"):
        dialog.create_request("CANCEL", via=bob_via("b"))


def test_cancel_of_the_initial_invite_is_not_built_from_the_dialog() -> None:
    dialog = uac_dialog(180)
    with pytest.raises(LocalProtocolError, match=r"^build the CANCEL of the initial INVITE"):
        dialog.create_request("CANCEL", via=via("z9hG4bK776asdhds"))


def test_caller_may_not_set_dialog_headers() -> None:
    dialog = uac_dialog(200)
    with pytest.raises(LocalProtocolError, match=r"^the dialog sets the cseq header itself$"):
        dialog.create_request("INFO", via=via("b"), headers=[("cseq", "1 INFO")])
    assert dialog.local_seq == 314160  # the number was spent; harmless, never reused


# --- requests from the peer (§12.2.2) ------------------------------------------------


def test_lower_cseq_is_answered_500_and_leaves_state() -> None:
    dialog = uas_dialog(200)
    dialog.receive_request(in_dialog_request("INFO", 314165))
    assert dialog.remote_seq == 314165
    with pytest.raises(DialogError) as info:
        dialog.receive_request(in_dialog_request("BYE", 314160))
    assert str(info.value) == ("CSeq 314160 is lower than the dialog's remote sequence "
                               "number 314165")
    assert info.value.status == 500
    assert dialog.remote_seq == 314165
    assert dialog.state is DialogState.CONFIRMED


def test_ack_and_cancel_with_the_invite_number_are_accepted() -> None:
    dialog = uas_dialog(200)
    dialog.receive_request(in_dialog_request("INFO", 314160))
    # The 2xx ACK of the initial INVITE may arrive after the INFO over UDP.
    dialog.receive_request(in_dialog_request("ACK", 314159))
    dialog.receive_request(in_dialog_request("CANCEL", 314159))
    assert dialog.remote_seq == 314160


def test_first_request_from_the_callee_sets_remote_seq() -> None:
    dialog = uac_dialog(200)
    bye = parse_message(wire(
        "BYE sip:alice@pc33.atlanta.com SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\n"
        "Max-Forwards: 70\n"
        "From: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n"
        "To: Alice <sip:alice@atlanta.com>;tag=1928301774\n"
        f"Call-ID: {CALL_ID}\n"
        "CSeq: 7 BYE\n"
        "Content-Length: 0\n\n"))
    assert isinstance(bye, Request)
    dialog.receive_request(bye)
    assert dialog.remote_seq == 7


def test_reinvite_refreshes_remote_target_but_bye_does_not() -> None:
    dialog = uas_dialog(200)
    dialog.receive_request(in_dialog_request("INVITE", 314160, contact="<sip:alice@10.0.0.7>"))
    assert dialog.remote_target.serialize() == "sip:alice@10.0.0.7"
    dialog.receive_request(in_dialog_request("UPDATE", 314161, contact="<sip:alice@10.0.0.8>"))
    assert dialog.remote_target.serialize() == "sip:alice@10.0.0.8"
    dialog.receive_request(in_dialog_request("BYE", 314162, contact="<sip:alice@10.0.0.9>"))
    assert dialog.remote_target.serialize() == "sip:alice@10.0.0.8"
    assert str(dialog.create_request("INFO", via=bob_via("c")).uri) == "sip:alice@10.0.0.8"


def test_rejected_reinvite_does_not_refresh_target() -> None:
    dialog = uas_dialog(200)
    dialog.receive_request(in_dialog_request("INFO", 314170))
    with pytest.raises(DialogError):
        dialog.receive_request(in_dialog_request("INVITE", 314169,
                                                 contact="<sip:alice@10.0.0.7>"))
    assert dialog.remote_target.serialize() == "sip:alice@pc33.atlanta.com"


def test_request_for_another_dialog_is_our_routing_bug() -> None:
    dialog = uac_dialog(200)
    with pytest.raises(LocalProtocolError, match="does not belong to"):
        dialog.receive_request(in_dialog_request("BYE", 1))


# --- responses inside the dialog (§12.2.1.2) -----------------------------------------


def test_2xx_to_reinvite_refreshes_remote_target() -> None:
    dialog = uac_dialog(200)
    response = in_dialog_response(dialog, "INVITE", 314160, 200, contact="<sip:bob@10.1.1.1>")
    dialog.receive_response(response)
    assert dialog.remote_target.serialize() == "sip:bob@10.1.1.1"
    bye = dialog.create_request("BYE", via=via("b"))
    assert str(bye.uri) == "sip:bob@10.1.1.1"


def test_non_2xx_to_reinvite_keeps_remote_target() -> None:
    dialog = uac_dialog(200)
    dialog.receive_response(
        in_dialog_response(dialog, "INVITE", 314160, 488, contact="<sip:bob@10.1.1.1>"))
    assert dialog.remote_target.serialize() == "sip:bob@192.0.2.4"
    assert dialog.state is DialogState.CONFIRMED


def test_early_dialog_is_confirmed_by_2xx_with_route_set_recomputed() -> None:
    invite = make_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 183))
    ok = answer(invite, 200, contact="<sip:bob@192.0.2.5>")
    ok.headers.remove("Record-Route")
    ok.headers.add("Record-Route", "<sip:p1.atlanta.com;lr>")
    dialog.receive_response(ok)
    assert dialog.state is DialogState.CONFIRMED
    assert [r.serialize() for r in dialog.route_set] == ["<sip:p1.atlanta.com;lr>"]
    assert dialog.remote_target.serialize() == "sip:bob@192.0.2.5"


def test_non_2xx_final_to_the_initial_invite_ends_the_early_dialog() -> None:
    invite = make_invite()
    dialog = Dialog.from_uac(invite, answer(invite, 180))
    dialog.receive_response(answer(invite, 486))
    assert dialog.state is DialogState.TERMINATED


@pytest.mark.parametrize("status", [481, 408])
def test_481_or_408_to_an_in_dialog_request_terminates(status: int) -> None:
    dialog = uac_dialog(200)
    dialog.receive_response(in_dialog_response(dialog, "INFO", 314160, status))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(LocalProtocolError, match=r"^cannot send BYE in a terminated dialog$"):
        dialog.create_request("BYE", via=via("b"))


def test_other_errors_keep_the_dialog() -> None:
    dialog = uac_dialog(200)
    dialog.receive_response(in_dialog_response(dialog, "INFO", 314160, 415))
    assert dialog.state is DialogState.CONFIRMED


def test_uas_early_dialog_confirmed_or_ended_by_what_it_sends() -> None:
    invite = make_invite()
    confirmed = Dialog.from_uas(invite, answer(invite, 180))
    confirmed.send_response(answer(invite, 200))
    assert confirmed.state is DialogState.CONFIRMED
    rejected = Dialog.from_uas(invite, answer(invite, 180))
    rejected.send_response(answer(invite, 603))
    assert rejected.state is DialogState.TERMINATED


def test_terminated_dialog_answers_481_to_requests() -> None:
    dialog = uas_dialog(200)
    dialog.terminate()
    with pytest.raises(DialogError, match=r"^the dialog is terminated$") as info:
        dialog.receive_request(in_dialog_request("INFO", 314160))
    assert info.value.status == 481


# --- the table ----------------------------------------------------------------------


def test_forked_early_dialogs_live_side_by_side() -> None:
    invite = make_invite()
    table = DialogTable()
    from_bob = Dialog.from_uac(invite, answer(invite, 180, to_tag="bob-desk"))
    from_mobile = Dialog.from_uac(invite, answer(invite, 180, to_tag="bob-mobile",
                                                 contact="<sip:bob@198.51.100.7>"))
    table.add(from_bob)
    table.add(from_mobile)
    assert len(table) == 2
    assert table.find_for_response(answer(invite, 183, to_tag="bob-mobile")) is from_mobile
    assert table.find_for_response(answer(invite, 183, to_tag="bob-desk")) is from_bob
    assert table.find_for_response(answer(invite, 183, to_tag="bob-tablet")) is None

    from_mobile.receive_response(answer(invite, 200, to_tag="bob-mobile",
                                        contact="<sip:bob@198.51.100.7>"))
    assert from_mobile.state is DialogState.CONFIRMED
    assert from_bob.state is DialogState.EARLY
    assert table.early_dialogs(CALL_ID, "1928301774") == [from_bob]
    assert str(from_mobile.create_request("BYE", via=via("b")).uri) == "sip:bob@198.51.100.7"


def test_table_matches_requests_by_call_id_and_both_tags() -> None:
    table = DialogTable()
    dialog = uas_dialog(200)
    table.add(dialog)
    assert table.find_for_request(in_dialog_request("BYE", 314160)) is dialog
    other_call = in_dialog_request("BYE", 314160)
    other_call.headers.set("Call-ID", "other@host")
    assert table.find_for_request(other_call) is None
    swapped = in_dialog_request("BYE", 314160)
    swapped.headers.set("From", "<sip:alice@atlanta.com>;tag=a6c85cf")
    swapped.headers.set("To", "<sip:bob@biloxi.com>;tag=1928301774")
    assert table.find_for_request(swapped) is None


def test_table_add_duplicate_and_remove() -> None:
    table = DialogTable()
    dialog = uac_dialog(200)
    table.add(dialog)
    with pytest.raises(LocalProtocolError, match="already exists"):
        table.add(uac_dialog(200))
    assert dialog.id in table
    assert table.remove(dialog.id) is dialog
    assert table.remove(dialog.id) is None
    assert len(table) == 0


def test_terminated_dialog_is_not_found() -> None:
    table = DialogTable()
    dialog = uas_dialog(200)
    table.add(dialog)
    dialog.terminate()
    assert table.find_for_request(in_dialog_request("BYE", 314160)) is None
    assert len(table) == 1  # memory is freed by remove(), not by lookups


def test_unknown_dialog_gets_exact_481() -> None:
    request = in_dialog_request("BYE", 314160)
    assert is_in_dialog(request)
    assert DialogTable().find_for_request(request) is None
    response = reject_unknown_dialog(request)
    assert response.serialize() == wire(
        "SIP/2.0 481 Call/Transaction Does Not Exist\n"
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK-x\n"
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\n"
        "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n"
        f"Call-ID: {CALL_ID}\n"
        "CSeq: 314160 BYE\n"
        "Content-Length: 0\n\n")
    assert response == build_response(request, 481)


def test_initial_request_is_not_in_dialog_and_ack_is_never_answered() -> None:
    assert not is_in_dialog(make_invite())
    with pytest.raises(LocalProtocolError, match=r"^an ACK is never answered; drop it$"):
        reject_unknown_dialog(in_dialog_request("ACK", 314159))


# --- both sides over the wire -------------------------------------------------------


def over_the_wire(message: Request | Response) -> Request | Response:
    return parse_message(message.serialize())


def test_full_exchange_both_sides_agree() -> None:
    alice_table, bob_table = DialogTable(), DialogTable()
    invite = make_invite()
    received_invite = over_the_wire(invite)
    assert isinstance(received_invite, Request) and not is_in_dialog(received_invite)

    # Bob rings (early dialog on both sides), then answers.
    ringing = answer(received_invite, 180)
    bob = Dialog.from_uas(received_invite, ringing)
    bob_table.add(bob)
    ringing_at_alice = over_the_wire(ringing)
    assert isinstance(ringing_at_alice, Response)
    alice = Dialog.from_uac(invite, ringing_at_alice)
    alice_table.add(alice)
    assert alice.state is bob.state is DialogState.EARLY

    ok = answer(received_invite, 200)
    bob.send_response(ok)
    ok_at_alice = over_the_wire(ok)
    assert isinstance(ok_at_alice, Response)
    assert alice_table.find_for_response(ok_at_alice) is alice
    alice.receive_response(ok_at_alice)
    assert (alice.state, bob.state) == (DialogState.CONFIRMED, DialogState.CONFIRMED)

    # Each side's id is the other's mirrored; URIs likewise.
    assert (alice.id.local_tag, alice.id.remote_tag) == (bob.id.remote_tag, bob.id.local_tag)
    assert alice.local_uri == bob.remote_uri and alice.remote_uri == bob.local_uri
    # Each walks the same proxies, from its own end.
    assert alice.route_set == list(reversed(bob.route_set))

    ack = over_the_wire(alice.create_ack(314159, via("z9hG4bK-ack")))
    assert isinstance(ack, Request)
    assert bob_table.find_for_request(ack) is bob
    bob.receive_request(ack)

    # Alice moves (re-INVITE with a new Contact); Bob answers from a new address too.
    reinvite = alice.create_request("INVITE", via=via("z9hG4bK-re"),
                                    contact=NameAddr.parse("<sip:alice@10.0.0.7>"))
    reinvite_at_bob = over_the_wire(reinvite)
    assert isinstance(reinvite_at_bob, Request)
    assert bob_table.find_for_request(reinvite_at_bob) is bob
    bob.receive_request(reinvite_at_bob)
    assert bob.remote_seq == 314160
    assert bob.remote_target.serialize() == "sip:alice@10.0.0.7"
    reinvite_ok = build_response(reinvite_at_bob, 200)
    reinvite_ok.headers.add("Contact", "<sip:bob@10.0.0.8>")
    reinvite_ok_at_alice = over_the_wire(reinvite_ok)
    assert isinstance(reinvite_ok_at_alice, Response)
    alice.receive_response(reinvite_ok_at_alice)
    assert alice.remote_target.serialize() == "sip:bob@10.0.0.8"

    # Bob hangs up: his BYE reaches Alice's dialog and is routed to her new address.
    bye = bob.create_request("BYE", via=bob_via("z9hG4bK-bye"))
    assert str(bye.uri) == "sip:alice@10.0.0.7"
    assert bye.headers.get_all("Route") == ["<sip:p2.biloxi.com;lr>",
                                            "<sip:p1.atlanta.com;lr>"]
    bye_at_alice = over_the_wire(bye)
    assert isinstance(bye_at_alice, Request)
    assert alice_table.find_for_request(bye_at_alice) is alice
    alice.receive_request(bye_at_alice)
    assert alice.remote_seq == 1
    alice.terminate()
    assert alice_table.find_for_request(bye_at_alice) is None
    bye_ok = over_the_wire(build_response(bye_at_alice, 200))
    assert isinstance(bye_ok, Response)
    bob.receive_response(bye_ok)
    bob.terminate()
    assert (alice.state, bob.state) == (DialogState.TERMINATED, DialogState.TERMINATED)


# --- properties ----------------------------------------------------------------------

_METHODS = st.sampled_from(["INFO", "BYE", "INVITE", "UPDATE", "OPTIONS", "ACK", "CANCEL"])


@given(st.lists(st.tuples(_METHODS, st.integers(min_value=0, max_value=2**31 - 1)),
                max_size=40))
def test_remote_seq_never_moves_backwards(requests: list[tuple[str, int]]) -> None:
    dialog = uas_dialog(200)
    highest = dialog.remote_seq
    assert highest is not None
    for method, seq in requests:
        before = dialog.remote_seq
        assert before is not None
        try:
            dialog.receive_request(in_dialog_request(method, seq))
        except DialogError as exc:
            assert exc.status == 500
            assert method not in ("ACK", "CANCEL") and seq < before
        after = dialog.remote_seq
        assert after is not None and after >= before
        if method not in ("ACK", "CANCEL"):
            highest = max(highest, seq)
        assert after == highest


_EVENTS = st.one_of(
    st.tuples(st.just("response"), st.sampled_from(["INVITE", "INFO", "BYE", "UPDATE"]),
              st.sampled_from([180, 183, 200, 202, 302, 408, 415, 481, 486, 500, 603])),
    st.tuples(st.just("terminate"), st.just(""), st.just(0)),
)


@given(st.sampled_from([180, 200]), st.lists(_EVENTS, max_size=20))
def test_dialog_state_machine_stays_defined(first_status: int,
                                            events: list[tuple[str, str, int]]) -> None:
    invite = make_invite()
    dialog = Dialog.from_uac(invite, answer(invite, first_status))
    was_confirmed = dialog.state is DialogState.CONFIRMED
    for kind, method, status in events:
        before = dialog.state
        if kind == "terminate":
            dialog.terminate()
        else:
            seq = 314159 if method == "INVITE" else 314160
            response = answer(invite, status)
            response.headers.set("CSeq", f"{seq} {method}")
            dialog.receive_response(response)
        assert dialog.state in DialogState
        if before is DialogState.TERMINATED:
            assert dialog.state is DialogState.TERMINATED  # absorbing
        was_confirmed = was_confirmed or dialog.state is DialogState.CONFIRMED
        if was_confirmed:
            assert dialog.state is not DialogState.EARLY  # never back to early


def test_strict_route_uri_is_a_sip_uri_without_headers() -> None:
    uri = parse_uri("sip:p1.atlanta.com;method=INVITE?X-A=1")
    assert isinstance(uri, SipUri)
    dialog = uac_dialog(200, record_routes=(f"<{uri}>",))
    request = dialog.create_request("OPTIONS", via=via("b"))
    assert request.uri == SipUri("p1.atlanta.com")
    assert request.headers.get_all("Route") == ["<sip:bob@192.0.2.4>"]
