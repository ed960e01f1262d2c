"""A repository registered by its HTTPS clone URL with a token: dispatched and pushed runs check out its commits
fetched with that token, which shows up in no file of the data directory and in no process's arguments."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conveyor_runtime import RuntimeSettings

from tests.conftest import git
from tests.e2e.test_webhooks import SECRET, deliver, log_lines, push, serving
from tests.fakes.git_http import GitHttpServer

if TYPE_CHECKING:
    from tests.e2e.conftest import Until

pytestmark = pytest.mark.e2e

TOKEN = "ghs_installation-9c4e1a-not-in-any-file"
SECRET_FORMS = [TOKEN.encode(), base64.b64encode(f"x-access-token:{TOKEN}".encode())]

WORKFLOW = """
name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "content=$(cat hello.txt) head=$(git rev-parse HEAD)"
"""


class ArgumentWatch:
    """Reads the command line of every process on this machine, over and over, until stopped; `leaks` are those
    that held a secret."""

    def __init__(self) -> None:
        self.leaks: list[str] = []
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    arguments = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                self.seen += 1
                if any(form in arguments for form in SECRET_FORMS):
                    self.leaks.append(arguments.replace(b"\0", b" ").decode(errors="replace"))

    def __enter__(self) -> ArgumentWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def watch() -> Iterator[ArgumentWatch]:
    with ArgumentWatch() as watching:
        yield watching


async def test_a_repository_registered_by_https_url_runs_its_commits_fetched_with_its_token(
    settings: RuntimeSettings, repository: Callable[..., Path], until: Until, watch: ArgumentWatch
) -> None:
    root = repository({".github/workflows/ci.yml": WORKFLOW, "hello.txt": "first"})
    first = git(root, "rev-parse", "HEAD")
    with GitHttpServer(root.parent, token=TOKEN) as server:
        async with serving(settings) as (_, http):
            url = f"{server.url}/{root.name}"
            body = {"name": "demo", "url": url, "github": "octo/demo", "webhook_secret": SECRET, "token": TOKEN}
            registered = await http.post("/api/repositories", json=body)
            assert registered.status_code == 201, registered.text
            assert registered.json()["url"] == url

            dispatched = await http.post("/api/runs", json={"repository": "demo"})
            assert dispatched.status_code == 202, dispatched.text
            run = await until(http, dispatched.json()["id"], lambda run: run["status"] == "completed")
            assert (run["conclusion"], run["sha"]) == ("success", first)
            assert await log_lines(http, run["id"], "build") == [f"content=first head={first}"]

            (root / "hello.txt").write_text("second")
            git(root, "commit", "--quiet", "-am", "second")
            second = git(root, "rev-parse", "HEAD")
            pushed = await deliver(http, "push", push(second), "delivery-remote-1")
            assert pushed.status_code == 202, pushed.text
            run = await until(http, pushed.json()["id"], lambda run: run["status"] == "completed")
            assert (run["conclusion"], run["sha"]) == ("success", second)
            assert await log_lines(http, run["id"], "build") == [f"content=second head={second}"]

        assert server.seen
        assert set(server.seen) == {server.expected_header()}
    assert watch.seen > 0
    assert watch.leaks == []
    files = [path for path in settings.data_dir.rglob("*") if path.is_file()]
    assert any("repositories" in path.parts for path in files)
    leaked = [str(path) for path in files if any(form in path.read_bytes() for form in SECRET_FORMS)]
    assert leaked == []
