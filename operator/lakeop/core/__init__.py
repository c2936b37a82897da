"""The pure core, by subject, layered top to bottom (import-linter holds the order):

- :mod:`lakeop.core.runs`: the run plan, Jobs, failures, the queue, re-runs, schedules, status;
- :mod:`lakeop.core.lake`: run input claims, shares of a scaled-out run, partition layout;
- :mod:`lakeop.core.spec`: manifests parsed into typed specs, tenancy, pod templates;
- :mod:`lakeop.core.schema`: the field language, compatibility, diffs, projection, verdicts;
- :mod:`lakeop.core.constants`: the API's names, phases and reasons.

Nothing in this package performs I/O or imports kopf, Kubernetes clients, pyarrow or boto3
(enforced by import-linter). Clocks and ids are passed in.
"""
