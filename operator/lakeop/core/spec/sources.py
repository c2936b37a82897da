"""``IngestionJob.spec.source`` parsed: files by URI (csv, json, parquet, with their reader
options checked here rather than mid-run) or a SQL query whose URL a Secret holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lakeop.core.spec.fields import ObjectKey, choice, opt_str, secret_name

SOURCE_FORMATS = ("csv", "json", "parquet")
SOURCE_SCHEMES = ("file", "s3", "https", "http")


@dataclass(frozen=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True)
class SourceSpec:
    uri: str
    format: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    secret_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"uri": self.uri, "format": self.format, "options": dict(self.options)}
        if self.secret_ref:
            d["secretRef"] = {"name": self.secret_ref}
        return d


@dataclass(frozen=True)
class SqlSourceSpec:
    url_secret_ref: SecretKeyRef
    query: str
    incremental_column: str | None = None
    split_column: str | None = None  # the key a scaled-out run splits on

    @property
    def split_key(self) -> str | None:
        """The column shares split on: ``splitColumn``, else ``incrementalColumn``."""
        return self.split_column or self.incremental_column

    def to_dict(self) -> dict[str, Any]:
        sql: dict[str, Any] = {
            "urlSecretRef": {"name": self.url_secret_ref.name, "key": self.url_secret_ref.key},
            "query": self.query,
        }
        if self.incremental_column:
            sql["incrementalColumn"] = self.incremental_column
        if self.split_column:
            sql["splitColumn"] = self.split_column
        return {"sql": sql}


def parse_source(key: ObjectKey, raw: Any) -> SourceSpec | SqlSourceSpec:
    """Parse ``spec.source``: either uri/format(/options/secretRef) or ``sql``."""
    if not isinstance(raw, Mapping):
        raise key.error("source", "required mapping", raw)
    if "sql" in raw:
        if "uri" in raw or "format" in raw:
            raise key.error("source", "give either sql or uri/format, not both", dict(raw))
        return _parse_sql(key, raw["sql"])
    p = "source."
    uri = raw.get("uri")
    if not isinstance(uri, str) or "://" not in uri:
        raise key.error(p + "uri", "must be a file://, s3:// or https:// URI", uri)
    scheme = uri.split("://", 1)[0]
    if scheme not in SOURCE_SCHEMES:
        raise key.error(p + "uri", f"scheme must be one of {', '.join(SOURCE_SCHEMES)}", uri)
    if scheme == "file" and not uri.startswith("file:///"):
        raise key.error(p + "uri", "a file:// URI needs an absolute path (file:///...)", uri)
    if scheme != "file" and not uri.split("://", 1)[1].split("/", 1)[0]:
        raise key.error(p + "uri", f"a {scheme}:// URI needs a bucket or host", uri)
    if any(unquote(segment) == ".." for segment in uri.split("://", 1)[1].split("/")):
        raise key.error(p + "uri", "a '..' segment is not allowed", uri)
    if scheme in ("http", "https") and any(c in uri for c in "*?["):
        raise key.error(p + "uri", "globs are only supported for file:// and s3://", uri)
    fmt = choice(key, raw, "format", SOURCE_FORMATS, "", prefix=p)
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise key.error(p + "options", "must be a mapping", options)
    _check_options(key, fmt, options)
    return SourceSpec(uri, fmt, dict(options), secret_name(key, raw, "secretRef", p))


CSV_OPTIONS = {
    "delimiter": str,
    "header": bool,
    "quoteChar": str,
    "nullValues": list,
    "timestampFormat": str,
    "skipRows": int,
}


def _check_options(key: ObjectKey, fmt: str, options: Mapping[str, Any]) -> None:
    allowed: dict[str, type] = CSV_OPTIONS if fmt == "csv" else {}
    for name, value in options.items():
        path = f"source.options.{name}"
        if name not in allowed:
            raise key.error(path, f"unknown option for format {fmt}", value)
        if not isinstance(value, allowed[name]) or (
            allowed[name] is int and isinstance(value, bool)
        ):
            raise key.error(path, f"must be a {allowed[name].__name__}", value)
        _check_option_value(key, path, name, value)
    if "quoteChar" in options and options["quoteChar"] == options.get("delimiter", ","):
        raise key.error(
            "source.options.quoteChar", "must differ from the delimiter", options["quoteChar"]
        )


def _check_option_value(key: ObjectKey, path: str, name: str, value: Any) -> None:
    """The ranges the CSV reader accepts, refused here rather than failing mid-run."""
    if name in ("delimiter", "quoteChar") and len(value) != 1:
        raise key.error(path, "must be a single character", value)
    if name in ("delimiter", "quoteChar") and value in "\r\n":
        raise key.error(path, "cannot be a line break", value)
    if name == "skipRows" and not 0 <= value < 2**31:
        raise key.error(path, "must be an integer 0..2147483647", value)
    if name == "nullValues" and not all(isinstance(v, str) for v in value):
        raise key.error(path, "must be a list of strings", value)


def _parse_sql(key: ObjectKey, raw: Any) -> SqlSourceSpec:
    p = "source.sql."
    if not isinstance(raw, Mapping):
        raise key.error("source.sql", "must be a mapping", raw)
    ref = raw.get("urlSecretRef")
    if (
        not isinstance(ref, Mapping)
        or not isinstance(ref.get("name"), str)
        or not isinstance(ref.get("key"), str)
        or not ref["name"]
        or not ref["key"]
    ):
        raise key.error(p + "urlSecretRef", "must be {name: <secret>, key: <key>}", ref)
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise key.error(p + "query", "required non-empty string", query)
    return SqlSourceSpec(
        url_secret_ref=SecretKeyRef(ref["name"], ref["key"]),
        query=query,
        incremental_column=opt_str(key, raw, "incrementalColumn", p),
        split_column=opt_str(key, raw, "splitColumn", p),
    )


def parse_source_dict(raw: Mapping[str, Any]) -> SourceSpec | SqlSourceSpec:
    """Parse a source rendered by ``to_dict()`` (used by :mod:`lakeop.core.runs.plan`)."""
    return parse_source(ObjectKey("RunPlan", "-", "-"), raw)
