"""The one small edge to the Kubernetes API (kubernetes_asyncio), used by the handlers."""
