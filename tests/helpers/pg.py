"""A throwaway PostgreSQL cluster for tests (``app.services.pg_cluster``: a temporary folder,
the ``postgres`` user when run as root, a Unix socket only), and a dev database in it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from app.services.pg_cluster import Cluster


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Cluster]:
    with Cluster() as cluster:
        yield cluster


def make_dev(cluster: Cluster, name: str, rows: int = 100) -> str:
    """A dev database ``name`` with ``items`` (an integer primary key), ``log`` (no key) and
    ``tags`` (a text key)."""
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(cluster.url(name), autocommit=True) as dev:
        dev.execute("CREATE TABLE items (id serial PRIMARY KEY, name text, qty int)")
        dev.execute(
            "INSERT INTO items (name, qty) SELECT 'n' || g, g FROM generate_series(1, %s) g",
            (rows,),
        )
        dev.execute("CREATE TABLE log (msg text)")
        dev.execute("INSERT INTO log VALUES ('old')")
        dev.execute("CREATE TABLE tags (name text PRIMARY KEY, uses int)")
        dev.execute("INSERT INTO tags VALUES ('a', 1), ('b', 2), ('c', 3)")
    return cluster.url(name)
