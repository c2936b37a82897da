"""Manifests parsed into typed specs.

Resource specs and their field readers, storage tenancy, pod templates, Secret data.
"""
