"""Opening a bundle, a folder or a ``.zip``, for the verifier: plain files only (no symbolic
link, no folder), no zip member twice, no absolute name and no ``..``; a path that is no
bundle at all raises :class:`~projections.export.verify_common.NotABundle`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from projections.export.verify_common import (
    MANIFEST,
    MANIFEST_SHA,
    READ_CHUNK,
    READ_ERRORS,
    BundleFailure,
    NotABundle,
    name_problem,
)


class BundleSource:
    """A bundle's files, from a folder or a zip archive (under at most one top folder).

    Opening refuses what a bundle never holds: in a folder, symbolic links, folders and
    other non-plain files; in a zip, a member twice, an absolute name, ``..`` or a link.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if path.is_dir():
            self._names = self._scan_folder(path)
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
                infos = self._zip.infolist()
            except Exception as exc:  # any damage to the archive's directory
                raise BundleFailure(path.name, f"the zip file cannot be read ({exc})") from None
            self._names = self._scan_zip(path, infos)
        elif not path.exists():
            raise NotABundle(f"{path} does not exist", field="bundle")
        else:
            raise NotABundle(f"{path} is not a bundle folder or .zip file", field="bundle")

    @staticmethod
    def _scan_folder(path: Path) -> list[str]:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            raise NotABundle(f"{path} cannot be read: {exc}", field="bundle") from None
        names = [e.name for e in entries]
        if MANIFEST not in names and MANIFEST_SHA not in names:
            raise NotABundle(
                f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}",
                field="bundle",
            )
        for entry in entries:
            if entry.is_symlink():
                raise BundleFailure(
                    entry.name, "is a symbolic link: a bundle holds plain files only"
                )
            if entry.is_dir(follow_symlinks=False):
                raise BundleFailure(entry.name, "is a folder: a bundle holds plain files only")
            if not entry.is_file(follow_symlinks=False):
                raise BundleFailure(entry.name, "is not a plain file: refused")
        return names

    def _scan_zip(self, path: Path, infos: list[zipfile.ZipInfo]) -> list[str]:
        seen: set[str] = set()
        for info in infos:
            problem = name_problem(info.filename)
            if problem:
                raise BundleFailure(info.filename, problem)
            if info.filename in seen:
                raise BundleFailure(info.filename, "is in the zip more than once: refused")
            seen.add(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BundleFailure(
                    info.filename, "is a symbolic link: a bundle holds plain files only"
                )
        names = [i.filename for i in infos if not i.filename.endswith("/")]
        if MANIFEST not in names and MANIFEST_SHA not in names:
            tops = sorted(
                {n.split("/", 1)[0] + "/" for n in names if "/" in n}
                & {
                    n[: -len(m)]
                    for n in names
                    for m in (MANIFEST, MANIFEST_SHA)
                    if n.endswith("/" + m)
                }
            )
            if len(tops) == 1:
                self._prefix = tops[0]
            else:
                raise NotABundle(
                    f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}",
                    field="bundle",
                )
        inside = sorted(n[len(self._prefix) :] for n in names if n.startswith(self._prefix))
        return inside + sorted(n for n in names if not n.startswith(self._prefix))

    def names(self) -> list[str]:
        return list(self._names)

    def folder_path(self, name: str) -> Path | None:
        """The file's path when the bundle is a folder (``None`` for a zip)."""
        return self.path / name if self._zip is None else None

    def exists(self, name: str) -> bool:
        return name in self._names

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            if self._zip is None:  # never through a link, even one made after the scan
                fd = os.open(self.path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                stream: IO[bytes] = os.fdopen(fd, "rb")
            else:
                stream = self._zip.open(self._prefix + name)
        except READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None
        with stream:
            yield stream

    def read(self, name: str) -> bytes:
        try:
            with self.open(name) as stream:
                return stream.read()
        except READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None

    def digest(self, name: str) -> tuple[str, int]:
        sha = hashlib.sha256()
        size = 0
        try:
            with self.open(name) as stream:
                while block := stream.read(READ_CHUNK):
                    sha.update(block)
                    size += len(block)
        except READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None
        return sha.hexdigest(), size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
