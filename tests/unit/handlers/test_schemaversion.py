"""SchemaVersion handler against the fake API edge: waiting for the table and for lower versions,
the verdict in status, and the table's currentSchemaVersion advanced through its one writer."""

from __future__ import annotations

from pathlib import Path

import kopf
import pytest
from fake_kube import FakeKube
from handler_builders import FIELDS_V1, NS, Event, body, peers_index, ready, sv_obj

from lakeop.core.constants import SCHEMA_VERSIONS, TABLES
from lakeop.handlers import schemaversion
from lakeop.memo import OperatorMemo


async def reconcile(memo: OperatorMemo, obj: dict, patch: kopf.Patch, *peers: dict) -> None:
    meta = obj["metadata"]
    await schemaversion.reconcile(
        body=body(obj),
        memo=memo,
        patch=patch,
        name=meta["name"],
        namespace=meta["namespace"],
        **peers_index(*peers),
    )


async def test_without_its_table_it_stays_pending_and_retries(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    sv = fake.put(SCHEMA_VERSIONS, sv_obj(1))
    patch = kopf.Patch()
    with pytest.raises(kopf.TemporaryError, match="does not exist"):
        await reconcile(memo, sv, patch, sv)
    # written directly: kopf drops a handler's own patch when the handler raises
    status = fake.status(SCHEMA_VERSIONS, NS, "events-v1")
    assert status["phase"] == "Pending"
    assert status["conditions"][0]["reason"] == "TableNotFound"
    assert [(e.kind, e.type, e.reason) for e in events] == [
        ("SchemaVersion", "Warning", "TableNotFound")
    ]


async def test_a_higher_version_waits_for_an_undecided_lower_one(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake, accepted=0)
    v1, v2 = sv_obj(1), sv_obj(2)
    with pytest.raises(kopf.TemporaryError, match="waiting for events-v1"):
        await reconcile(memo, fake.put(SCHEMA_VERSIONS, v2), kopf.Patch(), v1, v2)
    assert fake.calls == []
    assert events == []


async def test_accepted_version_advances_the_table(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake, accepted=0)
    v1 = fake.put(SCHEMA_VERSIONS, sv_obj(1))
    patch = kopf.Patch()
    await reconcile(memo, v1, patch, v1)
    assert patch["status"]["phase"] == "Accepted"
    (table_write,) = fake.writes("patch_status", TABLES)
    assert table_write.body == {"currentSchemaVersion": 1}
    assert fake.status(TABLES, NS, "events")["currentSchemaVersion"] == 1
    assert [(e.kind, e.reason) for e in events] == [
        ("SchemaVersion", "Accepted"),
        ("Table", "SchemaAdvanced"),
    ]


async def test_incompatible_version_is_rejected_and_counted(
    fake: FakeKube, memo: OperatorMemo, lake: Path, events: list[Event]
) -> None:
    ready(fake, lake, accepted=1)
    fake.objects[(TABLES, NS, "events")]["status"]["currentSchemaVersion"] = 1
    v1 = sv_obj(1, phase="Accepted")
    # BACKWARD: a required field the old data does not have cannot be read from it
    v2 = fake.put(
        SCHEMA_VERSIONS, sv_obj(2, [*FIELDS_V1, {"name": "x", "type": "long", "nullable": False}])
    )
    patch = kopf.Patch()
    await reconcile(memo, v2, patch, v1, v2)
    assert patch["status"]["phase"] == "Rejected"
    assert fake.writes("patch_status", TABLES) == []  # the table keeps version 1
    assert events[-1].type == "Warning"
    rejected = memo.metrics.sample(
        "lakeop_schema_versions_rejected_total", {"namespace": NS, "table": "events"}
    )
    assert rejected == 1.0


async def test_a_verdict_once_given_stands(
    fake: FakeKube, memo: OperatorMemo, events: list[Event]
) -> None:
    v1 = fake.put(SCHEMA_VERSIONS, sv_obj(1, phase="Accepted"))
    patch = kopf.Patch()
    await reconcile(memo, v1, patch, v1)
    assert fake.calls == []
    assert dict(patch) == {}
    assert events == []
