"""A disk cache for deterministic arrays that every process would otherwise recompute.

The mean-ablation walk (20,000 Minigrid steps, ~5–6 s) is the same for a given generation seed in every claims run,
flake-check seed, population judge and test subprocess. It is kept as an ``.npz`` (no pickle) named by the sha256 of
its key; the key names everything the arrays depend on (arguments, the generating code, library versions) and is
stored inside the file too, so a file is used only for exactly that key. Anything wrong with a file (missing,
truncated, another key, missing arrays) means "compute it again"; a cache that cannot be written is skipped. Writes
are atomic, so processes filling the same entry side by side leave one whole file.

``DT_CIRCUITS_CACHE`` chooses the folder (default ``$XDG_CACHE_HOME/dt-circuits``, else ``~/.cache/dt-circuits``);
``DT_CIRCUITS_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dt_circuits.core.io import write_bytes_atomic

CACHE_ENV = "DT_CIRCUITS_CACHE"
_KEY_ARRAY = "__key__"


def cache_dir() -> Path | None:
    """The cache folder, or None when ``DT_CIRCUITS_CACHE=off``."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "0", "") else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dt-circuits"


def cached_arrays(
    kind: str,
    key: dict[str, Any] | None,
    compute: Callable[[], dict[str, np.ndarray]],
    *,
    shipped: Path | None = None,
) -> dict[str, np.ndarray]:
    """``compute()`` once per ``key`` on this machine: later calls (in any process) load the saved arrays.

    ``kind`` names the file (``kind-<sha256 of key>.npz``); ``key`` must be JSON-serialisable and name every input
    the arrays depend on; None (a key that could not be made, e.g. code without sources) computes every time.
    ``shipped``: a read-only folder of entries shipped with the package (arrays that depend on no CPU kind), read
    first and whatever ``DT_CIRCUITS_CACHE`` says: a shipped file is data of the package, like a checkpoint."""
    if key is None:
        return compute()
    if shipped is not None and (found := shipped_entry(shipped, kind, key)) is not None:
        return found
    loaded = load_arrays(kind, key)
    if loaded is not None:
        return loaded
    arrays = compute()
    save_arrays(kind, key, arrays)
    return arrays


def load_arrays(kind: str, key: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays saved for exactly ``key``, or None (cache off, no file, or anything wrong with it): for callers
    that compute several missing entries in one batch (:func:`cached_arrays` is the one-entry form)."""
    folder = cache_dir()
    if folder is None:
        return None
    text = _key_text(kind, key)
    return _load(_path(folder, kind, text), text)


def save_arrays(kind: str, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Keep ``arrays`` for ``key`` (atomic; a cache that cannot be written, or is off, is skipped)."""
    folder = cache_dir()
    if folder is None:
        return
    with contextlib.suppress(OSError):  # a read-only or full cache folder costs time, never a result
        write_entry(folder, kind, key, arrays)


def write_entry(folder: Path, kind: str, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write one entry into ``folder`` (atomic) and return its path: the disk cache's, or a shipped folder's."""
    text = _key_text(kind, key)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, **{_KEY_ARRAY: np.array(text)})
    path = _path(folder, kind, text)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def shipped_entry(folder: Path, kind: str, key: dict[str, Any] | None) -> dict[str, np.ndarray] | None:
    """The arrays of a shipped folder's entry for exactly ``key``, or None (no such file, or not for this key)."""
    if key is None:
        return None
    text = _key_text(kind, key)
    return _load(_path(folder, kind, text), text)


def _key_text(kind: str, key: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **key}, sort_keys=True)


def _path(folder: Path, kind: str, text: str) -> Path:
    return folder / f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:32]}.npz"


def fit_key(*code: object, libraries: tuple[str, ...], **params: Any) -> dict[str, Any] | None:
    """The key of arrays fitted or measured by running a model on this machine: ``params`` (JSON: the weights'
    digest or the fitted inputs' :func:`array_digest`, the settings), the code's :func:`source_key` and this
    machine's CPU kind (float kernels differ between CPU kinds, so one kind never reads another's entries); None
    (no caching) when the code's source cannot be read."""
    from dt_circuits.core.machine import machine_kind

    source = source_key(*code, libraries=libraries)
    return None if source is None else {**params, **source, "machine": machine_kind()}


def array_digest(*arrays: np.ndarray) -> str:
    """sha256 over each array's dtype, shape and bytes: equal digests, equal inputs."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def source_key(*code: object, libraries: tuple[str, ...] = ("minigrid", "gymnasium", "numpy")) -> dict[str, Any] | None:
    """The part of a cache key that names what computes the arrays: the sha256 of ``code``'s source (functions,
    classes) and the installed versions of ``libraries``; None (no caching) when the source cannot be read (an
    install without sources)."""
    import inspect
    from importlib.metadata import version

    try:
        text = "".join(inspect.getsource(obj) for obj in code)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return None
    return {
        "code": hashlib.sha256(text.encode()).hexdigest(),
        "versions": {lib: version(lib) for lib in libraries},
    }


def _load(path: Path, text: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _KEY_ARRAY not in npz.files or str(npz[_KEY_ARRAY]) != text:
                return None
            arrays = {name: npz[name] for name in npz.files if name != _KEY_ARRAY}
    except Exception:  # missing, truncated, not a zip, an object array: all mean "compute again"
        return None
    return arrays or None
