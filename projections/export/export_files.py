"""The files of an export bundle: their names, each written and hashed as it is written (in a
background thread for the large ones), the destination checked and swapped in only when
the bundle is whole, and the folder zipped.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ledger.errors import UsageError

EVENTS_FILE: Final = "events.jsonl"
PERSONAL_FILE: Final = "personal.jsonl"
TIMELINE_FILE: Final = "timeline.csv"
REPORT_FILE: Final = "report.html"
VERIFY_MD: Final = "VERIFY.md"
VERIFY_PY: Final = "verify.py"
CHECKPOINT_FILE: Final = "checkpoint.json"
PROOFS_FILE: Final = "proofs.jsonl"
MANIFEST_FILE: Final = "manifest.json"
MANIFEST_SHA_FILE: Final = "manifest.sha256"

_BUFFER: Final = 1 << 20


class HashingFile:
    """A binary file that hashes what is written to it.

    With ``background``, a thread does the hashing and writing (both release the GIL on
    large blocks) while the caller prepares the next block; at most a few blocks wait.
    """

    def __init__(self, path: Path, background: bool = False) -> None:
        self.path = path
        self._file: IO[bytes] = open(path, "wb", buffering=_BUFFER)
        self._sha = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._drain, name=f"write-{path.name}")
            self._thread.daemon = True
            self._thread.start()

    def _drain(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._file.write(data)
                    self._sha.update(data)
                except BaseException as exc:  # reported by the next write or close
                    self._error = exc

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._queue is None:
            self._file.write(data)
            self._sha.update(data)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    @property
    def closed(self) -> bool:
        """Whether the file is closed (written, or abandoned)."""
        return self._file.closed

    def close(self) -> dict[str, Any]:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._file.close()
        if self._error is not None:
            raise self._error
        return {"path": self.path.name, "sha256": self._sha.hexdigest(), "bytes": self.size}


def check_destination(out: Path, as_zip: bool, replace: bool = False) -> bool:
    """Refuse a destination that is taken (exit 2); whether it holds an earlier bundle
    that ``replace`` allows to be replaced."""
    if replace and (out.exists() or out.is_symlink()):
        why_not = _not_an_earlier_bundle(out, as_zip)
        if why_not is not None:
            raise UsageError(
                f"{out} is not an earlier caseledger bundle ({why_not}), so it is not "
                "replaced; nothing was changed: choose a new name",
                field="out_path",
                code="not-an-earlier-bundle",
                params={"out": str(out), "why_not": why_not},
            )
        return True
    if as_zip:
        if out.exists():
            raise UsageError(
                f"{out} already exists; choose a new file name, or replace an earlier bundle",
                field="out_path",
                code="bundle-file-exists",
                params={"out": str(out)},
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} already exists and is not an empty folder; choose a new folder, or "
            "replace an earlier bundle",
            field="out_path",
            code="bundle-folder-taken",
            params={"out": str(out)},
        )
    if not out.resolve().parent.is_dir():
        raise UsageError(f"the folder {out.resolve().parent} does not exist", field="out_path")
    return False


def _not_an_earlier_bundle(out: Path, as_zip: bool) -> str | None:
    """Why ``out`` is not a bundle this exporter wrote earlier (so not to be replaced),
    or None: a folder holding only the files of its own manifest, or a ``.zip`` holding
    only one folder with a manifest."""
    if out.is_symlink():
        return "a symbolic link"
    if as_zip:
        if not out.is_file() or not zipfile.is_zipfile(out):
            return "not a zip file"
        with zipfile.ZipFile(out) as zf:
            names = zf.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) != 1 or f"{next(iter(tops))}/{MANIFEST_FILE}" not in names:
            return f"no single folder with a {MANIFEST_FILE}"
        return None
    if not out.is_dir():
        return "not a folder"
    try:
        manifest = orjson.loads((out / MANIFEST_FILE).read_bytes())
        listed = {str(f["path"]) for f in manifest["files"]}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return f"it has no readable {MANIFEST_FILE}"
    listed |= {MANIFEST_FILE, MANIFEST_SHA_FILE}
    for entry in sorted(out.iterdir()):
        if entry.name not in listed or entry.is_symlink() or not entry.is_file():
            return f"it holds {entry.name}, which its manifest does not list"
    return None


def swap_in(work: Path, out: Path) -> None:
    """Put the new bundle folder ``work`` in the place of the earlier bundle ``out``:
    the earlier one is moved aside first and deleted only once the new one is there (put
    back if the move fails)."""
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=work.parent))
    os.replace(out, aside / "bundle")
    try:
        os.replace(work, out)
    except OSError:
        os.replace(aside / "bundle", out)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


def write_file(path: Path, data: bytes) -> dict[str, Any]:
    path.write_bytes(data)
    return {"path": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def zip_folder(work: Path, out: Path, files: Iterable[dict[str, Any]], top: str) -> None:
    """Stream the bundle's files into a zip archive under one top-level folder."""
    names = [f["path"] for f in files] + [MANIFEST_FILE, MANIFEST_SHA_FILE]
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in names:
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(work / name, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, _BUFFER)
    os.replace(partial, out)
