"""Which ``file://`` paths a run's Job pod can see, decided before the Job exists.

A Job pod's root filesystem is its image's, read-only: a ``file://`` table location or source
reaches it only through a volume mounted at that path. Its volumes are the operator's lake
volume (``LAKEOP_LAKE_VOLUME`` at ``LAKEOP_LAKE_MOUNT_PATH``, in every Job pod) and the
IngestionJob's ``spec.podTemplate`` mounts of the ``ingest`` container. A path that none of
them covers would make every run fail with a puzzling "not found"; lakeop says
``Ready=False``, reason ``LocationNotMounted``, naming the path, instead. The operator checks
this only where Job pods do not share its filesystem (``LAKEOP_REQUIRE_MOUNTS``, on in a pod).

A Table is checked against the lake volume alone, the one volume every Job pod that writes it
has; an IngestionJob's source and table location against the lake volume and its template.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from posixpath import normpath
from urllib.parse import unquote, urlsplit

from lakeop.core.constants import LAKE_VOLUME, Reason
from lakeop.core.spec.fields import ObjectKey
from lakeop.core.spec.podtemplate import PREFIX, PodTemplate
from lakeop.errors import TerminalError

__all__ = ["LAKE_VOLUME", "LocationNotMountedError", "check_lake_mount", "require_mounted"]
_GLOB = "*?["


class LocationNotMountedError(TerminalError):
    """A ``file://`` path that no volume of the Job pods covers."""

    reason = Reason.LOCATION_NOT_MOUNTED.value


def local_path(url: str) -> str | None:
    """The filesystem path of a ``file://`` URL or absolute path; None for other schemes."""
    if url.startswith("/"):
        path = url
    elif url.startswith("file://"):
        path = unquote(urlsplit(url).path)
    else:
        return None
    return normpath(path) if path else None


def fixed_part(path: str) -> str:
    """The directories of ``path`` before its first glob character (all of it without one)."""
    cut = min((i for i, ch in enumerate(path) if ch in _GLOB), default=-1)
    if cut < 0:
        return path
    head = path[:cut]
    return normpath(head[: head.rfind("/") + 1] or "/")


def covered(path: str, mounts: Iterable[str]) -> bool:
    """Whether ``path`` is a mount path or lies below one."""
    for mount in mounts:
        root = normpath(mount)
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


def pod_mount_paths(template: PodTemplate | None, lake_mount_path: str | None) -> list[str]:
    """The mount paths of the ``ingest`` container beside its scratch directory."""
    paths = [lake_mount_path] if lake_mount_path else []
    if template is not None:
        paths += [str(m["mountPath"]) for m in template.volume_mounts if m.get("mountPath")]
    return paths


def check_lake_mount(
    key: ObjectKey, template: PodTemplate | None, lake_mount_path: str | None
) -> None:
    """Refuse (:class:`~lakeop.errors.InvalidSpecError`) a ``spec.podTemplate`` mount at the
    lake volume's mount path: the operator adds that volume (``LAKEOP_LAKE_MOUNT_PATH``) to every
    Job pod, and the API server refuses a container with two mounts at one path (HTTP 422).
    The template's volume *name* cannot be the lake volume's either; its parser refuses that."""
    if template is None or not lake_mount_path:
        return
    lake = normpath(lake_mount_path)
    for i, mount in enumerate(template.volume_mounts):
        where = mount.get("mountPath")
        if isinstance(where, str) and normpath(where) == lake:
            raise key.error(
                f"{PREFIX}spec.containers[0].volumeMounts[{i}].mountPath",
                f"is where the operator mounts the lake volume {LAKE_VOLUME!r} in every Job pod "
                "(LAKEOP_LAKE_MOUNT_PATH): mount this volume elsewhere, or drop it and use the "
                "lake volume",
                where,
            )


def require_mounted(what: str, urls: Mapping[str, str | None], mounts: Iterable[str]) -> None:
    """Refuse (:class:`LocationNotMountedError`) the first ``file://`` url no mount covers.

    ``what`` names the object (``Table analytics/events``); ``urls`` maps a field name
    (``spec.location``) to its URL.
    """
    seen = list(mounts)
    for field_name, url in urls.items():
        path = local_path(url) if url else None
        if path is None or covered(fixed_part(path), seen):
            continue
        volumes = ", ".join(seen) if seen else "none besides lakeop's scratch directory"
        raise LocationNotMountedError(
            f"{what}: {field_name} {url}: no volume of the Job pods covers {fixed_part(path)} "
            f"(their mounts: {volumes}); mount it at the same path in the operator and the "
            f"Job pods (LAKEOP_LAKE_VOLUME and LAKEOP_LAKE_MOUNT_PATH, or the IngestionJob's "
            f"spec.podTemplate), or use s3://"
        )
