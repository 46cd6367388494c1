"""What routes read from a request, checked in one place: ids in paths, JSON bodies, and
ids inside bodies and forms. Malformed input is a ``BadInput`` (the route answers 400)
or an id no row has (404): never an exception from deeper down (a 500).

- ``{name:id}`` in a route path takes the digits Starlette's ``int`` takes, but an id
  larger than any row can have arrives as ``ABSENT_ID`` (no row has it either), so the
  route answers its own "no such ..." 404. Starlette's ``int`` passed a 20-digit id on to
  the database driver, which cannot bind it (OverflowError).
- ``json_object`` reads the body as a JSON object. Not JSON, not UTF-8, or nested deeper
  than ``MAX_JSON_DEPTH`` (100000 nested lists made the parser raise RecursionError):
  BadInput.
- ``id_field`` reads an id from a body or a form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request

from web.errors import WebError
from web.i18n import add_messages, translate
from web.templating import language_of

# Ids are INTEGER columns: 32 bits on PostgreSQL, the narrower of our two databases.
MAX_ID: Final = 2**31 - 1
ABSENT_ID: Final = 0  # ids start at 1
MAX_JSON_DEPTH: Final = 32  # our bodies nest three levels at most

INPUT_MESSAGES: dict[str, dict[str, str]] = {
    "input.not_json_object": {
        "zh": "请求正文必须是一个 JSON 对象", "en": "The body must be a JSON object"},
    "input.too_deep": {
        "zh": "请求正文的 JSON 嵌套超过 {depth} 层",
        "en": "The body's JSON is nested more than {depth} levels deep"},
    "input.bad_id": {
        "zh": "“{name}”必须是 1 到 {max_id} 之间的编号",
        "en": "'{name}' must be an id from 1 to {max_id}"},
}

add_messages("request input", INPUT_MESSAGES)


class BadInput(WebError):
    """A field or body that is missing, of the wrong type or out of range. ``str()`` is
    the English text; ``in_language`` the page's, for the messages the catalogue has."""

    def __init__(self, message: str, *, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params

    @classmethod
    def of(cls, key: str, **params: object) -> BadInput:
        return cls(translate("en", key, **params), key=key, **params)

    def in_language(self, lang: str) -> str:
        return str(self) if self.key is None else translate(lang, self.key, **self.params)


class IdConvertor(Convertor[int]):
    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        number = _id_digits(value)
        return ABSENT_ID if number is None else number

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", IdConvertor())


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
        raise BadInput.of("input.not_json_object") from None
    if not isinstance(body, dict):
        raise BadInput.of("input.not_json_object")
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        raise BadInput.of("input.too_deep", depth=MAX_JSON_DEPTH)
    return body


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep. Iterative, so
    that checking depth needs no recursion itself."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in item)
    return False


def _id_digits(text: str) -> int | None:
    """The id written as ``text`` (ASCII digits), or None past MAX_ID. Long strings are
    not given to int(), which refuses more than 4300 digits (ValueError)."""
    digits = text.lstrip("0")
    if len(digits) > len(str(MAX_ID)):
        return None
    number = int(digits or "0")
    return number if number <= MAX_ID else None


def reason(request: Request, error: Exception) -> str:
    """Why a request was refused: a BadInput in the caller's language, where the
    catalogue has its message; any other error's own message."""
    if isinstance(error, BadInput):
        return error.in_language(language_of(request))
    return str(error)


def id_field(data: Mapping[str, Any], name: str) -> int:
    """``data[name]`` as an id a row may have: a JSON integer or a form's digits."""
    value = data.get(name)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = _id_digits(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadInput.of("input.bad_id", name=name, max_id=MAX_ID)
    return value
