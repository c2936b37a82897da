"""Whether ``lakeop run`` can reach a cluster at all, decided before kopf starts.

Without in-cluster credentials or a kubeconfig, kopf would log in, fail, and retry forever
with a traceback each time. ``lakeop run`` asks first, the way the Kubernetes clients look:
a pod's service account (``KUBERNETES_SERVICE_HOST`` and the mounted token), else the files
named by ``KUBECONFIG``, else ``~/.kube/config``. Only presence is checked here; a file that
is present but wrong is kopf's to report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def missing_credentials(
    environ: Mapping[str, str],
    exists: Callable[[str], bool] = os.path.exists,
    home: str = "~",
) -> str | None:
    """None when a cluster can be reached; else a message saying what was looked for."""
    if environ.get("KUBERNETES_SERVICE_HOST") and exists(TOKEN_FILE):
        return None
    named = environ.get("KUBECONFIG")
    if named:
        paths = [p for p in named.split(os.pathsep) if p]
        if any(exists(p) for p in paths):
            return None
        looked = f"KUBECONFIG names {', '.join(paths) or 'nothing'}, which does not exist"
    else:
        default = str(Path(os.path.expanduser(home)) / ".kube" / "config")
        if exists(default):
            return None
        looked = f"KUBECONFIG is not set and {default} does not exist"
    if environ.get("KUBERNETES_SERVICE_HOST"):
        where = f"in a pod, but without a service account token ({TOKEN_FILE})"
    else:
        where = "not in a cluster (KUBERNETES_SERVICE_HOST is not set)"
    return (
        f"lakeop run: no Kubernetes cluster to connect to: {where}, and {looked}. "
        "Set KUBECONFIG to a kubeconfig file, or run the operator in a cluster."
    )
