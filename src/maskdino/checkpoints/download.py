"""Registry files on disk: the cache (`$MASKDINO_HOME`, default `~/.cache/maskdino`), mirrors
(`$MASKDINO_MIRROR/<release file name>`) and the download itself (standard library HTTP).

A download goes to a temporary file in the cache folder and is renamed to the release file name only
once it is complete and its size equals the server's Content-Length, so a cut-off download never sits
under the final name and the next call starts again. Files already in the cache are used offline.
"""

from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from maskdino.checkpoints.errors import DownloadError
from maskdino.checkpoints.zoo import ZooEntry, close_names, find_entry
from maskdino.utils.atomic import atomic_write
from maskdino.utils.file_access import check_output_dir

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60.0


def cache_dir() -> Path:
    return Path(os.environ.get("MASKDINO_HOME") or "~/.cache/maskdino").expanduser()


def cache_path(entry: ZooEntry) -> Path:
    return cache_dir() / entry.file_name


def download_url(entry: ZooEntry) -> str:
    """`$MASKDINO_MIRROR/<file name>` when a mirror is set, else where the authors publish the file."""
    mirror = os.environ.get("MASKDINO_MIRROR")
    if mirror:
        return mirror.rstrip("/") + "/" + urllib.parse.quote(entry.file_name)
    return entry.url


def needs_manual_download(entry: ZooEntry) -> bool:
    """True for files published where scripts cannot fetch them reliably, unless a mirror serves them."""
    return entry.manual_download and not os.environ.get("MASKDINO_MIRROR")


def resolve_weights(name_or_path: str | Path, progress: bool = True) -> Path:
    """A local file or folder as it is; a registry name or release file name -> its cached file,
    downloaded first if it is not in the cache yet."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    return fetch_entry(known_entry(name_or_path), progress)


def known_entry(name: str | Path) -> ZooEntry:
    """The registry entry called `name`; for anything else the error a missing weights file gives,
    with the closest registry names."""
    entry = find_entry(str(name))
    if entry is None:
        close = close_names(str(name))
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise FileNotFoundError(
            f"weights file not found: {name} (and it is not a registry name).{hint} "
            "`maskdino zoo` lists the registry names."
        )
    return entry


def fetch_entry(entry: ZooEntry, progress: bool = True, force: bool = False) -> Path:
    """The cached file of `entry`, downloaded if missing (or if `force`)."""
    path = cache_path(entry)
    if path.is_file() and not force:
        return path
    if needs_manual_download(entry):
        raise DownloadError(entry.manual_step(path))
    download(download_url(entry), path, progress)
    return path


def download(url: str, path: Path, progress: bool = True) -> Path:
    """Fetch `url` into `path` atomically, checking the size against the server's Content-Length."""
    try:
        check_output_dir(path.parent, "MASKDINO_HOME", f"the weights cache {path.parent}")
    except OSError as err:
        raise DownloadError(
            f"{err}. Set MASKDINO_HOME to a writable folder, or download {url} yourself and pass the file's path"
        ) from None
    logger.info("downloading %s to %s", url, path)

    def fetch(tmp: str) -> None:
        with open(tmp, "wb") as out:
            expected = _copy(url, out, path.name, progress)
        received = os.path.getsize(tmp)
        if expected is not None and received != expected:
            raise DownloadError(
                f"the download of {url} stopped after {received} of {expected} bytes (the server closed the "
                "connection); nothing was kept, run the command again to retry"
            )

    return atomic_write(path, fetch)


def _copy(url: str, out, label: str, progress: bool) -> int | None:
    """Stream `url` into `out`; returns the server's Content-Length (None if it sent none)."""
    request = urllib.request.Request(url, headers={"User-Agent": "maskdino"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            with tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            return expected
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url} answered HTTP {err.code} {err.reason}{_offline_hint(label)}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"cannot reach {url} ({err.reason}){_offline_hint(label)}") from None
    except (http.client.HTTPException, OSError) as err:  # cut connection, reset, timeout mid-transfer
        raise DownloadError(
            f"the download of {url} failed midway ({type(err).__name__}: {err}); nothing was kept, run the "
            "command again to retry"
        ) from None


def _offline_hint(file_name: str) -> str:
    return (
        f". Without network access: download {file_name} elsewhere and pass the file's path "
        f"(--weights /path/{file_name}), copy it into {cache_dir()}, or set MASKDINO_MIRROR=<base url> to a "
        f"server (or file:// folder) that holds {file_name}"
    )
