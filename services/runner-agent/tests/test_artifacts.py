"""The artifact store: blocks committed in order, finalizing checks, names per run, what a re-run replaces."""

from __future__ import annotations

from pathlib import Path

import pytest
from conveyor_runner_agent.adapters.artifacts import ArtifactStore, Uploader
from conveyor_runner_agent.adapters.blobs import ResultsError

BUILD = Uploader("run-1", "build", 1)


def uploaded(store: ArtifactStore, uploader: Uploader, name: str, data: bytes) -> int:
    artifact = store.create(uploader, name, "application/zip", None)
    store.stage(artifact.id, "Yg==", [data])
    store.commit(artifact.id, ["Yg=="])
    return store.finalize(uploader.run_id, name, len(data), None).id


def test_blocks_are_joined_in_the_order_the_list_gives(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    artifact = store.create(BUILD, "app", "application/zip", None)
    store.stage(artifact.id, "second", [b"world"])
    store.stage(artifact.id, "first", [b"hello ", b""])
    store.commit(artifact.id, ["first", "second"])

    assert store.list("run-1") == []  # not finalized yet
    done = store.finalize("run-1", "app", 11, "SHA256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9")
    assert store.content(done.id).read_bytes() == b"hello world"
    assert [artifact.name for artifact in store.list("run-1")] == ["app"]
    assert not (tmp_path / "blocks" / str(done.id)).exists()


def test_what_cannot_be_committed_or_finalized_says_why(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    artifact = store.create(BUILD, "app", "application/zip", None)
    with pytest.raises(ResultsError, match="never uploaded"):
        store.finalize("run-1", "app", 0, None)
    with pytest.raises(ResultsError, match="block 'nope' was never staged"):
        store.commit(artifact.id, ["nope"])
    store.stage(artifact.id, "b", [b"abc"])
    store.commit(artifact.id, ["b"])
    with pytest.raises(ResultsError, match=r"has the digest sha256:ba7816bf.*, not sha256:00"):
        store.finalize("run-1", "app", 3, "sha256:00")
    with pytest.raises(ResultsError, match="no upload of an artifact named 'other'"):
        store.finalize("run-1", "other", 3, None)


def test_names_are_per_run_and_an_abandoned_upload_is_replaced(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
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


def test_a_later_attempt_of_the_job_replaces_its_artifact_and_delete_removes_it(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    first = uploaded(store, BUILD, "app", b"first")
    second = uploaded(store, Uploader("run-1", "build", 2), "app", b"second")

    assert [artifact.id for artifact in store.list("run-1", name="app")] == [second]
    assert not store.content(first).exists()
    assert store.delete("run-1", "app").id == second
    assert store.list("run-1") == []
    assert not store.content(second).exists()
    with pytest.raises(ResultsError, match="no artifact named 'app'"):
        store.delete("run-1", "app")
