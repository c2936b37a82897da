"""A PostgreSQL table whose readers wait until the test lets them go (see :class:`HeldSource`)."""

from __future__ import annotations

import sqlalchemy as sa


class HeldSource:
    """A PostgreSQL table whose readers wait until the test lets them go.

    ``rows`` rows ``(id, v)`` go into table ``name``; then the test holds an ACCESS EXCLUSIVE
    lock on it in an open transaction, so a run's query (:attr:`query`, through secret ``db``
    with :attr:`url`) blocks inside PostgreSQL for as long as the test wants: a run that must
    outlive a schedule time, hold a queue slot or be cancelled mid-read does so by
    construction, not by being slow enough on this machine. :meth:`release` (or leaving the
    ``with`` block) commits the lock's transaction and the readers go on.
    """

    def __init__(self, url: str, name: str, rows: int) -> None:
        self.url, self.name, self.rows = url, name, rows
        self._engine = sa.create_engine(url)
        with self._engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text)"))
            conn.execute(
                sa.text(f"INSERT INTO {name} SELECT g, 'x' || g FROM generate_series(1, :n) g"),
                {"n": rows},
            )
        self._conn = self._engine.connect()
        self._txn = self._conn.begin()
        self._conn.execute(sa.text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))

    @property
    def query(self) -> str:
        return f"SELECT id, v FROM {self.name}"

    def waiting(self) -> int:
        """How many other sessions wait for the lock right now (the runs it holds)."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = :t AND NOT l.granted"
                ),
                {"t": self.name},
            ).scalar_one()
        return int(count)

    def release(self) -> None:
        if self._txn.is_active:
            self._txn.commit()
        self._conn.close()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def __enter__(self) -> HeldSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
