"""Areas of the web UI add their strings to the one catalogue; none may change another's."""

from __future__ import annotations

import pytest

from web.errors import WebError
from web.i18n import MESSAGES, add_messages, translate


def test_an_area_adds_its_strings_and_may_repeat_identical_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("web.i18n.MESSAGES", dict(MESSAGES))
    add_messages("test", {"test.hello": {"zh": "你好", "en": "Hello"},
                          "header.logout": dict(MESSAGES["header.logout"])})
    assert translate("en", "test.hello") == "Hello"


def test_a_string_that_would_change_another_areas_text_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("web.i18n.MESSAGES", dict(MESSAGES))
    with pytest.raises(WebError, match=r"^test UI strings clash with others: header\.logout$"):
        add_messages("test", {"header.logout": {"zh": "走", "en": "Go"}})
    assert translate("en", "header.logout") == "Log out"
