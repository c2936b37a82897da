"""The pure core: schema types and rules, partition strategies, specs, plans, status.

Nothing in this package performs I/O or imports kopf, Kubernetes clients, pyarrow or boto3
(enforced by import-linter). Clocks and ids are passed in.
"""
