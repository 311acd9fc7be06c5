"""A throwaway PostgreSQL cluster in a temporary folder, listening on a Unix socket only (no
TCP): for the database-branch tests and benchmark, which then go through the same code as the
product (``app.services.dbbranch``). ``initdb`` refuses to run as root, so as root the cluster
belongs to the ``postgres`` user (made when missing) and its programs run through
``runuser -u postgres --``. ``fsync`` is off: nothing here outlives the process."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from forecode_core.windowless import no_window

from .dbbranch import pg_tool

__all__ = ["Cluster", "ClusterError"]

PORT = 5432  # only names the socket file (.s.PGSQL.5432): there is no TCP listener
SERVICE_USER = "postgres"


class ClusterError(Exception):
    pass


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_service_user() -> None:
    """As root: the ``postgres`` user, made when missing (a system user, no home, no login)."""
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVICE_USER],
            check=True, **no_window(),
            capture_output=True,
        )  # fmt: skip


class Cluster:
    """``with Cluster() as c:`` an initialised, started cluster; ``c.url("name")`` a libpq
    URL for a database in it (superuser ``postgres``, trust authentication on the socket)."""

    def __init__(
        self,
        parent: str | os.PathLike[str] | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
    ) -> None:
        """A new temporary folder under ``parent``; or ``folder`` (a benchmark's cache): an
        existing cluster there is started again, and ``stop`` leaves it in place."""
        self.keep = folder is not None
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self.folder = (
            Path(folder) if folder else Path(tempfile.mkdtemp(prefix="fc-pg-", dir=parent))
        )
        self.data = self.folder / "data"
        self.socket = self.folder  # the socket's folder
        self.log = self.folder / "server.log"
        self.started = False

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if _as_root():
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, **no_window())
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ClusterError(f"{' '.join(argv)}: {done.stderr or done.stdout}\n{log}")
        return done

    def start(self) -> Cluster:
        if _as_root():
            ensure_service_user()
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        os.chmod(self.folder, 0o700)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        options = f"-k {self.socket} -p {PORT} -c listen_addresses='' -c fsync=off"
        self._run([pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                   options, "-w", "start"])  # fmt: skip
        self.started = True
        return self

    def _initdb(self) -> None:
        self._run([pg_tool("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8", "--locale", "C"])  # fmt: skip

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{quote(dbname)}?host={quote(str(self.socket))}&port={PORT}"

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(ClusterError):
                mode = "fast" if self.keep else "immediate"  # a kept cluster shuts down clean
                self._run([pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "stop"])
            self.started = False
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
