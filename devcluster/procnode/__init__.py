"""The devcluster's process node: a kubelet stand-in that runs pods as local processes.

There is no container engine on the machines lakeop is developed on, so this node registers
itself with the real API server, binds pending pods to itself and runs each container's
command with the project's ``.venv`` first on PATH. Dev tooling only; never shipped.
"""
