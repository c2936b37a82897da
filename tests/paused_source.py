"""A PostgreSQL query that pauses part-way (see :class:`PausedSource`); for the engine's and
the cluster's tests of a run in flight."""

from __future__ import annotations

import sqlalchemy as sa


class PausedSource:
    """A PostgreSQL query whose first ``before`` rows stream out at once and whose next row
    waits for an advisory lock the test holds: a run reads, reports, and is then still in
    flight by construction, however fast the machine. :meth:`release` lets it finish
    (``before + after`` rows ``(id, v)`` in all, ``v`` ``width`` characters wide, so that the
    rows before the pause fill whole batches of the PostgreSQL driver, which batches by bytes).
    """

    def __init__(self, url: str, key: int, before: int, after: int, width: int = 200) -> None:
        self.url, self.key, self.rows = url, key, before + after
        self.query = (
            f"SELECT g::bigint AS id, repeat('x', {width}) AS v "
            f"FROM generate_series(1, {self.rows}) g "
            f"WHERE CASE WHEN g = {before + 1} "
            f"THEN pg_advisory_lock_shared({key})::text = '' ELSE true END"
        )
        self._engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self._conn = self._engine.connect()
        self._conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        self._held = True

    def waiting(self) -> int:
        """How many sessions wait for the advisory lock right now (the paused runs)."""
        with self._engine.connect() as conn:
            count = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = :k AND NOT granted"
                ),
                {"k": self.key},
            ).scalar_one()
        return int(count)

    def release(self) -> None:
        if self._held:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._held = False

    def close(self) -> None:
        self.release()
        self._conn.close()
        self._engine.dispose()

    def __enter__(self) -> PausedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
