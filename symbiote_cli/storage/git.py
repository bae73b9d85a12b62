"""The git plumbing under the storage branch: every git process the store starts goes through ``GitRepo.run``.

Objects are written with plumbing only (``hash-object`` / ``read-tree`` / ``update-index --index-info``
/ ``write-tree`` / ``commit-tree``, see git-read-tree(1) and git-update-index(1)) through a private,
temporary index, and refs move by compare-and-swap (``update-ref <ref> <new> <old>``, git-update-ref(1);
``push --force-with-lease=<ref>:<expect>``, git-push(1)). So the user's working tree, HEAD and index
are never touched and the same code works in a bare repository. What is written, and when, is
``branch.Storage``'s business: this module knows commits, trees, blobs and refs, never JSON.

GitPython is imported lazily: ``import git`` is slow and most commands never need it.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from symbiote_cli.core.clock import Clock
from symbiote_cli.core.errors import StorageError

if TYPE_CHECKING:
    import git

AUTHOR_NAME = "Symbiote"
AUTHOR_EMAIL = "symbiote@users.noreply.github.com"
NETWORK_TIMEOUT = 300.0
FETCH_DEPTH = 1
"""A clone that has no storage branch yet fetches only this many commits of it (issue 14): a job's
start stays flat however long the history; pushing needs no more (the remote has the parents)."""

_BRANCH_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_REMOTE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
_CREDENTIALS_RE = re.compile(r"://[^/@\s]+@")
# The refusals of git-push(1)'s porcelain output that another writer's push explains: fetch and retry.
_RETRYABLE_PUSH = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value",
    "failed to lock",
)

# Every git command runs with an explicit identity (Actions runners have none) and never prompts
# (GIT_TERMINAL_PROMPT, git(1) "ENVIRONMENT VARIABLES").
_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": AUTHOR_NAME,
    "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
    "GIT_COMMITTER_NAME": AUTHOR_NAME,
    "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
}


def _validate_branch(branch: str) -> str:
    """Branch names reach git's command line: keep them to a conservative subset (git-check-ref-format(1))."""
    parts = branch.split("/")
    if (
        not branch
        or not all(_BRANCH_COMPONENT_RE.fullmatch(p) for p in parts)
        or ".." in branch
        or any(p.endswith((".lock", ".")) for p in parts)
    ):
        raise StorageError(f"not a valid storage branch name: {branch!r}")
    return branch


def blob_sha(data: bytes, hex_length: int) -> str:
    """The id git gives these bytes as a blob (sha1, or sha256 in sha256 repositories)."""
    header = b"blob %d\0" % len(data)
    algo = hashlib.sha256 if hex_length == 64 else hashlib.sha1
    return algo(header + data).hexdigest()


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse git's output into one line without credentials embedded in URLs."""
    line = " ".join(text.split())
    line = _CREDENTIALS_RE.sub("://***@", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def failure_reason(stderr: str) -> str:
    """The most telling line of git's stderr (the last fatal/error, else the last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("hint:")]
    for line in reversed(lines):
        for prefix in ("fatal:", "error:"):
            if line.startswith(prefix):
                return _one_line(line[len(prefix) :].strip())
    return _one_line(lines[-1]) if lines else "unknown error"


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """One commit of the storage branch, as ``symbiote log`` shows it."""

    sha: str
    time: float
    message: str
    files_changed: int


class GitResult(NamedTuple):
    status: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class PushResult:
    ok: bool
    retryable: bool = False
    reason: str = ""


class Runner(Protocol):
    """The signature of ``GitRepo.run``, so a wrapper (tests, benchmarks) can stand in for it."""

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: Path | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> GitResult: ...


class GitRepo:
    """One local repository and the storage branch's ref in it, optionally mirrored to a remote.

    Not thread safe (GitPython's persistent ``cat-file`` process is not): its owner serialises calls.
    """

    def __init__(
        self,
        repo_path: Path,
        branch: str,
        remote: str | None,
        *,
        clock: Clock,
        fetch_depth: int | None = FETCH_DEPTH,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.branch = _validate_branch(branch)
        self.ref = f"refs/heads/{self.branch}"
        if remote is not None and not _REMOTE_RE.fullmatch(remote):
            raise StorageError(f"not a valid git remote name: {remote!r}")
        self._requested_remote = remote
        self.remote: str | None = None
        """The remote in use, resolved by ``open``: ``origin`` if present, else None (local only)."""
        self._clock = clock
        self._repo: git.Repo | None = None
        self.fetch_depth = fetch_depth if fetch_depth and fetch_depth > 0 else None
        self._fetched = False

    @property
    def remote_ref(self) -> str:
        return f"refs/remotes/{self.remote}/{self.branch}"

    # ------------------------------------------------------------------ the repository and its processes

    def open(self) -> git.Repo:
        """Open the repository on first use and resolve which remote to use."""
        if self._repo is not None:
            return self._repo
        import git  # noqa: PLC0415 - lazy: importing GitPython is slow and most commands never need it

        try:
            repo = git.Repo(self.repo_path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise StorageError(f"{self.repo_path} is not a git repository (storage needs the fork's clone)") from None
        self._repo = repo
        remotes = self.run("remote").text.split()
        if self._requested_remote is None:
            self.remote = "origin" if "origin" in remotes else None
        elif self._requested_remote in remotes:
            self.remote = self._requested_remote
        else:
            self._repo = None
            repo.close()
            raise StorageError(f"no git remote named '{self._requested_remote}' in {self.repo_path}")
        return repo

    def close(self) -> None:
        """Stop GitPython's persistent helper processes."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: Path | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> GitResult:
        """Run one git command in the repository; failures become StorageError naming the ref."""
        repo = self.open()
        full_env = dict(_BASE_ENV)
        if env:
            full_env.update(env)
        command = [repo.git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]
        handle: Any = stdin.open("rb") if stdin is not None else nullcontext(None)
        with handle as stream:
            result = self._execute(repo, command, stream=stream, env=full_env, timeout=timeout)
        status, out, err = result
        outcome = GitResult(int(status), bytes(out or b""), str(err or ""))
        if check and outcome.status != 0:
            raise StorageError(f"git {args[0]} failed for {self.ref}: {failure_reason(outcome.err)}")
        return outcome

    @staticmethod
    def _execute(repo: git.Repo, command: list[str], *, stream: Any, env: dict[str, str], timeout: float | None) -> Any:
        from git.exc import GitCommandNotFound  # noqa: PLC0415 - lazy, as above

        try:
            return repo.git.execute(
                command,
                istream=stream,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
                env=env,
                kill_after_timeout=timeout,
            )
        except GitCommandNotFound:
            raise StorageError("git is not installed or not on PATH (storage needs it)") from None

    def checked_out(self) -> str | None:
        """The ref HEAD names (``symbolic-ref -q HEAD``); None in a bare repository, which has no working tree."""
        if self.open().bare:
            return None
        return self.run("symbolic-ref", "-q", "HEAD", check=False).text

    # ------------------------------------------------------------------ reading objects

    def rev_parse(self, ref: str) -> str | None:
        result = self.run("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", check=False)
        return (result.text or None) if result.status == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False).status == 0

    def merge_base(self, one: str, other: str) -> str | None:
        return self.run("merge-base", one, other, check=False).text or None

    def list_files(self, tip: str) -> dict[str, str]:
        """Path -> blob sha of every regular file of ``tip`` (``ls-tree -r``; links and submodules are skipped)."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", tip).out
        files: dict[str, str] = {}
        for entry in out.split(b"\0"):
            meta, _, raw_path = entry.partition(b"\t")
            fields = meta.split(b" ")
            if len(fields) == 3 and fields[1] == b"blob" and fields[0] in {b"100644", b"100755"}:
                files[raw_path.decode("utf-8", "surrogateescape")] = fields[2].decode("ascii")
        return files

    def read_blob(self, sha: str) -> bytes:
        """A blob's bytes through GitPython's persistent ``cat-file`` process (no process per file)."""
        data: bytes = self.open().odb.stream(bytes.fromhex(sha)).read()
        return data

    def is_root(self, commit: str) -> bool:
        """Whether ``commit`` has no parent, read from the raw object (a shallow clone's grafts make any tip a root)."""
        header = self.run("cat-file", "commit", commit).text.partition("\n\n")[0]
        return not any(line.startswith("parent ") for line in header.splitlines())

    def tree_of(self, commit: str) -> str:
        return self.run("rev-parse", f"{commit}^{{tree}}").text

    def messages(self, tip: str, limit: int) -> list[str]:
        """The full messages of the last ``limit`` first-parent commits up to ``tip``, newest first."""
        out = self.run("log", f"-n{limit}", "--first-parent", "--format=%B%x00", tip, check=False).text
        return out.split("\x00")

    def log(self, limit: int) -> list[CommitInfo]:
        """The last ``limit`` commits of the branch (never the whole history)."""
        out = self.run(
            "log",
            f"-n{max(1, limit)}",
            "--no-color",
            "--format=%x01%H%x00%ct%x00%s",
            "--shortstat",
            self.ref,
        ).out.decode("utf-8", "replace")
        commits: list[CommitInfo] = []
        for chunk in out.split("\x01")[1:]:
            header, _, rest = chunk.partition("\n")
            sha, when, subject = [*header.split("\x00"), "", ""][:3]
            match = re.search(r"(\d+) files? changed", rest)
            commits.append(CommitInfo(sha, float(when or 0), subject, int(match.group(1)) if match else 0))
        return commits

    # ------------------------------------------------------------------ writing objects and refs

    def write_blobs(self, plan: Mapping[str, bytes | None]) -> dict[str, str | None]:
        """Store the new file contents as blobs in one ``hash-object`` call; deletions map to None."""
        writes = [(path, data) for path, data in plan.items() if data is not None]
        shas: dict[str, str | None] = {path: None for path, data in plan.items() if data is None}
        if not writes:
            return shas
        with tempfile.TemporaryDirectory(prefix="symbiote-blobs-") as tmp:
            folder = Path(tmp)
            listing = folder / "paths"
            names = []
            for index, (_, data) in enumerate(writes):
                name = folder / f"blob-{index}"
                name.write_bytes(data)
                names.append(str(name))
            listing.write_text("\n".join(names) + "\n", encoding="utf-8")
            out = self.run("hash-object", "-w", "--no-filters", "--stdin-paths", stdin=listing).text.split()
        if len(out) != len(writes):
            raise StorageError(f"git hash-object returned {len(out)} ids for {len(writes)} files on {self.ref}")
        shas.update({path: sha for (path, _), sha in zip(writes, out, strict=True)})
        return shas

    def commit(self, parent: str | None, present: Collection[str], shas: Mapping[str, str | None], message: str) -> str:
        """A commit of ``parent`` (holding ``present``) plus ``shas``, built in a private index, not the user's."""
        zero = "0" * (len(parent) if parent else 40)
        with tempfile.TemporaryDirectory(prefix="symbiote-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if parent is not None:
                self.run("read-tree", parent, env=env)
            info = Path(tmp) / "index-info"
            with info.open("w", encoding="utf-8", newline="\n") as fh:
                for path, sha in shas.items():
                    if sha is None:
                        if path in present:
                            fh.write(f"0 {zero}\t{path}\n")
                    else:
                        fh.write(f"100644 {sha}\t{path}\n")
            self.run("update-index", "--index-info", env=env, stdin=info)
            tree = self.run("write-tree", env=env).text
        return self.commit_tree(tree, [parent] if parent is not None else [], [message])

    def commit_tree(self, tree: str, parents: Sequence[str], messages: Sequence[str]) -> str:
        """``commit-tree`` dated by the clock (not by the machine), one ``-m`` paragraph per message."""
        stamp = f"@{int(self._clock.now())} +0000"
        dates = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        args = [arg for parent in parents for arg in ("-p", parent)]
        args += [arg for message in messages for arg in ("-m", message)]
        return self.run("commit-tree", "--no-gpg-sign", tree, *args, env=dates).text

    def swap(self, new: str | None, old: str | None) -> bool:
        """Compare-and-swap the branch from ``old`` to ``new`` (None: absent); False when it was not at ``old``."""
        if new is None:
            if old is None:
                return self.rev_parse(self.ref) is None
            return self.run("update-ref", "-d", self.ref, old, check=False).status == 0
        return (
            self.run("update-ref", "-m", "symbiote: storage update", self.ref, new, old or "", check=False).status == 0
        )

    def keep(self, ref: str, sha: str, why: str, *, check: bool = False) -> None:
        """Point the side ref ``ref`` (``refs/symbiote/...``) at ``sha`` so that it stays reachable."""
        self.run("update-ref", "-m", why, ref, sha, check=check)

    def drop(self, ref: str) -> None:
        self.run("update-ref", "-d", ref, check=False)

    # ------------------------------------------------------------------ the remote

    def ping(self) -> bool:
        """Whether the remote answers a ref advertisement (``ls-remote --heads``, no objects)."""
        return self.run("ls-remote", "--heads", self.remote or "", self.ref, check=False, timeout=60).status == 0

    def advertised(self) -> tuple[bool, str | None]:
        """(answered, the remote's tip of the branch) from one ``ls-remote``, without fetching."""
        result = self.run("ls-remote", self.remote or "", self.ref, check=False, timeout=60)
        if result.status != 0:
            return False, None
        fields = result.text.split()
        return True, fields[0] if fields else None

    def fetch(self) -> bool:
        """Fetch the remote branch into its remote-tracking ref; False when the remote does not have it."""
        assert self.remote is not None
        depth: list[str] = []
        # Shallow only when this clone has none of the branch: never truncating a history someone
        # already has (a fresh checkout, as in Actions, has none).
        if (
            not self._fetched
            and self.fetch_depth is not None
            and self.rev_parse(self.ref) is None
            and self.rev_parse(self.remote_ref) is None
        ):
            depth = [f"--depth={self.fetch_depth}"]
        result = self.run(
            "fetch",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-auto-gc",
            "--quiet",
            *depth,
            self.remote,
            f"+{self.ref}:{self.remote_ref}",
            check=False,
            timeout=NETWORK_TIMEOUT,
        )
        self._fetched = True
        if result.status != 0:
            if "couldn't find remote ref" in result.err.lower():
                self.drop(self.remote_ref)
                return False
            raise StorageError(f"cannot fetch {self.ref} from remote '{self.remote}': {failure_reason(result.err)}")
        return True

    def push(self, sha: str, *, lease: str | None = None) -> PushResult:
        """Push ``sha`` to the remote branch (without force, or replacing exactly ``lease``); classify a refusal.

        The refusal is read from ``push --porcelain`` (git-push(1) "OUTPUT": ``!`` flags a rejected ref).
        """
        result = self.run(
            "push",
            "--porcelain",
            "--no-verify",
            *([f"--force-with-lease={self.ref}:{lease}"] if lease else []),
            self.remote or "",
            f"{sha}:{self.ref}",
            check=False,
            timeout=NETWORK_TIMEOUT,
        )
        status_line = ""
        for line in result.out.decode("utf-8", "replace").splitlines():
            fields = line.split("\t")
            if len(fields) >= 3 and fields[1].endswith(f":{self.ref}"):
                status_line = line
                if fields[0] == "!":
                    summary = fields[2]
                    reason = summary[summary.find("(") + 1 : summary.rfind(")")] if "(" in summary else summary
                    retryable = any(word in reason for word in _RETRYABLE_PUSH)
                    remote_says = [
                        ln.removeprefix("remote:").strip()
                        for ln in result.err.splitlines()
                        if ln.startswith("remote:") and ln.removeprefix("remote:").strip()
                    ]
                    if remote_says and not retryable:
                        reason = f"{reason}: {remote_says[-1]}"
                    return PushResult(False, retryable, _one_line(reason))
        if result.status == 0 and status_line:
            return PushResult(True)
        return PushResult(False, False, failure_reason(result.err))
