"""RefCache: a repository's copy at a ref is filled once, whole or not at all."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conveyor_runtime import RefCache


def test_a_copy_is_filled_once_and_then_read(tmp_path: Path) -> None:
    cache = RefCache(tmp_path, "actions")
    fills: list[Path] = []

    def fill(work: Path) -> None:
        fills.append(work)
        (work / "action.yml").write_text("name: x\n")

    first = cache.copy("octo", "tools", "v1", fill)
    second = cache.copy("octo", "tools", "v1", fill)

    assert first == second == tmp_path / "octo" / "tools" / "v1"
    assert (first / "action.yml").read_text() == "name: x\n"
    assert len(fills) == 1
    assert not fills[0].exists()  # the folder it was filled in became the copy


def test_a_ref_is_percent_encoded_in_the_path(tmp_path: Path) -> None:
    copy = RefCache(tmp_path, "actions").copy("octo", "tools", "feature/x", lambda work: None)
    assert copy == tmp_path / "octo" / "tools" / "feature%2Fx"


def test_a_failed_fill_leaves_nothing_and_the_next_call_fills_again(tmp_path: Path) -> None:
    cache = RefCache(tmp_path, "actions")

    def failing(work: Path) -> None:
        (work / "half").write_text("written before the failure")
        raise RuntimeError("the fetch failed")

    with pytest.raises(RuntimeError, match="the fetch failed"):
        cache.copy("octo", "tools", "v1", failing)
    assert list((tmp_path / "octo" / "tools").iterdir()) == []

    def whole(work: Path) -> None:
        (work / "whole").write_text("ok")

    copy = cache.copy("octo", "tools", "v1", whole)
    assert sorted(path.name for path in copy.iterdir()) == ["whole"]


def test_concurrent_callers_share_one_fill(tmp_path: Path) -> None:
    cache = RefCache(tmp_path, "actions")
    fills = 0
    counted = threading.Lock()

    def slow_fill(work: Path) -> None:
        nonlocal fills
        with counted:
            fills += 1
        time.sleep(0.05)
        (work / "action.yml").write_text("name: x\n")

    with ThreadPoolExecutor(8) as pool:
        copies = list(pool.map(lambda _: cache.copy("octo", "tools", "v1", slow_fill), range(8)))

    assert fills == 1
    assert set(copies) == {tmp_path / "octo" / "tools" / "v1"}


def test_without_a_root_the_users_cache_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert RefCache(None, "workflows").root == tmp_path / "xdg" / "conveyor" / "workflows"
