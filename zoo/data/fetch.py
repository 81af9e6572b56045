"""`zoo data fetch`: download the official files (keras.utils.get_file), then import them.

Offline, a download would hang in retries; a short connection check first fails within
seconds and names the import command to use instead.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from zoo.data import cache
from zoo.data.catalog import get_spec
from zoo.data.dataset import DataError
from zoo.data.imports import ImportResult, import_dataset

CONNECT_TIMEOUT_S = 3.0


def can_reach(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to ``url``'s host opens within ``timeout``, else the error."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as err:
        return str(err) or type(err).__name__


def official_urls(name: str) -> list[str]:
    """The URLs of the files ``name`` is imported from."""
    spec = get_spec(name)
    if spec.archive is not None:
        return [spec.download_url]
    return [f"{spec.download_url}{f.name}.gz" for files in spec.files.values() for f in files]


def fetch_dataset(name: str, *, verify: bool = True) -> ImportResult:
    """Download ``name``'s official files into the cache's downloads/ folder and import them.

    Args:
        name: a catalog name.
        verify: check the published MD5s (as `zoo data import` does).
    """
    urls = official_urls(name)
    problem = can_reach(urls[0])
    if problem is not None:
        host = urlparse(urls[0]).hostname
        raise DataError(
            f"cannot reach {host} ({problem}) to download {name}; copy the official files "
            f"here ({', '.join(urls)}) and run `zoo data import {name} PATH`"
        )
    from keras.utils import get_file

    folder = cache.zoo_home() / "downloads" / name
    folder.mkdir(parents=True, exist_ok=True)
    for url in urls:
        get_file(Path(urlparse(url).path).name, origin=url, cache_dir=str(folder),
                 cache_subdir=".")
    return import_dataset(name, folder, verify=verify)
