"""
A throw-away PostgreSQL cluster for the tests: Debian's server binaries,
C{initdb} into a temporary directory, reached through a Unix socket only
(no TCP port), stopped and deleted at the end.

PostgreSQL refuses to run as root (CI is root): there the cluster belongs
to the C{postgres} user and its commands run through C{runuser}.  Without
the binaries the tests that need it fail with an install hint.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from typing import Optional

__all__ = ["INSTALL_HINT", "Cluster", "find_bindir"]

INSTALL_HINT = (
    "the PostgreSQL tests need Debian's postgresql package (initdb, pg_ctl):"
    " sudo apt-get install postgresql"
)


def find_bindir() -> Optional[str]:
    """The directory of C{initdb} and C{pg_ctl} (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(found))
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(bindir, "initdb"), os.X_OK):
            return bindir
    return None


class Cluster:
    """One running server; L{dsn} reaches its C{postgres} database."""

    def __init__(self, bindir: str) -> None:
        self._bindir = bindir
        self._root = tempfile.mkdtemp(prefix="gw-pg-")
        self._data = os.path.join(self._root, "data")
        self.socket_dir = os.path.join(self._root, "run")
        os.mkdir(self.socket_dir)
        self._runas: list[str] = []
        self.user = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self._root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]
            self.user = "postgres"
        self.dsn = f"host={self.socket_dir} dbname=postgres user={self.user}"

    def _run(self, command: str, *args: str) -> None:
        subprocess.run(
            [*self._runas, os.path.join(self._bindir, command), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def start(self) -> None:
        # Throw-away data: no fsync, so the suite stays fast.
        self._run("initdb", "-D", self._data, "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off"
        )
        log = os.path.join(self._root, "server.log")
        self._run("pg_ctl", "-D", self._data, "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self._data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._root, ignore_errors=True)
