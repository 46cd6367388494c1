"""The data directory is private: it holds the database (and in it the phones' HA1
digests), its WAL and shared-memory files, the key that signs web sessions, uploaded
customer sheets and call recordings. Nobody but the account the switch runs as may read
any of it.

Every command sets the umask to 077 first (``keep_private``), so whatever it creates —
by Python, by SQLite or by the Cython recorder's open() — is 0600, a directory 0700.
``serve`` also takes away, at start, what group and others held on files made before
(by an older version or another tool), and says in one line how many it changed.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

PRIVATE_UMASK: Final = 0o077
_OTHERS: Final = 0o077  # the group and other bits of a mode


def keep_private() -> None:
    """Files and directories made from now on by this process are its owner's only."""
    os.umask(PRIVATE_UMASK)


@dataclass(frozen=True)
class Tightened:
    changed: int  # files and directories that lost their group and other bits
    failed: int  # ... that could not be changed (another owner's)


def tighten(data_dir: Path) -> Tightened:
    """Make ``data_dir`` (0700, created if need be) and everything below it owner-only.
    Symbolic links are neither followed nor changed."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    changed = failed = 0
    for directory, subdirs, files in os.walk(data_dir):
        here = Path(directory)
        paths = [here] if here == data_dir else []
        paths += [here / name for name in (*subdirs, *files)]
        for path in paths:
            try:
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not mode & _OTHERS:
                    continue
                path.chmod(stat.S_IMODE(mode) & ~_OTHERS)
            except FileNotFoundError:
                continue  # gone since the directory was listed
            except PermissionError:
                failed += 1
            else:
                changed += 1
    return Tightened(changed, failed)


def secure_data_dir(data_dir: Path) -> Tightened:
    """``keep_private`` and ``tighten``, with a line in the log when anything was open."""
    keep_private()
    result = tighten(data_dir)
    if result.changed:
        log.warning("%s: %d files and directories were open to other local users; "
                    "they are now the owner's only", data_dir, result.changed)
    if result.failed:
        log.error("%s: %d files and directories are open to other local users and are "
                  "not ours to change; chown them to this account", data_dir, result.failed)
    return result
