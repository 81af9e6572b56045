"""The files an import reads, by base name: under a folder or inside a .tar/.tar.gz/.zip."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Callable

from zoo.data.dataset import DataError


class DatasetImportError(DataError):
    """An import refused: the message names the file, what is wrong and what to do."""


def _skip(name: str) -> bool:
    # macOS resource forks (._name) and hidden files are never the data.
    base = name.rsplit("/", 1)[-1]
    return not base or base.startswith(".")


class SourceFiles:
    """Base name -> a reader of its bytes, for every file under PATH (folder or archive).

    Args:
        path: a folder, or an archive file (tar, tar.gz, tgz, zip).
    """

    def __init__(self, path: Path):
        self.path = path
        self._readers: dict[str, Callable[[], bytes]] = {}
        if not path.exists():
            raise DatasetImportError(f"{path} does not exist; give the folder or archive that "
                                     f"holds the data set's files")
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and not _skip(file.name):
                    self._readers.setdefault(file.name, file.read_bytes)
        elif tarfile.is_tarfile(path):
            self._read_tar(path)
        elif zipfile.is_zipfile(path):
            archive = zipfile.ZipFile(path)
            for info in archive.infolist():
                if not info.is_dir() and not _skip(info.filename):
                    base = info.filename.rsplit("/", 1)[-1]
                    self._readers.setdefault(base, lambda info=info: archive.read(info))
        else:
            raise DatasetImportError(
                f"{path} is a file but neither a folder nor a .tar/.tar.gz/.zip archive; give "
                f"the folder holding the data set's files or the archive they came in"
            )

    def _read_tar(self, path: Path) -> None:
        try:
            archive = tarfile.open(path)
            members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DatasetImportError(f"{path} is a damaged or truncated archive ({err}); "
                                     f"download it again") from None
        for member in members:
            if member.isfile() and not _skip(member.name):
                base = member.name.rsplit("/", 1)[-1]

                def read(member=member) -> bytes:
                    try:
                        return archive.extractfile(member).read()
                    except (tarfile.TarError, EOFError, OSError) as err:
                        raise DatasetImportError(f"{path}: cannot read {member.name} ({err}); the "
                                           f"archive is damaged or truncated") from None

                self._readers.setdefault(base, read)

    def find(self, *names: str) -> str | None:
        """The first of ``names`` that is present, else None."""
        return next((n for n in names if n in self._readers), None)

    def read(self, name: str) -> bytes:
        """The bytes of the file called ``name``."""
        return self._readers[name]()

    def where(self, name: str) -> str:
        """A description of where ``name`` was found, for messages."""
        return f"{name} in {self.path}"
