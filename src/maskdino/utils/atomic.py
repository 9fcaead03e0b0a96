"""Atomic file writes that honour the umask: readers never see a partial file, teammates can read it.

`tempfile.mkstemp` creates files with mode 0600 whatever the umask, so weights written through it could
not be read by another user or a serving process; the temporary file here is created with `os.open(...,
0o666)`, which the umask trims exactly as for any other file (0644 under umask 022).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """`<name>.<random>.tmp` beside `path` (the pattern `stale_temporary_files` looks for)."""
    return path.with_name(f"{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """`write(tmp)` into a fresh temporary file beside `path`, then rename it over `path`.

    On any error the temporary file is removed and `path` keeps its previous content.
    """
    path = Path(path)
    tmp = temporary_path(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def stale_temporary_files(directory: str | Path, prefixes: tuple[str, ...]) -> list[Path]:
    """`*.tmp` files whose names start with one of `prefixes`: left in `directory` by killed writes."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.endswith(TMP_SUFFIX) and p.is_file() and p.name.startswith(prefixes)
    )
