"""Container states and termination messages in the shape the kubelet reports them.

Kept apart from the process handling so the rules (exit code to reason, the termination
message and its FallbackToLogsOnError fallback, the 4 KiB cap) can be unit-tested.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

Obj = dict[str, Any]

MAX_MESSAGE_BYTES = 4096  # kubelet's per-container cap on the termination message
FALLBACK_LINES = 80  # FallbackToLogsOnError: at most this many lines of the log ...
FALLBACK_BYTES = 2048  # ... and at most this many bytes


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_code_of(returncode: int) -> int:
    """Popen's negative "killed by signal N" becomes the shell-style 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    lines = data.splitlines(keepends=True)[-FALLBACK_LINES:]
    return b"".join(lines)[-FALLBACK_BYTES:].decode("utf-8", "replace")


def termination_message(message_file: Path, log_file: Path, policy: str, exit_code: int) -> str:
    """What the kubelet puts into ``state.terminated.message``."""
    message = ""
    try:
        with message_file.open("rb") as fh:
            message = fh.read(MAX_MESSAGE_BYTES).decode("utf-8", "replace")
    except OSError:
        pass
    if not message and policy == "FallbackToLogsOnError" and exit_code != 0:
        message = _tail(log_file)
    return message


def terminated(
    exit_code: int, started_at: str, container_id: str, message: str = "", reason: str = ""
) -> Obj:
    state: Obj = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": started_at,
        "finishedAt": now(),
    }
    if container_id:
        state["containerID"] = container_id
    if message:
        state["message"] = message
    return {"terminated": state}


def lost_container(container: Obj) -> Obj:
    """Status of a container whose process vanished with a previous node process."""
    return {
        "name": container["name"],
        "image": container.get("image") or "none",
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {
            "terminated": {
                "exitCode": 137,
                "reason": "ContainerStatusUnknown",
                "message": "The process node restarted and the container's process is gone",
                "finishedAt": now(),
            }
        },
    }


def condition(kind: str, ok: bool, reason: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now()}
    if reason:
        cond["reason"] = reason
    return cond
