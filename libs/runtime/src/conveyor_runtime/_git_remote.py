"""Reading git repositories by clone URL as well as by local path: resolving refs and caching fetched commits.

A token is sent as GitHub documents for tokens and app installation tokens, an `http.extraHeader` of
`Authorization: Basic base64("x-access-token:<token>")`; it reaches git through its environment
(`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`), never through a URL, an argument or a message.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

TokenLookup = Callable[[str], str | None]
"""A repository's clone URL → the token to fetch it with, None when it has none."""

GIT_TIMEOUT = 300.0
_REFUSED = ("could not read Username", "Authentication failed", "The requested URL returned error: 403")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:(?!//)")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
_SCP_USER = re.compile(r"^[^@/:]+@(?=[^/:]+:)")


class RemoteGitError(Exception):
    """A repository cannot be read; the message names its location (without credentials) and git's last line."""


def is_remote(location: str) -> bool:
    """Whether `location` is a clone URL (`https://`, `ssh://`, `file://`, `git@host:path`) rather than a path."""
    return "://" in location or (_SCP_LIKE.match(location) is not None and not re.match(r"^[A-Za-z]:[\\/]", location))


def redacted(location: str) -> str:
    """`location` with any user name and password removed, to be shown."""
    return _SCP_USER.sub("", _USERINFO.sub(r"\1", location))


def ls_remote(url: str, ref: str, token: str | None = None) -> tuple[str, str]:
    """`(full ref, commit sha)` of `ref` (`HEAD`, a branch, a tag, a full ref or a full sha) at `url`.

    `HEAD` resolves to the branch it points at; a short name prefers a tag to a branch, as `git rev-parse` does;
    an annotated tag resolves to its commit.
    """
    if _SHA.match(ref):
        return ref, ref
    args = ["ls-remote", "--symref", "--", url, "HEAD"] if ref == "HEAD" else ["ls-remote", "--", url]
    refs: dict[str, str] = {}
    symbolic: dict[str, str] = {}
    for line in _git(url, args, token=token).decode(errors="replace").splitlines():
        value, _, name = line.partition("\t")
        if value.startswith("ref: "):
            symbolic[name] = value.removeprefix("ref: ")
        else:
            refs[name] = value
    if ref == "HEAD":
        if "HEAD" not in refs:
            raise RemoteGitError(f"{redacted(url)}: no commit for ref 'HEAD'")
        return symbolic.get("HEAD", "HEAD"), refs["HEAD"]
    for name in (ref, f"refs/{ref}", f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if name in refs:
            return name, refs.get(f"{name}^{{}}", refs[name])
    raise RemoteGitError(f"{redacted(url)}: no commit for ref '{ref}'")


def local_commit(url: str, sha: str, cache_dir: Path, token: str | None = None) -> Path:
    """A local repository holding commit `sha` of `url`: `url` itself when it is a path, else a bare repository
    under `cache_dir` for `url`, fetched into (just that commit, shallowly) when it does not hold it yet. A cache
    repository serves any commit it holds by sha (`git fetch --depth 1 <it> <sha>`), as clones of it need.

    A server that refuses fetching by sha gets its branches and tags fetched instead. Callers in other threads
    or processes sharing `cache_dir` wait for each other on a lock per URL.
    """
    return _local_commit(url, sha, cache_dir, lambda: token)


def _local_commit(url: str, sha: str, cache_dir: Path, token: Callable[[], str | None]) -> Path:
    """`local_commit`, asking for the token only when git has to fetch."""
    if not is_remote(url):
        return Path(url)
    if not _SHA.match(sha):
        raise RemoteGitError(f"{redacted(url)}: '{sha}' is not a full commit sha")
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    cache_dir.mkdir(parents=True, exist_ok=True)
    repository = cache_dir / f"{key}.git"
    with _locked(cache_dir / f"{key}.lock"):
        if not (repository / "HEAD").is_file():
            _git(url, ["init", "--quiet", "--bare", str(repository)])
            _git(url, ["-C", str(repository), "config", "gc.auto", "0"])
            _git(url, ["-C", str(repository), "config", "uploadpack.allowAnySHA1InWant", "true"])
        if not _holds(repository, sha):
            secret = token()
            fetched = _run(url, ["-C", str(repository), "fetch", "--quiet", "--depth", "1", "--", url, sha], secret)
            if fetched.returncode != 0 or not _holds(repository, sha):
                refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
                unshallow = ["--unshallow"] if (repository / "shallow").is_file() else []
                _git(url, ["-C", str(repository), "fetch", "--quiet", *unshallow, "--", url, *refspecs], token=secret)
                if not _holds(repository, sha):
                    raise RemoteGitError(f"{redacted(url)}: no commit {sha}")
            _git(url, ["-C", str(repository), "update-ref", f"refs/conveyor/{sha}", sha])
    return repository


@dataclass(frozen=True)
class GitRemotes:
    """What a service needs to read repositories by URL: where fetched commits are cached and whose token to use.

    `cache_dir` None reads local paths only: a clone URL is refused, saying so.
    """

    cache_dir: Path | None = None
    tokens: TokenLookup = field(default=lambda url: None)

    def ls_remote(self, url: str, ref: str) -> tuple[str, str]:
        """`ls_remote` with the repository's token."""
        return ls_remote(url, ref, self.token(url))

    def local_commit(self, url: str, sha: str) -> Path:
        """`local_commit` under this cache with the repository's token."""
        if not is_remote(url):
            return Path(url)
        if self.cache_dir is None:
            raise RemoteGitError(f"{redacted(url)}: a clone URL needs a cache directory, and none is configured")
        return _local_commit(url, sha, self.cache_dir, lambda: self.token(url))

    def token(self, url: str) -> str | None:
        """The token of the repository at `url`; None for a local path."""
        return self.tokens(url) if is_remote(url) else None


def git_environment(token: str | None) -> dict[str, str]:
    """This process's environment for git: no prompts, and `token` (when given) as GitHub's Basic header."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        index = int(env.get("GIT_CONFIG_COUNT", "0") or "0")
        env |= {
            "GIT_CONFIG_COUNT": str(index + 1),
            f"GIT_CONFIG_KEY_{index}": "http.extraHeader",
            f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}",
        }
    return env


WORKFLOWS_DIR = ".github/workflows"


def workflow_blobs(repository: Path, sha: str) -> dict[str, bytes]:
    """The workflow files (`.yml`/`.yaml` directly in `.github/workflows`) of a local repository at commit `sha`:
    path from its root → content, as stored. Decoding is each reader's own policy.

    Read through one `git cat-file --batch`: the commit, its workflows folder, then each file, one process
    whatever the number of files (dispatching a run and planning it both read them).
    """
    where = str(repository)
    if not sha or any(character.isspace() for character in sha):
        raise RemoteGitError(f"{where}: '{sha}' is no commit")
    try:
        git = subprocess.Popen(
            ["git", "-C", where, "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=git_environment(None),
        )
    except OSError as error:
        raise RemoteGitError(f"{where}: git failed: {error}") from error
    with git:
        objects = _Objects(git, where)
        if objects.get(f"{sha}^{{commit}}") is None:
            raise RemoteGitError(f"{where}: no commit {sha}")
        folder = objects.get(f"{sha}:{WORKFLOWS_DIR}")
        blobs: dict[str, bytes] = {}
        if folder is not None and folder[0] == "tree":
            for mode, name, oid in _tree_entries(folder[1], folder[2]):
                path = f"{WORKFLOWS_DIR}/{name.decode('utf-8', errors='replace')}"
                if mode.startswith((b"10", b"120")) and path.endswith((".yml", ".yaml")):  # files and symlinks
                    found = objects.get(oid)
                    if found is None:
                        raise RemoteGitError(f"{where}: the object {oid} of {path} at {sha} is missing")
                    blobs[path] = found[1]
        objects.close()
    return blobs


class _Objects:
    """Objects asked of a running `git cat-file --batch`, one at a time."""

    def __init__(self, git: subprocess.Popen[bytes], where: str) -> None:
        assert git.stdin is not None  # both piped by `workflow_blobs`
        assert git.stdout is not None
        self._git, self._in, self._out, self._where = git, git.stdin, git.stdout, where

    def get(self, name: str) -> tuple[str, bytes, int] | None:
        """(type, content, the id's length in bytes) of the object `name` names; None when there is none."""
        try:
            self._in.write(name.encode() + b"\n")
            self._in.flush()
        except BrokenPipeError:
            pass  # git ended: its reason is read below
        header = self._out.readline().split()
        if len(header) == 2 and header[1] in (b"missing", b"ambiguous"):
            return None
        if len(header) != 3:
            self.close()
            reason = _reason(self._git.stderr.read() if self._git.stderr else b"")
            raise RemoteGitError(f"{self._where}: {reason or 'git cat-file failed'}")
        oid, kind, size = header
        content = self._out.read(int(size))
        self._out.read(1)  # the newline after each object
        return kind.decode(), content, len(oid) // 2

    def close(self) -> None:
        # Closing flushes what is still buffered: when git has ended (not a repository), that fails as the write did.
        with suppress(BrokenPipeError):
            self._in.close()


def _tree_entries(tree: bytes, id_length: int) -> Iterator[tuple[bytes, bytes, str]]:
    """(mode, name, object id) of each entry of a tree object as git stores it: `<mode> <name>\\0<raw id>`."""
    at = 0
    while at < len(tree):
        space = tree.index(b" ", at)
        end = tree.index(b"\0", space)
        yield tree[at:space], tree[space + 1 : end], tree[end + 1 : end + 1 + id_length].hex()
        at = end + 1 + id_length


def _holds(repository: Path, sha: str) -> bool:
    done = subprocess.run(
        ["git", "-C", str(repository), "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True, check=False
    )
    return done.returncode == 0


def _git(url: str, args: list[str], *, token: str | None = None) -> bytes:
    done = _run(url, args, token)
    if done.returncode != 0:
        reason = _reason(done.stderr)
        last = reason.replace(url, redacted(url)) if reason else f"git {args[0]} failed"
        if any(sign in last for sign in _REFUSED):
            last = f"the server refused the credentials (none, or a wrong token): {last}"
        raise RemoteGitError(f"{redacted(url)}: {last}")
    return done.stdout


def _reason(stderr: bytes) -> str | None:
    """Why git failed, from what it wrote: its first `fatal:` line (the rest is advice), else its last line."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    fatal = [line for line in lines if line.startswith("fatal:")]
    return fatal[0] if fatal else lines[-1] if lines else None


def _run(url: str, args: list[str], token: str | None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, check=False, timeout=GIT_TIMEOUT, env=git_environment(token)
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RemoteGitError(f"{redacted(url)}: git failed: {error}") from error


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
