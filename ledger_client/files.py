"""Files traceseal writes or reads in folders other users may write to too.

Writing: :func:`atomic_writer` never opens a name someone could have planted (a symlink at
``out.json.partial`` once made ``traceseal export`` overwrite the link's target). The data
goes to a fresh temporary file that ``mkstemp`` creates in the target's own folder
(``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600, a random name), is fsynced, and is then renamed
over the target: a symlink *at* the target is replaced, never followed, and a reader or a
crash sees the old file or the complete new one, never half of it. The folder is fsynced
so the rename survives a power cut. ``overwrite=False`` (key files) publishes with
``link``, which fails if the name exists, so two writers cannot both "create" a key.

Reading: :func:`file_problem` is the one check for a file a config names (a key, a
password, a certificate): missing, not a regular file, unreadable by the user running
this, or (for secrets) readable by group or others. It returns the problem as one line
naming the path, and callers raise it as their own error (``KeyFileError`` for key files,
``ConfigError`` naming the config key in the gateway and the archive).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask. Linux shows it in /proc (since 4.7); elsewhere os.umask can only be
    read by setting it, which for an instant applies to files other threads create, so that
    fallback sets the strictest mask meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        old = os.umask(0o077)
        os.umask(old)
    return old


def _default_mode() -> int:
    """0666 less the umask: what ``open(path, "w")`` would have created."""
    return 0o666 & ~_umask()


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the data itself was synced
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path | str, *, mode: int | None = None, overwrite: bool = True,
                  owner: tuple[int, int] | None = None) -> Iterator[BinaryIO]:
    """``with atomic_writer(p) as f: f.write(...)``: ``p`` appears complete when the block
    ends, or is left as it was if the block raises (the temporary file is removed).

    ``mode`` defaults to what ``open`` would give (0666 less the umask); secrets pass 0o600,
    which the file has from its first byte. ``overwrite=False`` raises ``FileExistsError``
    if ``p`` exists (checked atomically at publication). ``owner`` (uid, gid) is set before
    the file appears, so a service user never finds a key it cannot read.
    """
    path = Path(path)
    folder = path.parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    published = False
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _default_mode() if mode is None else mode)
            if owner is not None:
                os.fchown(f.fileno(), *owner)
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
        published = True
        fsync_dir(folder)
    finally:
        if not published:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _publish_new(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if nothing has it, then drop the temporary name."""
    try:
        os.link(tmp, path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # a filesystem without hard links (FAT, some FUSE): check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "already exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_atomic(path: Path | str, data: bytes | str, **kw: object) -> None:
    """:func:`atomic_writer` for data already in memory (str is written as UTF-8)."""
    with atomic_writer(path, **kw) as f:  # type: ignore[arg-type]
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def open_lock_file(path: Path | str) -> int:
    """A descriptor on a fixed-name lock file (created 0600), refusing to follow a symlink
    planted at that name: a lock never writes, but it must not create files elsewhere."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


# -- reading -----------------------------------------------------------------------------------

def user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def owner_name(path: Path) -> str:
    try:
        return user_name(Path(path).stat().st_uid)
    except OSError:
        return "unknown: its folder is not searchable"


def file_problem(path: Path | str, what: str, *, private: bool) -> str | None:
    """Why ``path`` cannot serve as the ``what`` ("key", "MQTT password", "TLS CA") a config
    names, as one line naming the path; None if it can. ``private``: a secret, which group
    and others must not be able to read (mode 0600 or stricter)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path}: no such {what} file"
    except PermissionError:
        return (f"cannot read {what} file {path} (its folder is not searchable by {user_name(os.geteuid())}, "
                f"the user running this)")
    except OSError as exc:
        return f"cannot read {what} file {path}: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: not a regular file (want the {what} file)"
    try:  # a real open: os.access would ignore ACLs and misjudge root
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
    except PermissionError:
        return (f"cannot read {what} file {path} (owner {owner_name(path)}, running as {user_name(os.geteuid())}); "
                f"chown it to the user the gateway runs as")
    except OSError as exc:
        return f"cannot read {what} file {path}: {exc.strerror or exc}"
    if private and stat.S_IMODE(st.st_mode) & 0o077:
        return (f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others read the {what}; "
                f"run: chmod 600 {path}")
    return None
