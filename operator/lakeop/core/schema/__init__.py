"""The field language of SchemaVersions and its rules.

Types, parsing and the meta-schema, defaults, compatibility, diffs, projection of old files,
and the verdict on a SchemaVersion.
"""
