"""kopf handlers: thin adapters from Kubernetes events to the pure core.

Importing this package registers every handler with kopf (``kopf run -m lakeop.handlers``,
which is what ``lakeop run`` does). One module per kind, plus start-up/clean-up. The
validating webhook (:mod:`lakeop.handlers.webhook`) is loaded only when a webhook port is
configured: kopf refuses to start with admission handlers but no admission server.
"""

from lakeop.handlers import (  # noqa: F401  (imported for their kopf registrations)
    indexes,
    ingestionjob,
    maintenance,
    runs,
    schedule,
    schemaversion,
    startup,
    table,
)
