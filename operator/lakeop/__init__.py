"""lakeop: declarative, GitOps-native data-lake ingestion for Kubernetes."""

__version__ = "0.1.0"

GROUP = "lakeop.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
