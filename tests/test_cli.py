"""The `callcenter` command line, run for real in subprocesses on a temporary data dir."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import apps
from callcenter import cli

pytestmark = pytest.mark.integration  # real SQLite files, real processes

REPO = Path(__file__).resolve().parent.parent


def callcenter(
    data_dir: Path, *args: str, expect: int = 0, db_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m callcenter ARGS` from data_dir's parent with only our variables set."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CALLCENTER_")}
    environ["CALLCENTER_DATA_DIR"] = str(data_dir)
    if db_url is not None:
        environ["CALLCENTER_DB_URL"] = db_url
    environ["PYTHONPATH"] = str(REPO)  # the checkout under test, installed or not
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", *args],
        cwd=data_dir.parent,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == expect, result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"  # does not exist yet: commands must create it


def check_password(data_dir: Path, username: str, password: str) -> bool:
    async def check() -> bool:
        db = await apps.Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            users = apps.UserService(db, "callcenter")
            return await users.verify_web_password(username, password) is not None
        finally:
            await db.close()

    return asyncio.run(check())


def has_sip_credentials(data_dir: Path, extension: str) -> bool:
    async def check() -> bool:
        db = await apps.Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            users = apps.UserService(db, "callcenter")
            return await users.sip_credentials(extension) is not None
        finally:
            await db.close()

    return asyncio.run(check())


def audit_entries(data_dir: Path) -> list[apps.AuditEntry]:
    async def entries() -> list[apps.AuditEntry]:
        db = await apps.Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            return await apps.AuditLog(db).recent(100)
        finally:
            await db.close()

    return asyncio.run(entries())


def test_add_then_list_on_a_fresh_data_dir(data_dir: Path) -> None:
    assert callcenter(data_dir, "user", "list").stdout == "no users\n"
    assert (data_dir / "callcenter.sqlite3").is_file()

    added = callcenter(
        data_dir,
        "user", "add", "--username", "alice", "--password", "correct horse",
        "--extension", "1001", "--name", "张三",
    )  # fmt: skip
    assert added.stdout == "added user 'alice' (agent, extension 1001)\n"
    added = callcenter(
        data_dir, "user", "add", "--username", "bob", "--password", "battery staple",
        "--role", "supervisor",
    )  # fmt: skip
    assert added.stdout == "added user 'bob' (supervisor)\n"

    lines = callcenter(data_dir, "user", "list").stdout.splitlines()
    assert lines[0].split() == [
        "USERNAME", "EXTENSION", "ROLE", "STATUS", "NAME", "CREATED", "(UTC)"]
    assert lines[1].split()[:5] == ["alice", "1001", "agent", "active", "张三"]
    assert lines[2].split()[:5] == ["bob", "-", "supervisor", "active", "-"]
    assert len(lines) == 3
    # Columns line up on screen: the double-width name counts as four columns, not two.
    created_column = lines[0].index("CREATED")
    for line in lines[1:]:
        date = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d$", line)
        assert date is not None
        assert cli._width(line[: date.start()]) == created_column
    assert check_password(data_dir, "alice", "correct horse")


def test_passwd_changes_the_password(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "carol", "--password", "first password")
    result = callcenter(data_dir, "user", "passwd", "carol", "--password", "second password")
    assert result.stdout == "password of 'carol' changed; their web sessions are ended\n"
    assert check_password(data_dir, "carol", "second password")
    assert not check_password(data_dir, "carol", "first password")


def test_passwd_ends_the_users_web_sessions(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "carol", "--password", "first password")

    async def in_store(step: str, session_id: str = "") -> str:
        db = await apps.Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            store = apps.WebSessionStore(db, idle_timeout_s=3600)
            if step == "start":
                [carol] = await apps.UserService(db, "callcenter").list_users()
                return await store.start(carol.id)
            return "live" if await store.resume(session_id) is not None else "ended"
        finally:
            await db.close()

    session_id = asyncio.run(in_store("start"))
    assert asyncio.run(in_store("resume", session_id)) == "live"
    callcenter(data_dir, "user", "passwd", "carol", "--password", "second password")
    assert asyncio.run(in_store("resume", session_id)) == "ended"


def test_disable_stops_login_and_phone_and_enable_restores_them(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "frank", "--password", "frank password",
               "--extension", "1009")
    result = callcenter(data_dir, "user", "disable", "frank")
    assert result.stdout == "user 'frank' disabled: no web login, no phone; history kept\n"
    assert callcenter(data_dir, "user", "list").stdout.splitlines()[1].split()[:4] == [
        "frank", "1009", "agent", "disabled"]
    assert not check_password(data_dir, "frank", "frank password")
    assert not has_sip_credentials(data_dir, "1009")

    assert callcenter(data_dir, "user", "enable", "frank").stdout == "user 'frank' enabled\n"
    assert callcenter(data_dir, "user", "list").stdout.splitlines()[1].split()[3] == "active"
    assert check_password(data_dir, "frank", "frank password")
    assert has_sip_credentials(data_dir, "1009")


def test_user_changes_are_audited_as_the_system_from_the_command_line(
    data_dir: Path,
) -> None:
    callcenter(data_dir, "user", "add", "--username", "gina", "--password", "gina password",
               "--extension", "1011", "--role", "supervisor")
    callcenter(data_dir, "user", "disable", "gina")
    callcenter(data_dir, "user", "enable", "gina")
    callcenter(data_dir, "user", "passwd", "gina", "--password", "another password")
    callcenter(data_dir, "user", "disable", "nobody", expect=1)  # refused: nothing audited

    found = audit_entries(data_dir)
    assert [(e.action, e.actor, e.target, e.source_ip) for e in reversed(found)] == [
        ("user.create", "system", "user:gina", "command-line"),
        ("user.disable", "system", "user:gina", "command-line"),
        ("user.enable", "system", "user:gina", "command-line"),
        ("user.password_reset", "system", "user:gina", "command-line"),
    ]
    assert found[-1].detail == {"role": "supervisor", "extension": "1011"}


def test_disable_of_an_unknown_user_is_an_error(data_dir: Path) -> None:
    result = callcenter(data_dir, "user", "disable", "nobody", expect=1)
    assert result.stderr == "callcenter: no such user 'nobody'\n"
    assert result.stdout == ""


def test_duplicate_user_is_an_error(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "dave", "--password", "pass word 1")
    result = callcenter(
        data_dir, "user", "add", "--username", "dave", "--password", "pass word 2", expect=1
    )
    assert result.stderr == "callcenter: user 'dave' already exists\n"
    assert result.stdout == ""


def test_bad_role_is_an_error(data_dir: Path) -> None:
    result = callcenter(
        data_dir, "user", "add", "--username", "erin", "--password", "pass word 1",
        "--role", "boss", expect=1,
    )  # fmt: skip
    assert result.stderr == (
        "callcenter: unknown role 'boss' (choose from admin, service_manager, shift_leader,"
        " supervisor, agent, account_manager)\n"
    )
    assert callcenter(data_dir, "user", "list").stdout == "no users\n"


def test_passwd_of_unknown_user_is_an_error(data_dir: Path) -> None:
    result = callcenter(data_dir, "user", "passwd", "nobody", "--password", "whatever1", expect=1)
    assert result.stderr == "callcenter: no such user 'nobody'\n"


def test_config_error_is_reported_without_traceback(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[sip]\nlisten = 5060\n", encoding="utf-8")
    for args in (
        ["--config", "bad.toml", "user", "list"],
        ["user", "list", "--config", "bad.toml"],
    ):
        result = callcenter(data_dir, *args, expect=1)
        assert result.stderr == (
            'callcenter: bad.toml: [sip] listen: expected "host:port", got 5060\n'
        )
    assert not data_dir.exists()


def test_config_file_in_working_directory_is_used(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "callcenter.toml").write_text('[data]\ndir = "elsewhere"\n', encoding="utf-8")
    # CALLCENTER_DATA_DIR still wins over the file.
    callcenter(data_dir, "db", "upgrade")
    assert (data_dir / "callcenter.sqlite3").is_file()
    assert not (tmp_path / "elsewhere").exists()


def test_db_upgrade(data_dir: Path) -> None:
    assert callcenter(data_dir, "db", "upgrade").stdout == "database schema is up to date\n"
    assert callcenter(data_dir, "db", "upgrade").stdout == "database schema is up to date\n"


def test_usage_errors_exit_2(data_dir: Path) -> None:
    result = callcenter(data_dir, "user", "add", "--password", "x", expect=2)
    assert "the following arguments are required: --username" in result.stderr
    callcenter(data_dir, "frobnicate", expect=2)
    callcenter(data_dir, expect=2)
    assert not data_dir.exists()


def test_database_errors_are_reported(data_dir: Path) -> None:
    result = callcenter(data_dir, "user", "list", expect=1, db_url="nonsense")
    assert result.stderr == (
        "callcenter: cannot use the database: Could not parse SQLAlchemy URL from given URL"
        " string\n"
    )


def test_passwd_prompts_twice(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(data_dir))
    monkeypatch.chdir(data_dir.parent)
    callcenter(data_dir, "user", "add", "--username", "frank", "--password", "old password")

    answers = iter(["new password", "typo password"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(cli.getpass, "getpass", fake_getpass)
    assert cli.main(["user", "passwd", "frank"]) == 1
    assert capsys.readouterr().err == "callcenter: passwords do not match\n"
    assert prompts == ["New password: ", "Repeat password: "]

    answers = iter(["new password", "new password"])
    assert cli.main(["user", "passwd", "frank"]) == 0
    assert check_password(data_dir, "frank", "new password")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "callcenter"
    if not script.exists():
        pytest.fail(f"{script} missing: run `pip install -e .[test]` (./test.sh does)")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "serve" in result.stdout and "user" in result.stdout


def acts_as(data_dir: Path, token: str) -> str | None:
    """The username the token acts as now, or None."""
    async def check() -> str | None:
        db = await apps.Database.connect(f"sqlite+aiosqlite:///{data_dir}/callcenter.sqlite3")
        try:
            found = await apps.ApiTokenService(db, apps.AuditLog(db)).authenticate(token)
            return None if found is None else found.username
        finally:
            await db.close()

    return asyncio.run(check())


def test_token_create_prints_the_token_once_and_list_never(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "crm", "--password", "crm password")
    callcenter(data_dir, "user", "add", "--username", "ivy", "--password", "ivy password")
    assert callcenter(data_dir, "token", "list").stdout == "no tokens\n"
    made = callcenter(data_dir, "token", "create", "--user", "crm", "--name", "CRM 同步")
    token = made.stdout.strip()
    assert re.fullmatch(r"cc_[A-Za-z0-9_-]{43}", token)
    assert made.stdout == token + "\n"  # only the token: TOKEN=$(callcenter token create ...)
    assert made.stderr == (
        "token 1 for 'crm' created: it is shown only this once, keep it secret\n")
    other = callcenter(data_dir, "token", "create", "--user", "ivy").stdout.strip()
    assert other != token
    assert (acts_as(data_dir, token), acts_as(data_dir, other)) == ("crm", "ivy")

    listing = callcenter(data_dir, "token", "list")
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "USER", "LABEL", "CREATED", "(UTC)", "LAST", "USED",
                                "(UTC)", "REVOKED", "(UTC)"]
    assert re.fullmatch(r"1   crm   CRM 同步  \d{4}-\d\d-\d\d \d\d:\d\d  "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d  -", lines[1]), lines[1]
    assert re.fullmatch(r"2   ivy   -         \d{4}-\d\d-\d\d \d\d:\d\d  "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d  -", lines[2]), lines[2]
    assert len(lines) == 3
    assert token not in listing.stdout + listing.stderr
    only = callcenter(data_dir, "token", "list", "--user", "ivy").stdout.splitlines()
    assert [line.split()[:2] for line in only[1:]] == [["2", "ivy"]]


def test_token_revoke_stops_the_token_and_both_are_audited(data_dir: Path) -> None:
    callcenter(data_dir, "user", "add", "--username", "crm", "--password", "crm password")
    token = callcenter(data_dir, "token", "create", "--user", "crm", "--name", "nightly"
                       ).stdout.strip()
    revoked = callcenter(data_dir, "token", "revoke", "1")
    assert revoked.stdout == "token 1 of 'crm' revoked\n"
    assert acts_as(data_dir, token) is None
    # REVOKED, the last column, has the time now.
    assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d$",
                     callcenter(data_dir, "token", "list").stdout.splitlines()[1])
    again = callcenter(data_dir, "token", "revoke", "1", expect=1)
    assert again.stderr == "callcenter: token 1 is already revoked\n"
    unknown = callcenter(data_dir, "token", "revoke", "7", expect=1)
    assert unknown.stderr == "callcenter: no such token 7\n"

    found = audit_entries(data_dir)
    assert [(e.action, e.actor, e.target, dict(e.detail), e.source_ip)
            for e in reversed(found) if e.action.startswith("token.")] == [
        ("token.create", "system", "user:crm", {"token_id": 1, "label": "nightly"},
         "command-line"),
        ("token.revoke", "system", "user:crm", {"token_id": 1, "label": "nightly"},
         "command-line"),
    ]
    assert not any(token in repr(entry) for entry in found)


def test_token_commands_refuse_unknown_and_disabled_users(data_dir: Path) -> None:
    result = callcenter(data_dir, "token", "create", "--user", "nobody", expect=1)
    assert (result.stdout, result.stderr) == ("", "callcenter: no such user 'nobody'\n")
    result = callcenter(data_dir, "token", "list", "--user", "nobody", expect=1)
    assert result.stderr == "callcenter: no such user 'nobody'\n"
    callcenter(data_dir, "user", "add", "--username", "gone", "--password", "gone password")
    token = callcenter(data_dir, "token", "create", "--user", "gone").stdout.strip()
    callcenter(data_dir, "user", "disable", "gone")
    assert acts_as(data_dir, token) is None
    callcenter(data_dir, "user", "enable", "gone")
    assert acts_as(data_dir, token) is None  # revoked with the disabling, for good
    callcenter(data_dir, "user", "disable", "gone")
    result = callcenter(data_dir, "token", "create", "--user", "gone", expect=1)
    assert (result.stdout, result.stderr) == ("", "callcenter: user 'gone' is disabled\n")
    assert callcenter(data_dir, "token", "revoke", "x", expect=2).stdout == ""
