"""Small file helpers every layer shares: atomic writes, file hashes, canonical JSON and a timer.

Each exists once here. A write goes to a temporary file beside its target, is flushed to disk and renamed
into place, so a reader sees the old file or the new one, never half of one; an interrupted run leaves at
most a hidden ``.<name>.*.tmp`` file behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

try:
    import resource  # Unix: CPU time of finished child processes too
except ImportError:  # pragma: no cover - Windows
    resource = None

__all__ = ["BusyError", "exclusive_lock", "check_output_path", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "file_sha256", "canonical_json",
           "pretty_json", "cpu_seconds", "Timer"]


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            h.update(block)
    return h.hexdigest()


def canonical_json(value) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def pretty_json(value, indent: int = 1, _level: int = 0) -> str:
    """JSON for people: objects one key per line, lists of plain numbers or strings on one line."""
    pad, inner = " " * indent * _level, " " * indent * (_level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {pretty_json(value[k], indent, _level + 1)}"
                 for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in value) + "]"
        return "[\n" + ",\n".join(inner + pretty_json(v, indent, _level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Write a file whole or not at all: ``with atomic_path(p) as tmp:`` yields a temporary path beside
    ``p`` for the caller to write (with ``open``, h5py, ...); when the block ends without an error the file
    is flushed to disk and renamed to ``p``. On an error (or Ctrl-C) the temporary file is removed and ``p``
    is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for text (UTF-8)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, value, *, indent: int | None = 1) -> Path:
    """``value`` as JSON (sorted keys, no NaN, a final newline), written atomically."""
    return atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True, allow_nan=False) + "\n")


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process, all threads, and by its child processes
    that have exited (a process pool counts once its workers are gone); this process only on Windows."""
    if resource is None:  # pragma: no cover - Windows
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Timer:
    """Wall and CPU time of a block: ``with Timer() as t: ...`` then ``t.wall_s``, ``t.cpu_s``.

    ``t.elapsed_s`` and ``t.elapsed_cpu_s`` read the time so far while the block runs (its total once it has
    ended). CPU time is :func:`cpu_seconds`: this process's threads and its finished child processes.
    A Timer can also be started without ``with``: ``t = Timer().start()``.
    """

    def __init__(self):
        self.wall_s = self.cpu_s = 0.0
        self._wall0 = self._cpu0 = None
        self._running = False

    def start(self) -> "Timer":
        self._wall0, self._cpu0, self._running = time.perf_counter(), cpu_seconds(), True
        return self

    def __enter__(self) -> "Timer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.wall_s, self.cpu_s = self.elapsed_s, self.elapsed_cpu_s
        self._running = False

    @property
    def elapsed_s(self) -> float:
        """Wall seconds since the start (the total once the block has ended)."""
        return time.perf_counter() - self._wall0 if self._running else self.wall_s

    @property
    def elapsed_cpu_s(self) -> float:
        """CPU seconds since the start (the total once the block has ended)."""
        return cpu_seconds() - self._cpu0 if self._running else self.cpu_s


# ---- exclusive outputs and output paths -------------------------------------------------------------
class BusyError(RuntimeError):
    """Another process is writing the same output right now (its lock is held): a user error, not a bug."""


@contextmanager
def exclusive_lock(lock_path: str | os.PathLike, what: str):
    """Hold the file lock ``lock_path`` while the block runs, or raise :class:`BusyError` at once naming
    ``what`` when another process holds it (``filelock``: released when its holder exits, even by kill -9)."""
    from filelock import FileLock, Timeout  # a small pure-Python dependency; loaded by the writers only

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BusyError(f"another process is writing {what} right now (lock {lock_path} is held); wait for it "
                        f"to finish or choose another output") from None
    try:
        yield lock_path
    finally:
        lock.release()


def check_output_path(path: str | os.PathLike, what: str, *, directory: bool) -> Path:
    """``path`` as a Path if an output can be written there: a directory output (``directory=True``) must
    not be an existing file, a file output not an existing directory, and no parent may be a file. Raises
    ``ValueError`` naming ``what`` otherwise, before any work is done."""
    p = Path(path).expanduser()
    if str(path) == "":
        raise ValueError(f"{what} must be a path, got ''")
    if directory and p.exists() and not p.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a file, not a directory")
    if not directory and p.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory, not a file")
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {str(path)!r} cannot be made: {parent} is a file")
            break
    return p
