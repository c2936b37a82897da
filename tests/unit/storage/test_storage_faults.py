"""Every storage operation retries inside the storage: a fault-injecting filesystem below a
real :class:`LocalStorage`, the outcome read back from disk by plain file reads.

``Faulty`` wraps pyarrow's local filesystem and makes its next ``n`` calls raise the OSError
an unreachable S3 endpoint raises (or a terminal one); the exclusive create (a hard link, not
a filesystem call) gets its faults from a subclass of the backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from lakeop.engine import commitlog
from lakeop.engine.commitlog import CommitLog
from lakeop.engine.commits import Commit, DataFile
from lakeop.errors import StorageUnavailableError, TerminalError
from lakeop.storage import LocalStorage, RetryPolicy, open_storage

UNREACHABLE = "AWS Error NETWORK_CONNECTION during PutObject operation: curl code 7"
DENIED = "AWS Error ACCESS_DENIED during PutObject operation: Access Denied"


class Faulty(pafs.FileSystemHandler):
    """pyarrow's local filesystem whose next ``pending`` calls raise ``OSError(message)``."""

    def __init__(self) -> None:
        self.fs = pafs.LocalFileSystem(use_mmap=False)
        self.pending = 0
        self.message = UNREACHABLE
        self.raised = 0

    def fail(self, n: int, message: str = UNREACHABLE) -> None:
        self.pending, self.message = n, message

    def _hit(self) -> None:
        if self.pending:
            self.pending -= 1
            self.raised += 1
            raise OSError(self.message)

    def get_type_name(self) -> str:
        return "faulty"

    def normalize_path(self, path: str) -> str:
        return path

    def equals(self, other: Any) -> bool:
        return other is self

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        self._hit()
        return list(self.fs.get_file_info(paths))

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._hit()
        return list(self.fs.get_file_info(selector))

    def create_dir(self, path: str, recursive: bool) -> None:
        self._hit()
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._hit()
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._hit()
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self._hit()
        self.fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._hit()
        self.fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self._hit()
        self.fs.copy_file(src, dest)

    def open_input_stream(self, path: str) -> pa.NativeFile:
        self._hit()
        return self.fs.open_input_stream(path)

    def open_input_file(self, path: str) -> pa.NativeFile:
        self._hit()
        return self.fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        self._hit()
        return self.fs.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: Any) -> pa.NativeFile:
        raise NotImplementedError


class FaultyCreate(LocalStorage):
    """The local backend whose next ``pending`` exclusive creates fail before linking."""

    pending = 0
    calls = 0

    def _create(self, rel: str, data: bytes) -> bool:
        self.calls += 1
        if self.pending:
            self.pending -= 1
            raise OSError(UNREACHABLE)
        return super()._create(rel, data)


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def faults() -> Faulty:
    return Faulty()


@pytest.fixture
def storage(tmp_path: Path, faults: Faulty, slept: list[float]) -> FaultyCreate:
    root = str(tmp_path / "lake")
    os.makedirs(root)
    return FaultyCreate(
        pafs.PyFileSystem(faults), root, f"file://{root}", RetryPolicy(sleep=slept.append)
    )


def seed(storage: LocalStorage, rel: str, data: bytes = b"seed") -> Path:
    path = Path(storage.full(rel))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _stream(s: LocalStorage) -> None:
    with s.open_output("o/out") as out:
        out.write(b"streamed")


#: operation -> (call it, check the outcome on disk)
OPERATIONS: dict[str, tuple[Callable[[LocalStorage], Any], Callable[[LocalStorage, Any], None]]]
OPERATIONS = {
    "write_bytes": (
        lambda s: s.write_bytes("a/b.json", b"new"),
        lambda s, _: Path(s.full("a/b.json")).read_bytes() == b"new" or pytest.fail("content"),
    ),
    "write_bytes_atomic": (
        lambda s: s.write_bytes_atomic("a/c.json", b"whole"),
        lambda s, _: Path(s.full("a/c.json")).read_bytes() == b"whole" or pytest.fail("content"),
    ),
    "read_bytes": (
        lambda s: (seed(s, "r.json", b"abc"), s.read_bytes("r.json"))[1],
        lambda s, got: got == b"abc" or pytest.fail(repr(got)),
    ),
    "exists": (
        lambda s: (seed(s, "e.json"), s.exists("e.json"))[1],
        lambda s, got: got is True or pytest.fail(repr(got)),
    ),
    "list_files": (
        lambda s: (seed(s, "d/1"), seed(s, "d/2"), s.list_files("d"))[2],
        lambda s, got: [e.path for e in got] == ["d/1", "d/2"] or pytest.fail(repr(got)),
    ),
    "list_dirs": (
        lambda s: (seed(s, "x/y/1"), s.list_dirs("x"))[1],
        lambda s, got: got == ["y"] or pytest.fail(repr(got)),
    ),
    "delete": (
        lambda s: (seed(s, "gone"), s.delete("gone")),
        lambda s, _: not Path(s.full("gone")).exists() or pytest.fail("still there"),
    ),
    "delete_dir": (
        lambda s: (seed(s, "dd/1"), s.delete_dir("dd")),
        lambda s, _: not Path(s.full("dd")).exists() or pytest.fail("still there"),
    ),
    "move": (
        lambda s: (seed(s, "src", b"m"), s.move("src", "to/dst")),
        lambda s, _: (
            (Path(s.full("to/dst")).read_bytes() == b"m" and not Path(s.full("src")).exists())
            or pytest.fail("not moved")
        ),
    ),
    "open_input": (
        lambda s: (seed(s, "in", b"xyz"), s.open_input("in").read())[1],
        lambda s, got: got == b"xyz" or pytest.fail(repr(got)),
    ),
    "open_output": (
        _stream,
        lambda s, _: Path(s.full("o/out")).read_bytes() == b"streamed" or pytest.fail("content"),
    ),
}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
@pytest.mark.parametrize("failures", [1, 3])
def test_transient_faults_are_retried_inside(
    name: str, failures: int, storage: FaultyCreate, faults: Faulty, slept: list[float]
) -> None:
    call, check = OPERATIONS[name]
    faults.fail(failures)
    check(storage, call(storage))
    assert faults.raised == failures
    assert slept == [0.5, 1.0, 2.0][:failures]


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_lasting_outage_raises_storage_unavailable(
    name: str, storage: FaultyCreate, faults: Faulty, slept: list[float]
) -> None:
    call, _ = OPERATIONS[name]
    faults.fail(1000)
    with pytest.raises(StorageUnavailableError, match="storage unavailable") as exc:
        call(storage)
    assert storage.url in str(exc.value)
    assert slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_terminal_error_is_not_retried(
    name: str, storage: FaultyCreate, faults: Faulty, slept: list[float]
) -> None:
    call, _ = OPERATIONS[name]
    faults.fail(1000, DENIED)
    with pytest.raises(TerminalError, match="Access Denied") as exc:
        call(storage)
    assert exc.value.reason == "StorageError"
    assert faults.raised == 1 and slept == []


def test_a_lost_exclusive_create_is_an_answer_not_a_fault(
    storage: FaultyCreate, slept: list[float]
) -> None:
    assert storage.create_exclusive("_lakeop/commits/1.json", b"first") is True
    assert storage.create_exclusive("_lakeop/commits/1.json", b"second") is False
    assert storage.calls == 2 and slept == []  # each asked once, nothing retried
    assert Path(storage.full("_lakeop/commits/1.json")).read_bytes() == b"first"


def test_an_unreachable_exclusive_create_is_retried(
    storage: FaultyCreate, slept: list[float]
) -> None:
    storage.pending = 2
    assert storage.create_exclusive("_lakeop/claims/j/1.json", b"mine") is True
    assert storage.calls == 3 and slept == [0.5, 1.0]
    assert Path(storage.full("_lakeop/claims/j/1.json")).read_bytes() == b"mine"
    storage.pending = 10
    with pytest.raises(StorageUnavailableError):
        storage.create_exclusive("_lakeop/claims/j/2.json", b"never")
    assert not Path(storage.full("_lakeop/claims/j/2.json")).exists()


def test_the_commit_log_rides_out_an_outage(
    storage: FaultyCreate, faults: Faulty, slept: list[float]
) -> None:
    """A call site that calls storage plainly (the commit log) gets the retries."""
    commit = Commit(
        run_id="r1",
        job="job",
        committed_at="2026-03-01T00:00:00Z",
        committed_ms=1_772_323_200_000,
        schema_version=1,
        mode="append",
        files=[DataFile("part-r1.parquet", "", 3, 30)],
    )
    faults.fail(2)
    storage.pending = 1
    done, created = CommitLog(storage).commit(commit)
    assert created and done.seq == 1 and slept
    commitlog.forget(storage.url)
    (again,) = CommitLog(open_storage(storage.root)).commits()
    assert again.run_id == "r1" and again.files == commit.files
