"""Dependency caches end to end: a cache action on GitHub's own `@actions/cache` client saves and restores across
runs through the runner's results service, with GitHub's key matching and branch scopes."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conveyor_cli.main import app
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

CACHE = """
name: Cache
inputs:
  path: {description: what to cache, required: true}
  key: {description: the cache's key, required: true}
  restore-keys: {description: prefixes to restore from when the key has no cache}
outputs:
  cache-hit: {description: whether the key itself was restored}
  cache-matched-key: {description: the key of the cache restored}
runs:
  using: node20
  main: restore.js
  post: save.js
  post-if: success()
"""
WORKFLOW = """
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: cache
        uses: ./.github/actions/cache
        with:
          path: deps
          key: ${{ vars.CACHE_KEY }}
          restore-keys: |
            deps-
      - run: >-
          echo "hit=${{ steps.cache.outputs.cache-hit }} matched=${{ steps.cache.outputs.cache-matched-key }}
          has=$(cat deps/version.txt 2>/dev/null || echo nothing)"
      - if: steps.cache.outputs.cache-hit != 'true'
        run: mkdir -p deps && echo "${{ vars.CACHE_KEY }}" > deps/version.txt
"""


def test_caches_are_restored_by_key_and_prefix_within_the_branch_and_from_the_default_branch(
    actions_toolkit: Path, repository: Callable[..., Path], tmp_path: Path
) -> None:
    root = repository(
        {
            ".github/workflows/ci.yml": WORKFLOW,
            ".github/actions/cache/action.yml": CACHE,
            ".github/actions/cache/restore.js": (actions_toolkit / "cache-restore.js").read_text(),
            ".github/actions/cache/save.js": (actions_toolkit / "cache-save.js").read_text(),
        }
    )
    event = tmp_path / "push.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}))
    data = tmp_path / "data"

    def run(branch: str, key: str) -> str:
        subprocess.run(["git", "-C", str(root), "checkout", "-q", "-B", branch], check=True)
        result = CliRunner().invoke(
            app, ["run", "-C", str(root), "-d", str(data), "-e", str(event), "--var", f"CACHE_KEY={key}"]
        )
        assert result.exit_code == 0, result.output
        return "\n".join(re.findall(r"^\[build\]\s+\| (.*)$", result.output, re.M))

    first = run("main", "deps-v1")
    assert "hit=false matched= has=nothing" in first
    assert "Cache saved with key: deps-v1" in first

    again = run("main", "deps-v1")
    assert "hit=true matched=deps-v1 has=deps-v1" in again
    assert "Cache hit occurred on the primary key deps-v1, not saving cache." in again

    feature = run("feature", "deps-v2")  # nothing in its own scope: the default branch's, by the restore key
    assert "Cache hit for restore-key: deps-v1" in feature
    assert "hit=false matched=deps-v1 has=deps-v1" in feature
    assert "Cache saved with key: deps-v2" in feature

    other = run("other", "deps-v2")  # the feature branch's cache is not another branch's to restore
    assert "hit=false matched=deps-v1 has=deps-v1" in other

    back = run("feature", "deps-v2")
    assert "hit=true matched=deps-v2 has=deps-v2" in back
