"""A durable spool for the events the database could not take.

When the tracker store cannot write (PostgreSQL down, a read-only or full disk under
SQLite), the events of the turn go here instead of only into memory, so that
a Rasa process stopped during the outage loses nothing: each process appends to its own
file (`spool-<pid>.jsonl` in the spool folder), and the rows are written to the database,
in order, as soon as it answers again and when any process starts (the files of processes
that are gone included).

- Rows are the store's rows, masked like the store (stores/tracker_store.py builds them).
- Each append is one line (the turn's rows), starting with a newline, then fsync: a crash
  mid-write leaves at most a torn line of its own, which reading skips; a failed write is
  cut off again, so a refused turn is never replayed.
- Space is reserved at start-up (`spool.reserve`, RESERVE_BYTES): if the disk fills up,
  the reserve is given back and the append tried once more.
- If even the spool cannot be written, SpoolError: the turn is refused (the channel
  answers 503) rather than answered and lost.
- Retention: rows older than the store's retention are dropped when replayed.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

logger = logging.getLogger(__name__)

RESERVE_BYTES = 8 * 1024 * 1024  # about 20,000 events
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class SpoolError(BaseException):
    """Neither the database nor the spool could take the events: the turn is refused.

    A BaseException on purpose: Rasa wraps every tracker store in its FailSafeTrackerStore,
    which catches any Exception from `save` and keeps the tracker in memory instead (to be
    lost at the next restart). This one passes through it to the channel
    (channels/payloads.py), which refuses the message with a clear status."""

    def __init__(self, errno_: Optional[int], message: str) -> None:
        super().__init__(message)
        self.errno = errno_


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    def __init__(self, folder: Path, reserve_bytes: int = RESERVE_BYTES) -> None:
        self.folder = Path(folder)
        self.path = self.folder / f"spool-{os.getpid()}.jsonl"
        self.reserve = self.folder / "spool.reserve"
        self.reserve_bytes = reserve_bytes
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._reserve_space()
        except OSError as error:  # the store still starts; an outage would then refuse
            logger.error("Spool folder %s is not writable (%s)", self.folder,
                         type(error).__name__)

    def _reserve_space(self) -> None:
        if self.reserve.exists() and self.reserve.stat().st_size >= self.reserve_bytes:
            return
        fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.reserve_bytes)
        finally:
            os.close(fd)

    # --- writing ---------------------------------------------------------------------

    def append(self, rows: List[Dict[str, Any]]) -> None:
        """Append the rows durably (fsync), all or none, or raise SpoolError."""
        # One line for the turn: a write torn by a crash loses the whole turn (whose
        # request got no answer), never leaves part of it to be replayed.
        data = ("\n" + json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
                ).encode("utf-8")
        try:
            self._write(data)
        except OSError as error:
            if error.errno in FULL_DISK and self.reserve.exists():
                logger.error("Disk full: the spool uses the space reserved for it")
                try:
                    self.reserve.unlink()
                    self._write(data)
                    return
                except OSError as again:
                    error = again
            raise SpoolError(error.errno, f"the spool could not be written "
                                          f"({type(error).__name__})") from error

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                # Part written (a full disk): cut it off, so that a refused turn is not
                # replayed later. Truncating needs no space.
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    # --- reading back ----------------------------------------------------------------

    def files(self) -> List[Path]:
        """This process's spool and those of processes that are gone, oldest first."""
        found = []
        for path in self.folder.glob("spool-*.jsonl"):
            try:
                pid = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            if path == self.path or not _pid_alive(pid):
                found.append(path)
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def pending(self) -> bool:
        return any(path.stat().st_size for path in self.files())

    @staticmethod
    def read(path: Path) -> Iterator[Dict[str, Any]]:
        with open(path, "rb") as handle:
            for line in handle.read().split(b"\n"):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:  # a line torn by a crash mid-write
                    logger.warning("Skipped a torn line in the spool %s", path.name)
                    continue
                # A turn's rows on one line; a row per line in older spools.
                for one in row if isinstance(row, list) else [row]:
                    if isinstance(one, dict):
                        yield one

    def batches(self) -> Iterator[Tuple[Path, List[Dict[str, Any]]]]:
        for path in self.files():
            rows = list(self.read(path))
            yield path, rows

    def done(self, path: Path) -> None:
        """The file's rows are in the database: remove it, and reserve space again."""
        fd = os.open(path, os.O_WRONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path.unlink()
        finally:
            os.close(fd)
        try:
            self._reserve_space()
        except OSError:
            pass
