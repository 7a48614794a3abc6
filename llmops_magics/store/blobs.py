"""Content-addressed blob store: ``blobs/sha256/ab/cdef…``.

Blobs are written to ``tmp/`` and ``os.replace``d into place, so a reader never
sees half a file and a killed writer leaves at most a stray temp file (which
``Registry.gc`` removes). A folder is stored as its files' blobs plus a JSON
manifest blob; the manifest's digest names the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import IntegrityError, NotFoundError, ValidationError
from .faults import os_error

CHUNK = 1 << 20

__all__ = ["BlobStore", "sha256_bytes"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]


def _manifest(files: list[dict]) -> bytes:
    return json.dumps({"files": files}, sort_keys=True, separators=(",", ":")).encode()


def tree_digest(folder: Path) -> str:
    """The digest ``put_tree`` gives ``folder``, computed without storing anything.

    A base model given as a folder is identified by it, so the train/serve check
    compares one scheme whether the model was registered or not.
    """
    files = []
    for p in _tree_files(folder):
        h = hashlib.sha256()
        with p.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        files.append({"path": p.relative_to(folder).as_posix(), "digest": h.hexdigest(), "size": p.stat().st_size})
    return sha256_bytes(_manifest(files))


class BlobStore:
    """Blobs by digest. A write that fails (a full disk, a read-only folder) leaves no file and
    raises ``RegistryError``; a read checks the content against its digest."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root / "sha256"
        self.tmp = tmp
        self.home = root.parent
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, self.home) from None

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def _commit_tmp(self, tmp_path: str, digest: str) -> None:
        final = self.path(digest)
        if final.exists():
            os.unlink(tmp_path)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_path, 0o444)
        os.replace(tmp_path, final)

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if self.exists(digest):
            return digest
        fd, tmp_path = self._temp()
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._commit_tmp(tmp_path, digest)
        except BaseException as exc:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            if isinstance(exc, OSError):
                raise os_error(exc, self.home) from None
            raise
        return digest

    def _temp(self) -> tuple[int, str]:
        try:
            return tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        except OSError as exc:
            raise os_error(exc, self.home) from None

    def put_file(self, path: Path) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        fd, tmp_path = self._temp()
        try:
            with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            digest = h.hexdigest()
            self._commit_tmp(tmp_path, digest)
        except BaseException as exc:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise os_error(exc, self.home) from None
            raise
        return digest, size

    def put_tree(self, folder: Path) -> tuple[str, int]:
        """Store every file under ``folder``; returns (manifest digest, total size)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ValidationError(f"expected a folder, found {folder}")
        files = []
        total = 0
        for p in _tree_files(folder):
            digest, size = self.put_file(p)
            files.append({"path": p.relative_to(folder).as_posix(), "digest": digest, "size": size})
            total += size
        if not files:
            raise ValidationError(f"folder {folder} holds no files")
        return self.put_bytes(_manifest(files)), total

    def read_bytes(self, digest: str) -> bytes:
        """The blob's content, checked against its digest (a changed byte is an ``IntegrityError``)."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest[:12]} is missing from the store") from None
        if sha256_bytes(data) != digest:
            raise IntegrityError(f"blob {digest[:12]} does not match its digest (altered on disk); run `llmops doctor`")
        return data

    def manifest(self, digest: str) -> list[dict]:
        return json.loads(self.read_bytes(digest))["files"]

    def materialize(self, digest: str, dest: Path) -> Path:
        """Copy a stored folder out to ``dest`` (created fresh next to it, then renamed into place).

        Every file is hashed as it is copied: a blob altered on disk never reaches a checkout.
        """
        dest = Path(dest)
        if dest.exists():
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
        except OSError as exc:
            raise os_error(exc, self.home) from None
        try:
            for entry in self.manifest(digest):
                target = staging / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                self._copy_checked(entry["digest"], target)
            os.replace(staging, dest)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if dest.exists():
                return dest  # another process made the same checkout first
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise os_error(exc, self.home) from None
            raise
        return dest

    def _copy_checked(self, digest: str, target: Path) -> None:
        h = hashlib.sha256()
        try:
            src = self.path(digest).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest[:12]} is missing from the store") from None
        with src, target.open("wb") as dst:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != digest:
            raise IntegrityError(f"blob {digest[:12]} does not match its digest (altered on disk); run `llmops doctor`")

    def iter_digests(self) -> Iterator[str]:
        for sub in self.root.iterdir():
            if sub.is_dir():
                for f in sub.iterdir():
                    yield sub.name + f.name

    def check(self, digest: str) -> None:
        """Re-hash a blob; raise IntegrityError when it is missing or altered."""
        p = self.path(digest)
        if not p.is_file():
            raise IntegrityError(f"blob {digest[:12]} is missing")
        h = hashlib.sha256()
        with p.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        if h.hexdigest() != digest:
            raise IntegrityError(f"blob {digest[:12]} does not match its digest (altered on disk)")
