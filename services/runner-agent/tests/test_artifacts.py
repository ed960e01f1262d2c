"""The artifact store and its blobs: blocks committed in order, finalizing checks, names per run, what a re-run
replaces, uploads abandoned."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conveyor_runner_agent.adapters import blobs
from conveyor_runner_agent.adapters.artifacts import ArtifactStore, Uploader
from conveyor_runner_agent.adapters.blobs import BlobFolder
from conveyor_runner_agent.adapters.twirp import ResultsError

BUILD = Uploader("run-1", "build", 1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArtifactStore]:
    artifacts = ArtifactStore(tmp_path)
    yield artifacts
    artifacts.close()


def uploaded(store: ArtifactStore, uploader: Uploader, name: str, data: bytes) -> int:
    artifact = store.create(uploader, name, "application/zip", None)
    store.stage(artifact.id, "Yg==", [data])
    store.commit(artifact.id, ["Yg=="])
    return store.finalize(uploader, name, len(data), None).id


def test_blocks_are_joined_in_the_order_the_list_gives(store: ArtifactStore, tmp_path: Path) -> None:
    artifact = store.create(BUILD, "app", "application/zip", None)
    store.stage(artifact.id, "second", [b"world"])
    store.stage(artifact.id, "first", [b"hello ", b""])
    store.commit(artifact.id, ["first", "second"])

    assert store.list("run-1") == []  # not finalized yet
    done = store.finalize(BUILD, "app", 11, "SHA256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
    assert store.content(done.id).read_bytes() == b"hello world"
    assert [artifact.name for artifact in store.list("run-1")] == ["app"]
    assert not (tmp_path / "blocks" / str(done.id)).exists()


def test_what_cannot_be_committed_or_finalized_says_why(store: ArtifactStore, tmp_path: Path) -> None:
    artifact = store.create(BUILD, "app", "application/zip", None)
    with pytest.raises(ResultsError, match="never uploaded"):
        store.finalize(BUILD, "app", 0, None)
    with pytest.raises(ResultsError, match="block 'nope' was never staged"):
        store.commit(artifact.id, ["nope"])
    store.stage(artifact.id, "b", [b"abc"])
    store.commit(artifact.id, ["b"])
    with pytest.raises(ResultsError, match=r"has the digest sha256:ba7816bf.*, not sha256:00"):
        store.finalize(BUILD, "app", 3, "sha256:00")
    with pytest.raises(ResultsError, match="no upload of an artifact named 'other'"):
        store.finalize(BUILD, "other", 3, None)


def test_names_are_per_run_and_an_abandoned_upload_is_replaced(store: ArtifactStore, tmp_path: Path) -> None:
    uploaded(store, BUILD, "app", b"one")
    with pytest.raises(ResultsError, match="already exists on the workflow run") as refused:
        store.create(Uploader("run-1", "other-job", 1), "app", "application/zip", None)
    assert refused.value.code == "already_exists"
    uploaded(store, Uploader("run-2", "other-job", 1), "app", b"two")  # another run: its own name

    abandoned = store.create(BUILD, "half", "application/zip", None)
    store.stage(abandoned.id, "b", [b"x"])
    again = store.create(BUILD, "half", "application/zip", None)
    assert again.id != abandoned.id
    assert not (tmp_path / "blocks" / str(abandoned.id)).exists()


def test_a_later_attempt_of_the_job_replaces_its_artifact_and_delete_removes_it(
    store: ArtifactStore, tmp_path: Path
) -> None:
    first = uploaded(store, BUILD, "app", b"first")
    second = uploaded(store, Uploader("run-1", "build", 2), "app", b"second")

    assert [artifact.id for artifact in store.list("run-1", name="app")] == [second]
    assert not store.content(first).exists()
    assert store.delete("run-1", "app").id == second
    assert store.list("run-1") == []
    assert not store.content(second).exists()
    with pytest.raises(ResultsError, match="no artifact named 'app'"):
        store.delete("run-1", "app")


def test_another_job_cannot_take_a_name_being_uploaded_until_that_upload_is_abandoned(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.create(BUILD, "shared", "application/zip", None)
    with pytest.raises(ResultsError, match="already exists on the workflow run"):
        store.create(Uploader("run-1", "matrix-leg-2", 1), "shared", "application/zip", None)
    again = store.create(BUILD, "shared", "application/zip", None)  # the same job, starting over
    assert again.id != first.id
    with pytest.raises(ResultsError, match="no upload of an artifact named 'shared'"):
        store.finalize(Uploader("run-1", "matrix-leg-2", 1), "shared", 0, None)  # not the other job's to finalize

    monkeypatch.setattr(blobs, "ABANDONED_AFTER", timedelta(0))
    taken = store.create(Uploader("run-1", "matrix-leg-2", 1), "shared", "application/zip", None)
    assert [artifact.id for artifact in store._rows("name = 'shared'")] == [taken.id]
    assert not (tmp_path / "blocks" / str(again.id)).exists()


def test_a_commit_sent_again_stands_and_an_overlong_block_id_is_refused(tmp_path: Path) -> None:
    folder = BlobFolder(tmp_path)
    folder.stage(1, "a", [b"one "])
    folder.stage(1, "b", [b"two"])
    first = folder.commit(1, ["a", "b"])
    assert folder.commit(1, ["a", "b"]) == first  # its answer was lost, the client asks again
    assert folder.content(1).read_bytes() == b"one two"
    with pytest.raises(ResultsError, match="a block id is 1 to 100 characters, not 200") as refused:
        folder.open_block(2, "x" * 200)
    assert refused.value.code == "invalid_argument"

    writer = folder.open_block(3, "c")
    writer.write(b"half")
    writer.abandon()  # the upload was cut short: nothing is staged
    with pytest.raises(ResultsError, match="block 'c' was never staged"):
        folder.commit(3, ["c"])


def test_a_reruns_artifact_replaces_the_earlier_one_only_once_finalized_and_finalizing_again_stands(
    store: ArtifactStore
) -> None:
    first = uploaded(store, BUILD, "app", b"first")
    rerun = Uploader("run-1", "build", 2)
    store.create(rerun, "app", "application/zip", None)  # the re-run's upload, cut short
    assert [artifact.id for artifact in store.list("run-1")] == [first]

    second = uploaded(store, rerun, "app", b"second")
    assert [artifact.id for artifact in store.list("run-1")] == [second]
    assert store.finalize(rerun, "app", 6, None).id == second  # its answer was lost, the client asks again
    with pytest.raises(ResultsError, match="no upload of an artifact named 'app'"):
        store.finalize(rerun, "app", 7, None)


def test_an_artifact_past_its_retention_is_gone_and_one_without_is_kept_ninety_days(store: ArtifactStore) -> None:
    kept = uploaded(store, BUILD, "kept", b"x")
    [listed] = store.list("run-1")
    assert listed.expires_at is not None
    assert timedelta(days=89) < listed.expires_at - listed.created_at <= timedelta(days=90)

    short = store.create(BUILD, "short", "application/zip", datetime.now(UTC) + timedelta(milliseconds=50))
    store.stage(short.id, "Yg==", [b"y"])
    store.commit(short.id, ["Yg=="])
    store.finalize(BUILD, "short", 1, None)
    time.sleep(0.1)

    assert [artifact.id for artifact in store.list("run-1")] == [kept]
    with pytest.raises(ResultsError, match=f"there is no artifact {short.id}"):
        store.readable(short.id)
    assert not store.content(short.id).exists()
