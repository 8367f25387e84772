"""The one atomic write of evonas, and the storage error it raises.

Every file that must never be seen half-written (config.json, manifest.json,
state.json, weights, best/, report.html, a trainer's result.json) goes through
``atomic_path``: the content is written to a tmp file in the same directory,
fsync'd, renamed over the target with ``os.replace``, and the directory is
fsync'd, so a crash at any instant leaves the old version or the new one. A
failed write (a full disk) removes its tmp file, keeps the old file and raises
``StorageError`` naming the file.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import faults
from .errors import ConfigError, EvonasError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class StorageError(EvonasError):
    """A write into the run directory failed (typically a full disk); names the file."""


def storage_error(e: OSError, path: str | Path | None = None) -> StorageError:
    """One line for a failed write: the file and the cause; a full disk is said so."""
    where = path or e.filename or "the run directory"
    why = "disk full" if e.errno in DISK_FULL else "cannot write"
    return StorageError(f"{why}: {where}: {e.strerror or e}; the run stopped (free space, then --resume)")


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so a rename inside it survives a power loss (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


@contextmanager
def atomic_path(path: str | Path, tmp_name: str | None = None, fault: str = "") -> Iterator[Path]:
    """Yield a tmp path next to ``path``; the body writes the whole content there.
    On a clean exit the tmp file is fsync'd and renamed over ``path`` and the
    directory fsync'd. ``tmp_name`` (default ``<name>.tmp``) lets a writer that
    goes by the suffix (matplotlib) keep it; ``fault`` names the ``evonas.faults``
    point between the write and the rename. Any error removes the tmp file; an
    OSError becomes ``StorageError`` naming ``path``."""
    path = Path(path)
    tmp = path.with_name(tmp_name or path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may have closed it without fsync
            os.fsync(fh.fileno())
        if fault:
            faults.point(fault)
        faults.point("disk_write")
        os.replace(tmp, path)
    except OSError as e:  # a full disk: no tmp file stays behind, the old file is intact
        _unlink(tmp)
        raise storage_error(e, path) from None
    except BaseException:
        _unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes, fault: str = "") -> None:
    """Replace ``path`` with ``data`` (see ``atomic_path``)."""
    with atomic_path(path, fault=fault) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy a file so ``dst`` is never seen half-copied; a missing ``src`` is a
    ConfigError naming it."""
    with atomic_path(dst) as tmp:
        try:
            shutil.copyfile(src, tmp)
        except FileNotFoundError as e:
            if e.filename != str(src):
                raise
            raise ConfigError("copy", "file", str(src), "not found") from None


def read_json(path: str | Path, where: str) -> Any:
    """Load a JSON file; unreadable or malformed -> ConfigError naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(where, path.name, str(path), "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(where, path.name, str(path), f"unreadable or not valid JSON ({e})") from None
