"""`callcenter serve` keeps its data directory to itself: on a data dir an older version
left readable by everyone, it closes what was open (saying how much), and what it makes
while running — the database with its WAL and shared memory, the web key, a call
recording written by the recorder, an uploaded customer sheet — is 0600 in 0700
directories."""

from __future__ import annotations

import io
import stat
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from tests.integration.test_internal_call import PASSWORDS, Phone, media_of
from tests.web.test_serve_web import WebSwitchProcess

pytestmark = pytest.mark.integration

CONFIG = ('[rtp]\nports = "43100-43199"\n[sip.auth]\nalgorithms = ["MD5", "SHA-256"]\n'
          '[recording]\nenabled = true\n[[routes]]\nextension = true\n')
ADMIN_PASSWORD = "admin-password-1"
WAIT_S = 10.0


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def open_to_others(data: Path) -> list[Path]:
    return sorted(path for path in (data, *data.rglob("*")) if mode_of(path) & 0o077)


def sheet() -> bytes:
    workbook = Workbook()
    workbook.active.append(["客户名称", "手机"])
    workbook.active.append(["王小明", "13800138000"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def wait_for(find: Callable[[], list[Path]], what: str) -> list[Path]:
    """What ``find`` finds, once it finds something (the recorder's thread writes the
    file)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if found := find():
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {WAIT_S} s")


def make_a_recorded_call(switch: WebSwitchProcess) -> None:
    caller, callee = Phone(switch, "2001"), Phone(switch, "2002")
    try:
        callee.register()
        call = caller.call("2002")
        invite = callee.request("INVITE")
        _, to_callee = media_of(invite.body)
        callee.answer_offer(invite, "callee1")
        answer = call.final()
        assert answer.status == 200
        call.ack(answer)
        callee.request("ACK")
        _, to_caller = media_of(answer.body)
        caller.send_tone(to_caller, ssrc=1)
        callee.send_tone(to_callee, ssrc=2)
        call.bye(answer)
        callee.reply(callee.request("BYE"))
        assert caller.response("BYE").status == 200
    finally:
        caller.close()
        callee.close()


def upload_a_sheet(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        token = client.get("/api/v1/session").json()["csrf_token"]
        login = client.post("/api/v1/session", headers={"X-CSRF-Token": token},
                            json={"username": "boss", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["csrf_token"]
        uploaded = client.post("/api/v1/customer-imports", headers={"X-CSRF-Token": token},
                               files={"file": ("客户.xlsx", sheet())})
        assert uploaded.status_code == 201, uploaded.text


def test_serve_makes_and_keeps_the_data_dir_owner_only(tmp_path: Path) -> None:
    switch = WebSwitchProcess(tmp_path, CONFIG)
    for extension, password in PASSWORDS.items():
        switch.add_user(f"user{extension}", password, extension)
    switch.add_user("boss", ADMIN_PASSWORD, role="admin")
    data = tmp_path / "data"
    old = data / "recordings" / "2020" / "01" / "01" / "old.wav"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"RIFF")
    for path in (data, *data.rglob("*")):  # as an older version, under umask 022, left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    before = open_to_others(data)
    assert len(before) == 7  # data, the database, recordings, 2020, 01, 01, old.wav
    switch.start()
    try:
        make_a_recorded_call(switch)
        upload_a_sheet(switch.web_url())
        recordings = data / "recordings"
        recording = wait_for(lambda: [p for p in recordings.rglob("*.wav") if p != old],
                             "recording")[0]
        imports = data / "imports"
        [upload] = imports.rglob("upload.xlsx")
        [checked] = imports.rglob("checked-*.jsonl")  # the import preview's rows
        database = data / "callcenter.sqlite3"
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        files = [database, wal, shm, data / "web_secret", recording, upload, checked, old]
        directories = [data, recordings, recording.parent, recording.parent.parent.parent,
                       imports, upload.parent, old.parent]
        assert {path: mode_of(path) for path in files} == dict.fromkeys(files, 0o600)
        assert {path: mode_of(path) for path in directories} == dict.fromkeys(
            directories, 0o700)
        assert open_to_others(data) == []
    finally:
        assert switch.stop() == 0
    log = switch.log()
    assert (f"WARNING callcenter.data_dir: {data}: {len(before)} files and directories "
            "were open to other local users; they are now the owner's only") in log
    assert "Traceback" not in log
