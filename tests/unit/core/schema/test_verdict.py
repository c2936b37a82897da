"""The SchemaVersion verdict shared by the reconciler and the webhook."""

from __future__ import annotations

from lakeop.core.constants import Reason, SchemaPhase
from lakeop.core.schema.verdict import Peer, current_version, judge

V1 = [{"name": "user_id", "type": "string", "nullable": False}]
V2 = [*V1, {"name": "country", "type": "string", "nullable": True}]
V3 = [*V1, {"name": "score", "type": "int", "nullable": False}]


def _judge(fields: list[dict[str, object]], version: int, peers: list[Peer], **kw: object):  # type: ignore[no-untyped-def]
    return judge(
        name=f"t-v{version}",
        version=version,
        fields=fields,
        created="2026-01-02",
        table="t",
        mode=str(kw.get("mode", "BACKWARD")),
        peers=peers,
        admission=bool(kw.get("admission", False)),
    )


def test_first_version_is_accepted_without_diff() -> None:
    verdict = _judge(V1, 1, [])
    assert verdict.phase is SchemaPhase.ACCEPTED
    assert verdict.compatibility == {"mode": "BACKWARD", "checkedAgainst": [], "violations": []}
    assert verdict.diff is None


def test_compatible_version_gets_diff_against_latest_accepted() -> None:
    verdict = _judge(V2, 2, [Peer("t-v1", 1, V1, "Accepted", "2026-01-01")])
    assert verdict.accepted
    assert verdict.compatibility is not None
    assert verdict.compatibility["checkedAgainst"] == [1]
    assert verdict.diff is not None
    assert "country" in str(verdict.diff["added"])


def test_incompatible_version_is_rejected_with_violations() -> None:
    verdict = _judge(V3, 3, [Peer("t-v1", 1, V1, "Accepted"), Peer("t-v2", 2, V2, "Accepted")])
    assert verdict.phase is SchemaPhase.REJECTED
    assert verdict.reason is Reason.INCOMPATIBLE
    assert [v["field"] for v in verdict.violations] == ["score"]
    assert "score" in verdict.message


def test_mode_none_accepts_anything_valid() -> None:
    assert _judge(V3, 2, [Peer("t-v1", 1, V1, "Accepted")], mode="NONE").accepted


def test_rejected_peers_are_not_checked_against() -> None:
    verdict = _judge(V1, 3, [Peer("t-v2", 2, V3, "Rejected")])
    assert verdict.accepted
    assert verdict.compatibility is not None
    assert verdict.compatibility["checkedAgainst"] == []


def test_invalid_schema_is_rejected() -> None:
    verdict = _judge([{"name": "x", "type": "strng"}], 1, [])
    assert (verdict.phase, verdict.reason) == (SchemaPhase.REJECTED, Reason.INVALID_SCHEMA)
    assert "strng" in verdict.message


def test_duplicate_version_older_object_keeps_it() -> None:
    older = Peer("other", 1, V1, None, "2026-01-01")
    newer = Peer("other", 1, V1, None, "2026-01-03")
    assert _judge(V1, 1, [older]).reason is Reason.DUPLICATE_VERSION
    assert _judge(V1, 1, [newer]).accepted
    assert _judge(V1, 1, [newer], admission=True).reason is Reason.DUPLICATE_VERSION


def test_current_version_is_highest_accepted() -> None:
    peers = [
        Peer("a", 1, V1, "Accepted"),
        Peer("b", 3, V1, "Rejected"),
        Peer("c", 2, V2, "Accepted"),
    ]
    assert current_version(peers) == 2
    assert current_version([]) is None


def test_a_promotion_a_delta_table_cannot_apply_is_rejected() -> None:
    v1 = [*V1, {"name": "score", "type": "binary"}]
    v2 = [*V1, {"name": "score", "type": "string"}]  # BACKWARD allows binary→string
    peers = [Peer("t-v1", 1, v1, "Accepted", "2026-01-01")]
    common = {"name": "t-v2", "version": 2, "fields": v2, "created": "2026-01-02", "table": "t"}
    parquet = judge(**common, mode="BACKWARD", peers=peers)  # type: ignore[arg-type]
    assert parquet.accepted
    delta = judge(**common, mode="BACKWARD", peers=peers, table_format="delta")  # type: ignore[arg-type]
    assert delta.phase is SchemaPhase.REJECTED and delta.reason is Reason.FORMAT_CANNOT_EVOLVE
    assert "field score" in delta.message and "binary→string" in delta.message
    assert delta.violations == [
        {"field": "score", "rule": "FormatCannotEvolve", "message": delta.violations[0]["message"]}
    ]
    added = judge(
        **{**common, "fields": [*v1, {"name": "c", "type": "string"}]},
        mode="BACKWARD",
        peers=peers,
        table_format="delta",
    )  # type: ignore[arg-type]
    assert added.accepted
    widened = judge(
        **{
            **common,
            "fields": [*V1, {"name": "score", "type": "binary"}, {"name": "n", "type": "long"}],
        },
        mode="BACKWARD",
        peers=[Peer("t-v1", 1, [*v1, {"name": "n", "type": "int"}], "Accepted", "2026-01-01")],
        table_format="delta",
    )  # type: ignore[arg-type]
    assert widened.accepted  # int→long: lakeop widens the Delta column (a rewrite commit)
