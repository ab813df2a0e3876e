"""JSONStateStore: state documents as plain JSON files, for users who want to read them."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import ClassVar
from typing import NoReturn
from typing import Self

from stash2plex_core.clocks import SystemClock
from stash2plex_core.errors import StateError
from stash2plex_core.errors import StateLockTimeoutError
from stash2plex_core.ports.clock import Clock
from stash2plex_core.ports.state import Document
from stash2plex_core.ports.state import StateStore
from stash2plex_core.settings import Settings


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; the backend is not viable there
    fcntl = None  # type: ignore[assignment]

FORMAT = "stash2plex-state"
FORMAT_VERSION = 1
LOCK_NAME = ".lock"


class _CorruptError(ValueError):
    """The bytes on disk are not a state file we wrote."""


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    # os.replace gives every new version a new inode, so this changes on every write.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _parse(raw: bytes, namespace: str) -> dict[str, Document]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _CorruptError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _CorruptError(f"not a {FORMAT} file")
    version = data.get("version")
    if not isinstance(version, int):
        raise _CorruptError("no format version")
    if version > FORMAT_VERSION:
        raise StateError(f"written by a newer stash2plex (format {version}; this one reads up to {FORMAT_VERSION})")
    documents = data.get("documents")
    if data.get("namespace") != namespace or not isinstance(documents, dict):
        raise _CorruptError(f"does not hold namespace {namespace!r}")
    if not all(isinstance(doc, dict) for doc in documents.values()):
        raise _CorruptError("a document is not a JSON object")
    return documents


class JSONStateStore(StateStore):
    """Keyed JSON documents, one file per namespace in a directory.

    Why one file per namespace rather than one in total: namespaces change at different
    rates (hundreds of sync records versus one breaker state), so a breaker update
    rewrites a few bytes instead of every sync record, and a damaged file costs one
    namespace, not all state. Why not one per document: thousands of tiny files and an
    ``fsync`` each would make ``put_many`` slow and non-atomic.

    * **Atomic writes.** A new version goes to a temporary file in the same directory,
      is flushed with ``fsync``, renamed over the old one, and the directory is synced:
      a crash leaves the old file or the new one, never a mix.
    * **Locking.** Writers take an exclusive ``flock`` on ``.lock`` (and a thread lock),
      waiting up to ``lock_timeout`` seconds, then raise
      :class:`~stash2plex_core.errors.StateLockTimeoutError`; a save is never skipped.
      Readers need no lock: a rename is atomic.
    * **Corruption.** A file that is not a state file this code wrote is moved aside to
      ``<name>.corrupt-<UTC time>`` (never overwritten) and
      :class:`~stash2plex_core.errors.StateError` names both paths; the namespace then
      starts empty.
    * **Permissions.** The directory is created 0700 and every file 0600.

    Requires ``fcntl`` (Linux, macOS, BSD). File names are the percent-encoded namespace,
    so on a case-insensitive file system namespaces must differ in more than case.
    """

    id: ClassVar[str] = "json"
    priority: ClassVar[int] = 5

    def __init__(
        self, directory: str | os.PathLike[str], clock: Clock | None = None, *, lock_timeout: float = 10.0
    ) -> None:
        super().__init__(clock or SystemClock())
        self.directory = os.path.abspath(os.fspath(directory))
        self.lock_timeout = lock_timeout
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._cache: dict[str, tuple[tuple[int, int, int, int], dict[str, Document]]] = {}

    @classmethod
    def viable(cls) -> bool:
        """Needs ``fcntl.flock``, so POSIX systems only."""
        return fcntl is not None

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Self:
        """Files live in ``<data_dir>/state`` (the platform data dir when unset)."""
        directory = settings.data_dir
        if directory is None:
            import platformdirs

            directory = platformdirs.user_data_dir("stash2plex", appauthor=False)
        return cls(os.path.join(os.path.expanduser(directory), "state"), clock)

    def path_for(self, namespace: str) -> str:
        """The file holding ``namespace``."""
        return os.path.join(self.directory, urllib.parse.quote(namespace, safe="") + ".json")

    # -- locking

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if self._lock_depth:
                self._lock_depth += 1
                try:
                    yield
                finally:
                    self._lock_depth -= 1
                return
            fd = self._acquire_file_lock()
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                os.close(fd)  # closing the descriptor releases the flock

    def _acquire_file_lock(self) -> int:
        assert fcntl is not None
        self._ensure_directory()
        path = os.path.join(self.directory, LOCK_NAME)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateError(f"{path}: cannot open the state lock file: {exc.strerror or exc}") from exc
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    os.close(fd)
                    raise StateLockTimeoutError(
                        f"{path}: another process held the state lock for more than {self.lock_timeout:g} s"
                    ) from None
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                os.close(fd)
                raise StateError(f"{path}: cannot lock the state: {exc.strerror or exc}") from exc
            else:
                return fd

    def _ensure_directory(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{self.directory}: cannot create the state directory: {exc.strerror or exc}") from exc

    # -- reading

    def _documents(self, namespace: str) -> dict[str, Document]:
        """The namespace's documents as stored now (the cached parse when unchanged)."""
        path = self.path_for(namespace)
        with self._thread_lock:
            try:
                signature = _signature(os.stat(path))
            except FileNotFoundError:
                return {}
            except OSError as exc:
                raise StateError(f"{path}: cannot read state: {exc.strerror or exc}") from exc
            cached = self._cache.get(namespace)
            if cached is not None and cached[0] == signature:
                return cached[1]
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
                    signature = _signature(os.fstat(handle.fileno()))
            except FileNotFoundError:
                return {}
            except OSError as exc:
                raise StateError(f"{path}: cannot read state: {exc.strerror or exc}") from exc
            try:
                documents = _parse(raw, namespace)
            except _CorruptError as exc:
                self._quarantine(namespace, path, str(exc))
            except StateError as exc:
                raise StateError(f"{path}: {exc}") from None
            self._cache[namespace] = (signature, documents)
            return documents

    def _quarantine(self, namespace: str, path: str, reason: str) -> NoReturn:
        """Move a corrupt file aside (under the lock, after checking it still is) and raise."""
        with self._locked():
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except FileNotFoundError:
                raise StateError(f"{path}: corrupt state file ({reason}); another process moved it aside") from None
            try:
                _parse(raw, namespace)
            except _CorruptError:
                pass
            else:  # another process replaced it meanwhile with a good version
                raise StateError(f"{path}: state file changed while being read; try again")
            stamp = self.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
            aside = f"{path}.corrupt-{stamp}"
            suffix = 0
            while os.path.exists(aside):
                suffix += 1
                aside = f"{path}.corrupt-{stamp}-{suffix}"
            try:
                os.rename(path, aside)
            except OSError as exc:
                raise StateError(
                    f"{path}: corrupt state file ({reason}), and it could not be moved aside: {exc.strerror or exc}"
                ) from exc
            self._cache.pop(namespace, None)
            raise StateError(f"{path}: corrupt state file ({reason}); moved aside to {aside}")

    # -- writing

    def _write(self, namespace: str, documents: dict[str, Document]) -> None:
        """Replace the namespace's file atomically; the caller holds the lock."""
        path = self.path_for(namespace)
        if not documents:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StateError(f"{path}: cannot write state: {exc.strerror or exc}") from exc
            self._cache.pop(namespace, None)
            self._sync_directory()
            return
        payload = json.dumps(
            {"format": FORMAT, "version": FORMAT_VERSION, "namespace": namespace, "documents": documents},
            ensure_ascii=False,
            allow_nan=False,
            sort_keys=True,
            indent=1,
        ).encode("utf-8")
        temp = os.path.join(self.directory, f".{os.path.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise StateError(f"{path}: cannot write state: {exc.strerror or exc}") from exc
        self._sync_directory()
        self._cache[namespace] = (_signature(os.stat(path)), documents)

    def _sync_directory(self) -> None:
        """Make the rename itself durable."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise StateError(f"{self.directory}: cannot sync the state directory: {exc.strerror or exc}") from exc
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the primitives

    def _get(self, namespace: str, key: str) -> Document | None:
        found = self._documents(namespace).get(key)
        return None if found is None else copy.deepcopy(found)

    def _put_many(self, namespace: str, documents: dict[str, Document]) -> None:
        with self._locked():
            current = dict(self._documents(namespace))
            current.update(copy.deepcopy(documents))
            self._write(namespace, current)

    def _delete(self, namespace: str, key: str) -> bool:
        with self._locked():
            current = dict(self._documents(namespace))
            if current.pop(key, None) is None:
                return False
            self._write(namespace, current)
            return True

    def _items(self, namespace: str) -> Iterator[tuple[str, Document]]:
        snapshot: dict[str, Any] = copy.deepcopy(self._documents(namespace))
        return iter(sorted(snapshot.items()))

    def _update(self, namespace: str, key: str, fn: Callable[[Document | None], Document | None]) -> Document | None:
        with self._locked():
            current = dict(self._documents(namespace))
            existing = current.get(key)
            result = fn(None if existing is None else copy.deepcopy(existing))
            if result is None:
                if current.pop(key, None) is not None:
                    self._write(namespace, current)
                return None
            current[key] = copy.deepcopy(result)
            self._write(namespace, current)
            return result


__all__ = ["FORMAT", "FORMAT_VERSION", "JSONStateStore"]
