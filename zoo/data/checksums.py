"""MD5 checks against the authors' published values."""

from __future__ import annotations

import hashlib

from zoo.data.official_files import DatasetImportError


def md5_of(data: bytes) -> str:
    """The hexadecimal MD5 of ``data``."""
    return hashlib.md5(data).hexdigest()


def check_md5(data: bytes, expected: str, what: str, *, verify: bool) -> dict[str, object]:
    """Compare the MD5 of ``data`` with the published one; refuse a mismatch when verifying.

    Returns a manifest entry: the found checksum and whether it matches the published one.
    """
    found = md5_of(data)
    if verify and found != expected:
        raise DatasetImportError(
            f"checksum mismatch for {what}: expected MD5 {expected}, found {found}; this is not "
            f"the official file (download it again, or pass --no-verify to import a modified "
            f"copy, which is then marked unverified)"
        )
    return {"md5": found, "published_md5": expected, "matches": found == expected}
