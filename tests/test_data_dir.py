"""The data directory is the owner's only: what a command makes under the umask it sets
(SQLite's database, WAL and shared-memory files included), and what was left open
before, which ``secure_data_dir`` closes with one line in the log."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps import Database, UserService, upgrade_database
from callcenter.data_dir import Tightened, keep_private, secure_data_dir, tighten


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def restore_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def make_open_tree(root: Path) -> dict[Path, int]:
    """Files and directories as an older version left them; the modes they must get."""
    (root / "recordings" / "2024").mkdir(parents=True)
    (root / "imports" / "job").mkdir(parents=True)
    expected = {
        root: 0o700,
        root / "recordings": 0o700,
        root / "recordings" / "2024": 0o700,
        root / "imports": 0o700,
        root / "imports" / "job": 0o700,
        root / "callcenter.sqlite3": 0o600,
        root / "recordings" / "2024" / "call.wav": 0o600,
        root / "imports" / "job" / "upload.xlsx": 0o600,
        root / "tool.sh": 0o700,
        root / "web_secret": 0o600,
    }
    modes = {root / "tool.sh": 0o755, root / "web_secret": 0o600,
             root / "imports" / "job" / "upload.xlsx": 0o640}
    for path in expected:
        if not path.exists():
            path.write_bytes(b"x")
        path.chmod(modes.get(path, 0o755 if path.is_dir() else 0o644))
    return expected


def test_everything_open_to_others_is_closed_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    expected = make_open_tree(root)
    outside = tmp_path / "shared.txt"
    outside.write_text("not ours to hide")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    assert tighten(root) == Tightened(changed=len(expected) - 1, failed=0)  # not web_secret
    assert {path: mode_of(path) for path in expected} == expected
    assert mode_of(outside) == 0o644  # a link is neither followed nor changed
    assert tighten(root) == Tightened(0, 0)


def test_secure_data_dir_says_in_one_line_how_many_it_closed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_umask: None) -> None:
    root = tmp_path / "data"
    expected = make_open_tree(root)
    with caplog.at_level(logging.INFO, logger="callcenter.data_dir"):
        secure_data_dir(root)
        secure_data_dir(root)  # nothing left to close: nothing said
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"{root}: {len(expected) - 1} files and directories were open to other "
                    "local users; they are now the owner's only")]
    assert os.umask(0o077) == 0o077


def test_a_new_data_dir_is_made_owner_only(tmp_path: Path, restore_umask: None) -> None:
    root = tmp_path / "new" / "data"
    assert secure_data_dir(root) == Tightened(0, 0)
    assert mode_of(root) == mode_of(root.parent) == 0o700


async def test_sqlite_files_made_under_the_umask_are_owner_only(
        tmp_path: Path, restore_umask: None) -> None:
    keep_private()
    path = tmp_path / "data" / "callcenter.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_database(url)
    db = await Database.connect(url)
    try:
        await UserService(db, "callcenter").add_user("zhang", "long enough", "2001")
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()  # open while a connection is
        assert [mode_of(p) for p in (path.parent, path, wal, shm)] == [
            0o700, 0o600, 0o600, 0o600]
        descriptor = os.open(tmp_path / "recording.wav", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(descriptor)  # as switch/media/recorder.pyx opens a recording
        assert mode_of(tmp_path / "recording.wav") == 0o600
    finally:
        await db.close()
