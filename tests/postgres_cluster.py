"""Throw-away PostgreSQL clusters of the tests' own: a primary, and streaming standbys.

The shared server from `.ci/start-postgres` serves every test run on the machine, so tests
that kill a primary or replicate one start a cluster of their own on a free loopback port
(Debian's postgresql package; the binaries run as the `postgres` user, as in start-postgres).
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found[-1]


def _as_postgres(*command: str) -> subprocess.CompletedProcess:
    line = " ".join(shlex.quote(part) for part in command)
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        return subprocess.run(
            ["su", "postgres", "-s", "/bin/sh", "-c", line],
            capture_output=True,
            text=True,
            check=False,
        )
    return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=False)


def _run(*command: str) -> str:
    done = _as_postgres(*command)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {(done.stderr or done.stdout)[-1500:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgCluster:
    """One PostgreSQL cluster (data directory + postmaster) on 127.0.0.1:`port`."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port

    @classmethod
    def primary(cls) -> PgCluster:
        cluster = cls(_owned_directory("primary"), free_port())
        _run(_bin("initdb"), "-A", "trust", "-U", "postgres", "-D", str(cluster.data))
        cluster.start()
        return cluster

    def standby(self) -> PgCluster:
        """A hot standby streaming from this cluster (`pg_basebackup -R` writes the
        primary_conninfo and standby.signal)."""
        replica = PgCluster(_owned_directory("standby"), free_port())
        _run(
            _bin("pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"),
        )
        replica.start()
        return replica

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1"
        _run(
            _bin("pg_ctl"),
            *("-s", "-w", "-t", "60", "-D", str(self.data)),
            *("-l", str(self.data / "server.log"), "-o", options, "start"),
        )

    def kill(self) -> None:
        """SIGKILL the postmaster, like a power cut of the process (backends die with it)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        # The orphaned backends notice the dead postmaster and exit; wait for the port.
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.05)

    def stop(self) -> None:
        _as_postgres(_bin("pg_ctl"), "-s", "-w", "-D", str(self.data), "-m", "immediate", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data, ignore_errors=True)

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.database_url(name)


def _owned_directory(role: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=f"facedb-pg-{role}-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o700)
    return directory


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
