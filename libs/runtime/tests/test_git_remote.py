"""Reading repositories by clone URL: resolving refs and caching commits, against real git repositories served
as `file://` URLs and over HTTP by `git http-backend` behind a server that requires a token as GitHub does."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conveyor_runtime import (
    GitRemotes,
    RemoteGitError,
    is_remote,
    local_commit,
    ls_remote,
    redacted,
    workflow_blobs,
)

if TYPE_CHECKING:
    from tests.fakes.git_http import GitHttpServer

TOKEN = "ghs_secret0123456789"
ROOT = Path(__file__).resolve().parents[3]


def git(repository: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository (non-bare, as `git http-backend` serves either) with two commits on main, a branch and an
    annotated tag on the first commit."""
    root = tmp_path / "served" / "app.git"
    root.mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    for name, value in (("user.name", "t"), ("user.email", "t@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", name, value)
    (root / "a.txt").write_text("first\n")
    git(root, "add", "a.txt")
    git(root, "commit", "--quiet", "-m", "first")
    git(root, "tag", "-a", "v1", "-m", "one")
    git(root, "branch", "old")
    (root / "a.txt").write_text("second\n")
    git(root, "commit", "--quiet", "-am", "second")
    return root


@pytest.fixture
def served(origin: Path) -> Iterator[GitHttpServer]:
    if str(ROOT) not in sys.path:  # the importlib import mode puts no folder on sys.path
        sys.path.append(str(ROOT))
    from tests.fakes.git_http import GitHttpServer

    with GitHttpServer(origin.parent, token=TOKEN) as server:
        yield server


def test_clone_urls_are_remote_and_paths_are_not() -> None:
    for url in ("https://github.com/o/r.git", "ssh://git@host/o/r", "git@github.com:o/r.git", "file:///srv/r"):
        assert is_remote(url), url
    for path in ("/srv/r", "relative/r", "./r", "C:\\r"):
        assert not is_remote(path), path


def test_shown_locations_carry_no_userinfo() -> None:
    assert redacted("https://x-access-token:s3cret@github.com/o/r.git") == "https://github.com/o/r.git"
    assert redacted("git@github.com:o/r.git") == "github.com:o/r.git"
    assert redacted("/srv/r") == "/srv/r"


def test_ls_remote_resolves_head_branches_and_tags_over_file_urls(origin: Path) -> None:
    url = origin.as_uri()
    first, second = git(origin, "rev-parse", "v1^{commit}"), git(origin, "rev-parse", "main")
    assert ls_remote(url, "HEAD") == ("refs/heads/main", second)
    assert ls_remote(url, "main") == ("refs/heads/main", second)
    assert ls_remote(url, "refs/heads/old") == ("refs/heads/old", first)
    assert ls_remote(url, "v1") == ("refs/tags/v1", first)
    assert ls_remote(url, first) == (first, first)


def test_an_unknown_ref_names_the_url_without_its_userinfo(origin: Path) -> None:
    with pytest.raises(RemoteGitError, match="no commit for ref 'nope'") as caught:
        ls_remote(origin.as_uri(), "nope")
    assert origin.as_uri() in str(caught.value)
    with pytest.raises(RemoteGitError) as missing:
        ls_remote("https://user:pw@127.0.0.1:1/o/r.git", "main")
    assert "https://127.0.0.1:1/o/r.git" in str(missing.value)
    assert "pw" not in str(missing.value)


def test_a_local_path_is_its_own_local_commit(origin: Path, tmp_path: Path) -> None:
    assert local_commit(str(origin), git(origin, "rev-parse", "HEAD"), tmp_path / "cache") == origin
    assert not (tmp_path / "cache").exists()


def test_a_commit_is_fetched_shallowly_once_into_a_bare_cache(origin: Path, tmp_path: Path) -> None:
    url, sha = origin.as_uri(), git(origin, "rev-parse", "HEAD")
    cached = local_commit(url, sha, tmp_path / "cache")
    assert cached.parent == tmp_path / "cache"
    assert git(cached, "rev-parse", "--is-bare-repository") == "true"
    assert git(cached, "show", f"{sha}:a.txt") == "second"
    assert git(cached, "cat-file", "-t", sha) == "commit"
    assert (cached / "shallow").is_file()
    (origin / ".git").rename(origin / "gone")
    assert local_commit(url, sha, tmp_path / "cache") == cached


def test_an_older_commit_is_fetched_by_its_refs_when_the_server_refuses_its_sha(
    origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("COUNT", "1"), ("KEY_0", "protocol.version"), ("VALUE_0", "0")):
        monkeypatch.setenv(f"GIT_CONFIG_{name}", value)  # protocol v0 refuses wants of unadvertised commits
    git(origin, "branch", "-D", "old")
    git(origin, "tag", "-d", "v1")
    older = git(origin, "rev-parse", "HEAD~1")
    subprocess.run(["git", "init", "--bare", "-q", str(tmp_path / "probe")], check=True)
    refused = subprocess.run(
        ["git", "-C", str(tmp_path / "probe"), "fetch", "--depth", "1", origin.as_uri(), older], capture_output=True
    )
    assert refused.returncode != 0
    assert b"unadvertised" in refused.stderr
    cached = local_commit(origin.as_uri(), older, tmp_path / "cache")
    assert git(cached, "show", f"{older}:a.txt") == "first"


def test_a_commit_no_ref_reaches_is_an_error_naming_the_url(origin: Path, tmp_path: Path) -> None:
    with pytest.raises(RemoteGitError, match=f"^{origin.as_uri()}: no commit {'0' * 40}$"):
        local_commit(origin.as_uri(), "0" * 40, tmp_path / "cache")


def test_concurrent_calls_share_one_cache_repository(origin: Path, tmp_path: Path) -> None:
    url, sha = origin.as_uri(), git(origin, "rev-parse", "HEAD")
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(local_commit(url, sha, tmp_path / "cache"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert git(results[0], "show", f"{sha}:a.txt") == "second"


def test_the_token_is_sent_as_github_basic_auth_over_http(served: GitHttpServer, origin: Path, tmp_path: Path) -> None:
    url, sha = f"{served.url}/app.git", git(origin, "rev-parse", "HEAD")
    assert ls_remote(url, "main", TOKEN) == ("refs/heads/main", sha)
    cached = local_commit(url, sha, tmp_path / "cache", TOKEN)
    assert git(cached, "show", f"{sha}:a.txt") == "second"
    assert served.seen
    assert set(served.seen) == {served.expected_header()}
    assert all(TOKEN not in request for request in served.requests)
    assert TOKEN not in (cached / "config").read_text()


def test_a_missing_or_wrong_token_fails_with_a_clear_error(served: GitHttpServer, tmp_path: Path) -> None:
    url = f"{served.url}/app.git"
    for token in (None, "wrong"):
        with pytest.raises(RemoteGitError, match=rf"^{served.url}/app\.git: the server refused the credentials") as e:
            ls_remote(url, "main", token)
        assert TOKEN not in str(e.value)
    with pytest.raises(RemoteGitError, match=rf"^{served.url}/app\.git: "):
        local_commit(url, "1" * 40, tmp_path / "cache", "wrong")


def test_git_remotes_asks_for_a_token_only_for_clone_urls_and_only_to_fetch(
    served: GitHttpServer, origin: Path, tmp_path: Path
) -> None:
    asked: list[str] = []

    def tokens(url: str) -> str | None:
        asked.append(url)
        return TOKEN

    remotes = GitRemotes(tmp_path / "cache", tokens)
    url, sha = f"{served.url}/app.git", git(origin, "rev-parse", "HEAD")
    assert remotes.local_commit(str(origin), sha) == origin
    assert asked == []
    assert remotes.ls_remote(url, "HEAD") == ("refs/heads/main", sha)
    remotes.local_commit(url, sha)
    remotes.local_commit(url, sha)
    assert asked == [url, url]
    with pytest.raises(RemoteGitError, match="needs a cache directory"):
        GitRemotes().local_commit(url, sha)


def test_the_workflow_files_of_a_commit_are_its_yaml_files_directly_in_the_workflows_folder(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    workflows = root / ".github" / "workflows"
    (workflows / "nested").mkdir(parents=True)
    git(root, "init", "--quiet", "--initial-branch=main")
    for name, value in (("user.name", "t"), ("user.email", "t@example.com"), ("commit.gpgsign", "false")):
        git(root, "config", name, value)
    git(root, "commit", "--quiet", "--allow-empty", "-m", "none yet")
    before = git(root, "rev-parse", "HEAD")
    files = {"ci.yml": "on: push\n", "deploy.yaml": "on: [push]\n", "é.yml": "on: pull_request\n" * 3_000}
    for name, text in files.items():
        (workflows / name).write_text(text)
    (workflows / "notes.md").write_text("not a workflow")
    (workflows / "nested" / "inner.yml").write_text("on: push\n")
    (workflows / "linked.yml").symlink_to("ci.yml")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "workflows")
    sha = git(root, "rev-parse", "HEAD")
    (workflows / "ci.yml").write_text("changed after the commit")

    found = workflow_blobs(root, sha)

    expected = {f".github/workflows/{name}": text.encode() for name, text in files.items()}
    assert found == {**expected, ".github/workflows/linked.yml": b"ci.yml"}  # a symlink's blob is its target
    assert workflow_blobs(root, before) == {}
    with pytest.raises(RemoteGitError, match=f"no commit {'0' * 40}"):
        workflow_blobs(root, "0" * 40)
    with pytest.raises(RemoteGitError, match="not a git repository"):
        workflow_blobs(tmp_path, sha)


def test_a_git_that_ended_before_it_was_asked_anything_gives_its_reason(tmp_path: Path) -> None:
    """The question cannot be written (a broken pipe, also when the objects are closed); git's error is what counts."""
    from conveyor_runtime._git_remote import _Objects, git_environment

    git = subprocess.Popen(
        ["git", "-C", str(tmp_path), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=git_environment(None),
    )
    with git:
        git.wait()
        with pytest.raises(RemoteGitError, match="not a git repository"):
            _Objects(git, str(tmp_path)).get("HEAD^{commit}")
