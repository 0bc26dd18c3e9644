"""Small file helpers: atomic writes so an interrupted run never leaves a half-written result behind."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


@functools.cache
def _umask() -> int:
    umask = os.umask(0o022)  # the only portable way to read it; read once, restored at once
    os.umask(umask)
    return umask


def default_mode(directory: bool = False) -> int:
    """The permissions ``open``/``mkdir`` would give a new file (0o666) or folder (0o777) under the umask.

    ``tempfile.mkstemp``/``mkdtemp`` create 0o600/0o700 entries; renamed into place they would make results,
    data files and checkpoints unreadable to other users and CI jobs, so atomic writes restore these modes.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write to a temp file in the same folder, flush it to disk, then rename over ``path``.

    Readers see the old file or the new one, never a mix. A rewritten file keeps its permissions; a new one gets
    the usual (umask) permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """UTF-8 text, written atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """JSON (indent 2, trailing newline), written atomically (see :func:`write_bytes_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, read in 1 MiB chunks (checkpoints, data files and published references are hashed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json(path: str | os.PathLike[str], label: str, error: type[Exception], *, prefix: str = "") -> Any:
    """A JSON file from disk (a download, a hand edit), or ``error`` with one line naming ``label`` and the cause.

    ``prefix`` starts every message (e.g. "bad checkpoint: "); missing files, folders, undecodable bytes,
    invalid JSON and read failures are told apart. The caller checks the shape of what it got.
    """
    p = Path(path)
    if not p.exists():
        raise error(f"{prefix}{label} not found: {p}")
    if not p.is_file():
        raise error(f"{prefix}{label} {p} is not a file")
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise error(f"{prefix}{label} {p} is not valid JSON ({exc})") from None
    except OSError as exc:
        raise error(f"{prefix}cannot read {label} {p} ({exc.strerror or exc})") from None
