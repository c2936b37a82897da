"""lakeop: declarative, GitOps-native data-lake ingestion for Kubernetes."""

__version__ = "0.1.0"
