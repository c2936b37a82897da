"""Which storage locations a namespace may write to (``LAKEOP_ALLOWED_LOCATIONS``).

One operator usually serves many teams, each in its own namespace, over one lake. Without a
fence, a Table in namespace ``a`` could name ``s3://lake/b/...`` as its location and overwrite
team ``b``'s data with the operator's (or the Job pod's) credentials. Both the validating
webhook and the reconcile handler call :func:`check_location` before anything is written, so
the rule lives here once, pure, and is table-tested.

Syntax of ``LAKEOP_ALLOWED_LOCATIONS`` (entries separated by commas, spaces or newlines)::

    s3://lake/{namespace}/          every namespace, under its own prefix
    s3://shared/                    every namespace (a plain prefix)
    analytics=s3://warehouse/       only namespace ``analytics``
    ml=/data/ml/{namespace}         only ``ml``; a bare absolute path means file://

- ``{namespace}`` is replaced by the Table's namespace before comparing.
- ``NAME=PREFIX`` restricts the entry to the namespace ``NAME``.
- Prefixes match whole path segments: ``s3://lake/a`` allows ``s3://lake/a`` and
  ``s3://lake/a/x`` but not ``s3://lake/ab``.
- Unset or empty means no restriction.

Locations are normalised before comparing (duplicate and trailing slashes, ``.`` segments,
scheme case, bare absolute paths as ``file://``). A ``..`` segment, also percent-encoded, is
refused outright rather than resolved: a location that climbs out of its prefix is a mistake
or an attack, and either way must not be written to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from lakeop.errors import TerminalError

ENV_VAR = "LAKEOP_ALLOWED_LOCATIONS"
NAMESPACE_PLACEHOLDER = "{namespace}"

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SEPARATORS = re.compile(r"[,\s]+")


class InvalidAllowedLocationsError(TerminalError):
    """``LAKEOP_ALLOWED_LOCATIONS`` cannot be parsed; the message names the entry."""

    reason = "InvalidConfiguration"


class LocationError(ValueError):
    """A location cannot be normalised (relative, traversal, no scheme)."""


@dataclass(frozen=True)
class AllowedLocation:
    """One entry: a prefix (maybe holding ``{namespace}``), for one namespace or for all."""

    prefix: str
    namespace: str | None = None

    def prefix_for(self, namespace: str) -> str | None:
        """The normalised prefix that applies to ``namespace``, or None if the entry does not."""
        if self.namespace is not None and self.namespace != namespace:
            return None
        return normalise_location(self.prefix.replace(NAMESPACE_PLACEHOLDER, namespace))


@dataclass(frozen=True)
class AllowedLocations:
    """The parsed setting; no entries means every location is allowed."""

    entries: tuple[AllowedLocation, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return not self.entries

    @classmethod
    def only(cls, namespace: str, prefixes: tuple[str, ...]) -> AllowedLocations:
        """The setting as a run plan carries it: ``prefixes`` (already normalised, for
        ``namespace``) and nothing else; no prefixes means no restriction."""
        return cls(tuple(AllowedLocation(p, namespace) for p in prefixes))

    def prefixes_for(self, namespace: str) -> list[str]:
        """Normalised prefixes ``namespace`` may write under, in the order configured."""
        found = (entry.prefix_for(namespace) for entry in self.entries)
        return [p for p in found if p is not None]


def parse_allowed_locations(text: str | None) -> AllowedLocations:
    """Parse the ``LAKEOP_ALLOWED_LOCATIONS`` value (see the module docstring for syntax)."""
    if not text or not text.strip():
        return AllowedLocations()
    entries: list[AllowedLocation] = []
    for raw in _SEPARATORS.split(text.strip()):
        if not raw:
            continue
        namespace: str | None = None
        prefix = raw
        head, sep, tail = raw.partition("=")
        # "=" may legitimately appear inside a URL's path; only a namespace-shaped head that
        # comes before any "://" or "/" is read as a namespace restriction.
        if sep and "/" not in head and ":" not in head:
            if not _NAMESPACE.match(head):
                raise InvalidAllowedLocationsError(
                    f"{ENV_VAR}: entry {raw!r}: {head!r} is not a namespace name"
                )
            namespace, prefix = head, tail
        if not prefix:
            raise InvalidAllowedLocationsError(f"{ENV_VAR}: entry {raw!r} has an empty prefix")
        try:
            # Validate the shape now, with a namespace that cannot clash, so a typo fails at
            # operator start-up rather than at the first Table.
            normalise_location(prefix.replace(NAMESPACE_PLACEHOLDER, "ns"))
        except LocationError as exc:
            raise InvalidAllowedLocationsError(f"{ENV_VAR}: entry {raw!r}: {exc}") from exc
        entries.append(AllowedLocation(prefix=prefix, namespace=namespace))
    return AllowedLocations(tuple(entries))


def normalise_location(location: str) -> str:
    """``scheme://authority/path`` with one slash between segments and no trailing slash.

    Raises :class:`LocationError` for relative paths, empty buckets and any ``..`` segment.
    """
    match = _SCHEME.match(location)
    if match:
        scheme = match["scheme"].lower()
        rest = match["rest"]
    elif location.startswith("/"):
        scheme, rest = "file", location
    else:
        raise LocationError(
            f"location {location!r} is neither a URL (scheme://...) nor an absolute path"
        )
    if scheme == "file":
        authority, path = "", rest
        if not path.startswith("/"):
            host = rest.split("/", 1)[0]
            raise LocationError(
                f"location {location!r}: file:// needs an absolute path (file:///dir/...); "
                f"{host!r} would be read as a host name and dropped"
            )
    else:
        authority, _, path = rest.partition("/")
        if not authority:
            raise LocationError(f"location {location!r} has no bucket or host")
    segments: list[str] = []
    for segment in path.split("/"):
        if unquote(segment) == "..":
            raise LocationError(f"location {location!r} contains a '..' segment")
        if segment in ("", "."):
            continue
        segments.append(segment)
    return f"{scheme}://{authority}/" + "/".join(segments)


#: The schemes a table location may use.
LOCATION_SCHEMES = ("file", "s3")


def location_problem(location: str) -> str | None:
    """Why ``location`` cannot be a table location, else None: only ``file:///abs/path``,
    ``/abs/path`` and ``s3://bucket/prefix``, with no ``..`` segment."""
    try:
        normalised = normalise_location(location)
    except LocationError as exc:
        return str(exc)
    scheme = normalised.split("://", 1)[0]
    if scheme not in LOCATION_SCHEMES:
        return f"location {location!r}: the scheme must be file:// or s3://"
    return None


def _is_under(location: str, prefix: str) -> bool:
    return location == prefix or location.startswith(prefix.rstrip("/") + "/")


def check_location(
    namespace: str,
    location: str,
    allowed: AllowedLocations,
    resolve: Callable[[str], str] | None = None,
) -> str | None:
    """None if a Table in ``namespace`` may use ``location``, else a message saying why not.

    The message names the namespace, the location and the prefixes that would be allowed, so
    it can go straight into a webhook denial or a ``Ready=False`` condition. Without any
    configured entry every location is allowed, as before tenancy was configured.

    ``resolve`` maps a normalised location to where it really leads (the caller's edge
    resolves symbolic links, :func:`lakeop.storage.real_location`): the location must then
    also lead under where one of the prefixes leads, so a link under an allowed prefix cannot
    point out of it.
    """
    if allowed.unrestricted:
        return None
    try:
        normalised = normalise_location(location)
    except LocationError as exc:
        return f"namespace {namespace!r}: {exc}"
    prefixes = allowed.prefixes_for(namespace)
    if any(_is_under(normalised, prefix) for prefix in prefixes):
        if resolve is None:
            return None
        real = resolve(normalised)
        real_prefixes = [resolve(prefix) for prefix in prefixes]
        if any(_is_under(real, prefix) for prefix in real_prefixes):
            return None
        return (
            f"location {location!r} is not allowed for namespace {namespace!r}: it leads to "
            f"{real!r} through a symbolic link, outside {', '.join(real_prefixes)}"
        )
    if not prefixes:
        return (
            f"location {location!r} is not allowed: {ENV_VAR} grants namespace "
            f"{namespace!r} no location"
        )
    return (
        f"location {location!r} is not allowed for namespace {namespace!r}: "
        f"it must be under one of {', '.join(prefixes)}"
    )
