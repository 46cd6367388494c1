"""The key that signs session cookies: made once, kept in <data dir>/web_secret (0600),
so sessions survive a restart and no operator has to invent one."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from web.errors import WebError

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "web_secret"
MIN_SECRET_LENGTH = 32


def _new_secret() -> str:
    return secrets.token_urlsafe(48)


def load_or_create_secret(data_dir: Path, *, make: Callable[[], str] = _new_secret) -> str:
    path = data_dir / SECRET_FILE_NAME
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(make() + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); set it to 600", path, mode)
        path.chmod(0o600)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < MIN_SECRET_LENGTH:
        raise WebError(
            f"{path} holds a key shorter than {MIN_SECRET_LENGTH} characters; "
            "delete the file to have a new one made (everyone is logged out)"
        )
    return secret
