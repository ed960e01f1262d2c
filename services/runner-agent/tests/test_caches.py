"""The cache store: GitHub's key matching and scopes, caches that never change, and what is evicted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conveyor_runner_agent.adapters import blobs
from conveyor_runner_agent.adapters.caches import CacheStore
from conveyor_runner_agent.adapters.twirp import ResultsError

MAIN, FEATURE = "refs/heads/main", "refs/heads/feature"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CacheStore]:
    caches = CacheStore(tmp_path)
    yield caches
    caches.close()


def saved(store: CacheStore, key: str, scope: str = MAIN, data: bytes = b"x", version: str = "v") -> int:
    cache = store.reserve("acme/app", scope, key, version)
    store.stage(cache.id, "Yg==", [data])
    store.commit(cache.id, ["Yg=="])
    return store.finalize("acme/app", scope, key, version, len(data)).id


def found(store: CacheStore, key: str, restore: tuple[str, ...] = (), scopes: tuple[str, ...] = (MAIN,)) -> str | None:
    cache = store.find("acme/app", scopes, key, restore, "v")
    return cache.key if cache else None


def test_the_key_first_then_keys_it_begins_then_each_restore_key_the_newest_of_several(store: CacheStore) -> None:
    saved(store, "npm-linux-abc")
    saved(store, "npm-linux-abc-extra")  # newer, but the exact key wins
    saved(store, "npm-linux-def")
    saved(store, "npm-mac-1")

    assert found(store, "npm-linux-abc") == "npm-linux-abc"
    assert found(store, "npm-linux") == "npm-linux-def"  # the newest that begins with the key
    assert found(store, "npm-windows-1", ("npm-mac-", "npm-")) == "npm-mac-1"  # restore keys in their order
    assert found(store, "pip-1", ("pip-",)) is None
    assert store.find("acme/app", (MAIN,), "npm-linux-abc", (), "another-version") is None
    assert store.find("other/repo", (MAIN,), "npm-linux-abc", (), "v") is None


def test_scopes_are_searched_in_order_each_with_every_key(store: CacheStore) -> None:
    saved(store, "deps-main", MAIN)
    saved(store, "deps-feature", FEATURE)

    assert found(store, "deps-x", ("deps-",), (FEATURE, MAIN)) == "deps-feature"
    assert found(store, "deps-main", (), (FEATURE, MAIN)) == "deps-main"  # the feature scope has no such key
    assert found(store, "deps-x", ("deps-",), ("refs/heads/other", MAIN)) == "deps-main"


def test_a_cache_never_changes_and_one_being_saved_is_not_saved_twice(
    store: CacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(store, "k")
    with pytest.raises(ResultsError, match="a cache with the key 'k' exists in refs/heads/main") as refused:
        store.reserve("acme/app", MAIN, "k", "v")
    assert refused.value.code == "already_exists"
    saved(store, "k", FEATURE)  # another scope holds its own

    store.reserve("acme/app", MAIN, "busy", "v")
    with pytest.raises(ResultsError, match="is being saved by another job"):
        store.reserve("acme/app", MAIN, "busy", "v")
    monkeypatch.setattr(blobs, "ABANDONED_AFTER", timedelta(0))
    assert store.reserve("acme/app", MAIN, "busy", "v").key == "busy"  # an abandoned reservation is replaced

    cache = store.reserve("acme/app", MAIN, "sized", "v")
    store.stage(cache.id, "Yg==", [b"abc"])
    store.commit(cache.id, ["Yg=="])
    with pytest.raises(ResultsError, match="holds 3 bytes, not the 4 reported"):
        store.finalize("acme/app", MAIN, "sized", "v", 4)


def test_the_least_recently_used_go_over_the_limit_and_the_unused_after_a_week(store: CacheStore) -> None:
    store.limit = 10
    old = saved(store, "old", data=b"1234")
    used = saved(store, "used", data=b"1234")
    assert found(store, "old") == "old"  # now the most recently used
    saved(store, "new", data=b"1234")  # 12 bytes: the least recently used goes

    assert found(store, "used") is None
    assert found(store, "old") == "old"
    assert not store.blobs.content(used).exists()

    store._query("UPDATE caches SET used_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?", old)
    assert found(store, "old") is None
    assert found(store, "new") == "new"


def test_a_cache_just_saved_is_not_the_one_evicted_for_it(store: CacheStore) -> None:
    store.limit = 6
    saved(store, "old", data=b"1234")
    fresh = store.reserve("acme/app", MAIN, "new", "v")
    store.stage(fresh.id, "Yg==", [b"5678"])
    store.commit(fresh.id, ["Yg=="])
    assert found(store, "old") == "old"  # used while the new one uploads: newer than its reservation

    assert store.finalize("acme/app", MAIN, "new", "v", 4).key == "new"
    assert found(store, "new") == "new"
    assert found(store, "old") is None
