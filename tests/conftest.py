"""Fixtures shared by the service, API and dialect tests."""

from __future__ import annotations

import uuid
from typing import Iterator

import psycopg
import pytest
from twisted.internet.task import Clock

from gateway.service.build import Services, memory_services
from tests.pgcluster import INSTALL_HINT, Cluster, find_bindir
from tests.service.conftest import FAST_HASHER, result


@pytest.fixture
def clock() -> Clock:
    """A Clock set to a plausible epoch, so millisecond timestamps look real."""
    c = Clock()
    c.advance(1_700_000_000)
    return c


@pytest.fixture
def services(clock: Clock) -> Services:
    """The whole service layer over the in-memory store."""
    return result(memory_services(clock, FAST_HASHER))


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A throw-away PostgreSQL server for the whole run, started by the first test that needs it."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    cluster = Cluster(bindir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_dsn(postgres_cluster: Cluster) -> Iterator[str]:
    """A DSN whose tables live in a schema of this test's own, dropped after it."""
    schema = f"t{uuid.uuid4().hex}"
    with psycopg.connect(postgres_cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{postgres_cluster.dsn} options=-csearch_path={schema}"
    with psycopg.connect(postgres_cluster.dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
