"""Fetching remote actions with real git from bare repositories under tmp_path, and from an offline cache."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conveyor_runner_agent.adapters.action_source import ActionSource, find_metadata
from conveyor_runner_agent.domain import ActionError, RemoteAction, parse_uses

pytestmark = pytest.mark.timeout(60)

_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _commit(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", message)
    return _git(work, "rev-parse", "HEAD")


class Remote:
    """`<base>/octo/tools`: v1 (tag) and main hold a root action; `next` (branch) a changed one and a sub-action."""

    def __init__(self, tmp_path: Path) -> None:
        self.base = tmp_path / "remote"
        work = tmp_path / "work"
        work.mkdir()
        _git(work, "init", "-q", "-b", "main")
        self.v1 = _commit(work, {"action.yml": "name: v1\nruns: {using: node20, main: index.js}\n"}, "v1")
        _git(work, "tag", "v1")
        _git(work, "checkout", "-q", "-b", "next")
        self.next = _commit(
            work,
            {
                "action.yml": "name: next\nruns: {using: node20, main: index.js}\n",
                "sub/dir/action.yaml": "name: sub\nruns: {using: composite, steps: []}\n",
                "empty/README": "no action here\n",
            },
            "next",
        )
        _git(work, "checkout", "-q", "main")
        bare = self.base / "octo" / "tools"
        bare.parent.mkdir(parents=True)
        _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote(tmp_path)


def _source(tmp_path: Path, remote: Remote, offline_dir: Path | None = None) -> ActionSource:
    return ActionSource(tmp_path / "cache", base_url=str(remote.base), offline_dir=offline_dir)


def _name(directory: Path) -> str:
    return find_metadata(directory).read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("uses", "name"),
    [
        ("octo/tools@v1", "name: v1"),
        ("octo/tools@main", "name: v1"),
        ("octo/tools@next", "name: next"),
        ("octo/tools/sub/dir@next", "name: sub"),
    ],
)
def test_fetch_by_tag_branch_and_subdirectory(tmp_path: Path, remote: Remote, uses: str, name: str) -> None:
    reference = parse_uses(uses)
    assert isinstance(reference, RemoteAction)
    assert _name(_source(tmp_path, remote).fetch(reference)) == name


@pytest.mark.parametrize("attribute", ["v1", "next"])
def test_fetch_by_commit_sha(tmp_path: Path, remote: Remote, attribute: str) -> None:
    sha = getattr(remote, attribute)
    directory = _source(tmp_path, remote).fetch(RemoteAction("octo", "tools", "", sha))
    assert _name(directory) == f"name: {attribute}"


def test_file_url_works_like_a_path(tmp_path: Path, remote: Remote) -> None:
    source = ActionSource(tmp_path / "cache", base_url=remote.base.as_uri())
    assert _name(source.fetch(RemoteAction("octo", "tools", "", "v1"))) == "name: v1"


def test_checkout_holds_files_not_history(tmp_path: Path, remote: Remote) -> None:
    directory = _source(tmp_path, remote).fetch(RemoteAction("octo", "tools", "", "next"))
    assert sorted(path.name for path in directory.iterdir()) == ["action.yml", "empty", "sub"]


def test_second_fetch_reuses_the_cache(tmp_path: Path, remote: Remote) -> None:
    action = RemoteAction("octo", "tools", "", "v1")
    first = _source(tmp_path, remote).fetch(action)
    shutil.rmtree(remote.base)  # the remote is gone: only the cache can answer
    assert _source(tmp_path, remote).fetch(action) == first


def test_refs_with_slashes_get_one_cache_folder(tmp_path: Path, remote: Remote) -> None:
    work = tmp_path / "work"
    _git(work, "checkout", "-q", "-b", "release/v2")
    _git(work, "push", "-q", str(remote.base / "octo" / "tools"), "release/v2")
    directory = _source(tmp_path, remote).fetch(RemoteAction("octo", "tools", "", "release/v2"))
    assert directory.parent == tmp_path / "cache" / "octo" / "tools"
    assert directory.name == "release%2Fv2"


def test_offline_cache_is_used_first(tmp_path: Path, remote: Remote) -> None:
    offline = tmp_path / "offline"
    (offline / "acme" / "setup" / "v3" / "sub").mkdir(parents=True)
    (offline / "acme" / "setup" / "v3" / "sub" / "action.yaml").write_text("name: offline\n")
    source = _source(tmp_path, remote, offline_dir=offline)
    assert _name(source.fetch(RemoteAction("acme", "setup", "sub", "v3"))) == "name: offline"
    assert not (tmp_path / "cache").exists()
    # an action missing from the offline cache is still cloned
    assert _name(source.fetch(RemoteAction("octo", "tools", "", "v1"))) == "name: v1"


def test_concurrent_fetches_of_one_action_agree(tmp_path: Path, remote: Remote) -> None:
    action = RemoteAction("octo", "tools", "sub/dir", "next")
    sources = [_source(tmp_path, remote) for _ in range(4)]  # separate instances: no shared in-process lock
    with ThreadPoolExecutor(len(sources)) as pool:
        directories = list(pool.map(lambda source: source.fetch(action), sources))
    assert len(set(directories)) == 1
    assert _name(directories[0]) == "name: sub"
    leftovers = [path.name for path in (tmp_path / "cache" / "octo" / "tools").iterdir()]
    assert leftovers == ["next"]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (RemoteAction("octo", "tools", "", "v9"), "the ref 'v9' is not a branch, tag or commit of"),
        (RemoteAction("octo", "tools", "", "0" * 40), f"the ref '{'0' * 40}' is not a branch, tag or commit"),
        (RemoteAction("octo", "nothing", "", "v1"), "cannot reach"),
        (RemoteAction("octo", "tools", "missing", "v1"), "has no directory 'missing'"),
        (RemoteAction("octo", "tools", "empty", "next"), "there is no action.yml or action.yaml in 'empty' of"),
    ],
)
def test_errors_say_what_is_wrong(tmp_path: Path, remote: Remote, action: RemoteAction, message: str) -> None:
    with pytest.raises(ActionError, match=re.escape(message)):
        _source(tmp_path, remote).fetch(action)


def test_no_metadata_at_the_root(tmp_path: Path, remote: Remote) -> None:
    work = tmp_path / "work"
    _git(work, "checkout", "-q", "--orphan", "bare")
    _git(work, "rm", "-q", "-rf", ".")
    _commit(work, {"README": "nothing\n"}, "empty")
    _git(work, "push", "-q", str(remote.base / "octo" / "tools"), "bare")
    with pytest.raises(ActionError, match=re.escape("there is no action.yml or action.yaml in octo/tools at 'bare'")):
        _source(tmp_path, remote).fetch(RemoteAction("octo", "tools", "", "bare"))


def test_unreachable_base_url(tmp_path: Path) -> None:
    source = ActionSource(tmp_path / "cache", base_url="http://127.0.0.1:9", timeout=20)
    with pytest.raises(ActionError, match=re.escape("cannot reach http://127.0.0.1:9/octo/tools")):
        source.fetch(RemoteAction("octo", "tools", "", "v1"))
    assert list((tmp_path / "cache" / "octo" / "tools").iterdir()) == []


def test_find_metadata_prefers_action_yml(tmp_path: Path) -> None:
    (tmp_path / "action.yaml").write_text("")
    assert find_metadata(tmp_path).name == "action.yaml"
    (tmp_path / "action.yml").write_text("")
    assert find_metadata(tmp_path).name == "action.yml"
    with pytest.raises(ActionError, match=re.escape("Can't find 'action.yml' or 'action.yaml' under")):
        find_metadata(tmp_path / "nowhere")
