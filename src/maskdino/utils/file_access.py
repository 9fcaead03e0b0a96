"""Up-front checks of the files a command reads and the folders it writes, with messages that say the fix.

They run before any work, so an unwritable `--output` is reported at once instead of after an hour of
inference, and an unreadable weights file is reported as a permission problem instead of a missing or
truncated file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from maskdino.utils.atomic import temporary_path


class OutputLocationError(OSError):
    """An output folder or file that cannot be created or written; the message names it and the fix."""


def check_readable(path: str | Path, what: str = "file") -> Path:
    """Open `path` for reading once; a missing, folder or permission-denied path raises a clear error."""
    path = Path(path)
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{what} {path} is a folder; give the file inside it") from None
    except PermissionError:
        raise PermissionError(
            f"cannot read {what} {path}: permission denied ({_owner_and_mode(path)}); ask its owner to "
            f"make it readable (chmod a+r {path}) or copy it somewhere you can read"
        ) from None
    return path


def check_output_dir(path: str | Path, option: str = "--output", label: str | None = None) -> Path:
    """Create the folder `path` if needed and write a probe file into it; `label` names it in messages
    (default: `<option> <path>`)."""
    path = Path(path)
    label = label or f"{option} {path}"
    try:
        if path.exists() and not path.is_dir():
            raise OutputLocationError(f"{label} is a file, not a folder; choose another {option}")
        path.mkdir(parents=True, exist_ok=True)
        probe = temporary_path(path / ".write_check")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OutputLocationError:
        raise
    except OSError as err:
        reason = err.strerror or str(err)
        if err.errno == errno.ENOTDIR:
            reason += " (part of the path is a file)"
        raise OutputLocationError(
            f"cannot write to {label}: {reason}; choose another {option} or make the folder writable "
            f"(chmod u+w, or check the disk is mounted read-write and has space)"
        ) from None
    return path


def check_output_file(path: str | Path, option: str = "--output") -> Path:
    """Check that the file `path` can be written: its folder is writable and it is not a folder itself."""
    path = Path(path)
    if path.is_dir():
        raise OutputLocationError(
            f"{option} {path} is a folder; give a file name, e.g. {path / 'model.onnx'}"
        )
    check_output_dir(path.parent, option, label=f"the folder {path.parent} of {option} {path}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputLocationError(
            f"cannot overwrite {option} {path}: permission denied ({_owner_and_mode(path)}); "
            f"choose another {option} or make the file writable"
        )
    return path


def _owner_and_mode(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return "its folder cannot be searched"
    return f"mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid}"
