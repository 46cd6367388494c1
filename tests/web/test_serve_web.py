"""`callcenter serve` starts the web UI in its own event loop: the real process, a demo
account printed at first start, logging in over HTTP, and a clean stop."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.switch_process import SwitchProcess

pytestmark = pytest.mark.integration

_WEB_LINE = re.compile(r"Web UI on (http://127\.0\.0\.1:(\d+))")


class WebSwitchProcess(SwitchProcess):
    """SwitchProcess puts the web UI on an ephemeral port; this one reads it back."""

    def web_url(self) -> str:
        assert self.reader is not None
        deadline = time.monotonic() + 10
        while True:
            for line in self.stdout_lines:
                match = _WEB_LINE.search(line)
                if match:
                    return match.group(1)
            more = self.reader.read_line(deadline)
            assert more is not None, self.log()
            self.stdout_lines.append(more)


def test_serve_runs_the_web_ui_and_a_demo_account_logs_in(tmp_path: Path) -> None:
    switch = WebSwitchProcess(tmp_path)
    switch.start()
    try:
        url = switch.web_url()
        line = next(line for line in switch.stdout_lines if line.lstrip().startswith("admin "))
        password = line.split("password ")[1].strip()
        secret = tmp_path / "data" / "web_secret"
        assert secret.stat().st_mode & 0o777 == 0o600
        with httpx.Client(base_url=url, follow_redirects=False) as client:
            assert client.get("/health").json() == {"status": "ok"}
            assert client.get("/desktop").status_code == 303
            token = client.get("/api/v1/session").json()["csrf_token"]
            wrong = client.post("/api/v1/session", json={"username": "admin",
                                                         "password": "wrong-password"},
                                headers={"X-CSRF-Token": token})
            assert wrong.status_code == 401
            response = client.post("/api/v1/session",
                                   json={"username": "admin", "password": password},
                                   headers={"X-CSRF-Token": token})
            assert response.status_code == 200, response.text
            me = client.get("/api/v1/me").json()
            assert (me["username"], me["role"], me["role_label"]) == ("admin", "admin",
                                                                      "系统管理员")
            assert "users.manage" in me["permissions"]  # role defaults from apps.permissions
    finally:
        assert switch.stop() == 0
    assert "Traceback" not in switch.log()


class TakenPortProcess(SwitchProcess):
    web_listen = ""

    def env(self) -> dict[str, str]:
        return {**super().env(), "CALLCENTER_WEB_LISTEN": self.web_listen}


def test_a_taken_web_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        switch = TakenPortProcess(tmp_path)
        switch.web_listen = f"127.0.0.1:{port}"
        with pytest.raises(RuntimeError, match="switch exited"):
            switch.start()
        assert switch.stop() == 1  # also closes its output pipe
        assert f"callcenter: web UI cannot listen on 127.0.0.1:{port}: Address already in use" \
            in switch.log()
        assert "Traceback" not in switch.log()
    finally:
        taken.close()
