"""The session signing key: made once with mode 0600, then reused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from web import WebError, load_or_create_secret


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_or_create_secret(data, make=lambda: "k" * 64)
    assert first == "k" * 64
    assert (data / "web_secret").stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(data, make=lambda: "other" * 20) == first


def test_a_default_key_is_long_and_random(tmp_path: Path) -> None:
    one = load_or_create_secret(tmp_path / "a")
    two = load_or_create_secret(tmp_path / "b")
    assert len(one) >= 64 and one != two


def test_a_key_readable_by_others_is_made_private(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "web_secret"
    path.write_text("s" * 40 + "\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_or_create_secret(tmp_path) == "s" * 40
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"{path} was readable by others (mode 644); set it to 600" in caplog.text


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "web_secret").write_text("short\n")
    (tmp_path / "web_secret").chmod(0o600)
    with pytest.raises(WebError) as error:
        load_or_create_secret(tmp_path)
    assert str(error.value) == (
        f"{tmp_path}/web_secret holds a key shorter than 32 characters; delete the file to "
        "have a new one made (everyone is logged out)")
