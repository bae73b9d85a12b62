"""``symbiote doctor``: is everything in place? Each check says how to fix what fails.

Checks, in order: the token (valid, and whose), its kind and scopes, whether the
user's private events are visible, whether the token can read notifications (a
failure only when ``SYMBIOTE_SOURCES`` polls them), the storage branch (readable and pushable),
Actions in the fork (enabled, workflows present and active), the worker (when
``SYMBIOTE_WORKER_URL`` is set) and the rules file. A check that cannot run
because an earlier one failed is skipped. The token itself is never printed:
its kind comes from its prefix only. It reads the configuration itself, so it
lives with the wiring; the CLI prints its checks.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from symbiote_cli.core.errors import AuthError, ConfigError, GitHubError, RateLimitedError, StorageError
from symbiote_cli.core.models import Source
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.core.rulesfile import RulesFileError, load_rules_file
from symbiote_cli.storage import transactions
from symbiote_cli.storage.branch import Storage
from symbiote_cli.storage.git import failure_reason as _reason
from symbiote_cli.wiring import client_from_settings, fork_repo, rules_path

if TYPE_CHECKING:
    from symbiote_cli.github.client import GitHubClient
    from symbiote_cli.settings import Settings

# The workflows a Symbiote fork runs (.github/workflows/).
EXPECTED_WORKFLOWS = ("symbiote-main.yml", "symbiote-auth.yml")
TOKENS_URL = "https://github.com/settings/tokens"
FINE_GRAINED_URL = "https://github.com/settings/personal-access-tokens"
WORKER_TIMEOUT = 10.0


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    """One check's outcome; ``fix`` says what to do when it is not a pass."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail, "fix": self.fix}


# Token prefixes (https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/).
TOKEN_KINDS: tuple[tuple[str, str, str], ...] = (
    ("github_pat_", "fine-grained", "fine-grained personal access token"),
    ("ghp_", "classic", "personal access token (classic)"),
    ("gho_", "oauth", "OAuth app token"),
    ("ghu_", "app-user", "GitHub App user-to-server token"),
    ("ghs_", "installation", "GitHub App installation token (GITHUB_TOKEN in Actions)"),
    ("ghr_", "refresh", "GitHub App refresh token"),
)


def token_kind(token: str) -> tuple[str, str]:
    """(kind, human words) from the token's prefix alone."""
    for prefix, kind, words in TOKEN_KINDS:
        if token.startswith(prefix):
            return kind, words
    return "unknown", "token of an unrecognised format"


def parse_scopes(header: str | None) -> list[str]:
    return [s.strip() for s in (header or "").split(",") if s.strip()]


def http_get_json(url: str, timeout: float = WORKER_TIMEOUT) -> tuple[int, Any]:
    """GET ``url``: (HTTP status, parsed JSON body or None). An HTTP error status is an answer too."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "symbiote-doctor"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            status, raw = int(response.status), response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read(64 * 1024)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


@dataclass
class Doctor:
    """Runs the checks; every dependency with I/O can be replaced (tests)."""

    settings: Settings
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    client_factory: Callable[[Settings, str], GitHubClient] | None = None
    storage_factory: Callable[[Settings], Storage] | None = None
    http_get: Callable[[str], tuple[int, Any]] = http_get_json

    token: str | None = field(default=None, init=False, repr=False)  # never shown
    kind: str = field(default="unknown", init=False)
    login: str | None = field(default=None, init=False)
    client: GitHubClient | None = field(default=None, init=False, repr=False)
    token_ok: bool = field(default=False, init=False)

    def run(self) -> list[Check]:
        checks = [self.check_token()]
        checks.append(self.check_kind())
        checks.append(self.check_private_events())
        checks.append(self.check_notifications())
        checks.append(self.check_storage())
        checks.append(self.check_actions())
        checks.append(self.check_worker())
        checks.append(self.check_rules())
        return checks

    # -- token -------------------------------------------------------------------------

    def _make_client(self, token: str) -> GitHubClient:
        if self.client_factory is not None:
            return self.client_factory(self.settings, token)
        return client_from_settings(self.settings, token=token)

    def check_token(self) -> Check:
        source = self.settings.token_source
        name = "token"
        if source is None:
            return Check(
                name,
                Status.FAIL,
                "no token: neither GH_PAT nor GITHUB_TOKEN is set",
                f"create a token at {TOKENS_URL} (classic with the repo scope, or fine-grained) and set GH_PAT",
            )
        self.token = self.settings.token()
        REDACT.add(self.token)
        self.kind, _words = token_kind(self.token)
        self.client = self._make_client(self.token)
        try:
            _status, _headers, data = self.client.request("GET", "/user")
        except AuthError:
            return Check(
                name,
                Status.FAIL,
                f"GitHub rejected the token in {source} (401 Bad credentials)",
                f"the token is revoked, expired or mistyped: create a new one at {TOKENS_URL} and set {source}",
            )
        except GitHubError as exc:
            if exc.status == 403 and self.kind == "installation":
                self.token_ok = True
                return Check(
                    name,
                    Status.WARN,
                    f"the token in {source} is valid but belongs to an app, not to a user",
                    "set GH_PAT to your own token so that Symbiote sees your private events and acts as you",
                )
            return Check(
                name,
                Status.FAIL,
                f"could not check the token: {exc.message}",
                f"check GITHUB_API_URL (now {self.settings.api_url}) and the network",
            )
        login = data.get("login") if isinstance(data, dict) else None
        self.login = login if isinstance(login, str) else None
        self.token_ok = True
        rate = self.client.rate
        left = f"; {rate.remaining} of {rate.limit} requests left this hour" if rate.remaining is not None else ""
        return Check(name, Status.PASS, f"valid: belongs to @{self.login} (from {source}){left}")

    def check_kind(self) -> Check:
        name = "token kind and scopes"
        if self.token is None:
            return Check(name, Status.SKIP, "no token")
        kind, words = token_kind(self.token)
        if kind == "unknown":
            return Check(
                name,
                Status.WARN,
                f"{words} (none of ghp_, github_pat_, gho_, ghu_, ghs_)",
                "check that GH_PAT holds a GitHub token and nothing else (no quotes or spaces)",
            )
        if kind == "installation":
            return Check(
                name,
                Status.WARN,
                f"{words}: it acts as the app and never sees your private events",
                "set GH_PAT to a personal access token of yours",
            )
        if kind == "fine-grained":
            return Check(
                name,
                Status.PASS,
                f"{words}: GitHub does not list its permissions; Symbiote needs Events (read, an account "
                "permission), Issues and Pull requests (read and write) where it acts, and Actions (read and "
                "write) on the fork",
            )
        if kind in ("classic", "oauth"):
            if not self.token_ok or self.client is None:
                return Check(name, Status.SKIP, f"{words}; scopes unknown until the token is valid")
            scopes = parse_scopes(self.client.oauth_scopes)
            shown = ", ".join(scopes) or "(none)"
            if "repo" in scopes:
                return Check(name, Status.PASS, f"{words}; scopes: {shown}")
            if "public_repo" in scopes:
                return Check(
                    name,
                    Status.WARN,
                    f"{words}; scopes: {shown}: public repos only, private ones are out of reach",
                    f"add the repo scope at {TOKENS_URL} to act in private repos and see their events",
                )
            return Check(
                name,
                Status.FAIL,
                f"{words}; scopes: {shown}: it cannot comment, label or dispatch anywhere",
                f"add the repo scope at {TOKENS_URL}",
            )
        return Check(name, Status.PASS, words)

    # -- private events --------------------------------------------------------------------

    def check_private_events(self) -> Check:
        name = "private events visible"
        user = self.settings.user or self.login
        if self.client is None or not self.token_ok or not user:
            return Check(name, Status.SKIP, "needs a valid token (and SYMBIOTE_USER for an app token)")
        if self.login and user.lower() != self.login.lower():
            return Check(
                name,
                Status.FAIL,
                f"the token belongs to @{self.login}, not @{user}: GitHub shows private events only to their owner",
                f"use a token of @{user}, or set SYMBIOTE_USER={self.login}",
            )
        try:
            page = self.client.list_events(user, per_page=100)
        except GitHubError as exc:
            return Check(name, Status.FAIL, f"cannot read the events of @{user}: {exc.message}", "check the token")
        private = [e for e in page.events if e.get("public") is False]
        if private:
            return Check(name, Status.PASS, f"yes: {len(private)} private of the latest {len(page.events)} events")
        fine_grained_fix = (
            f"edit the token at {FINE_GRAINED_URL}: Account permissions → Events → Read-only "
            "(a fine-grained token shows private events only with it)"
        )
        if self.kind in ("classic", "oauth"):
            if "repo" in parse_scopes(self.client.oauth_scopes):
                return Check(
                    name,
                    Status.PASS,
                    f"none among the latest {len(page.events)} events, and the repo scope lets them show",
                )
            return Check(
                name,
                Status.FAIL,
                "no: without the repo scope, private events stay hidden",
                f"add the repo scope at {TOKENS_URL}",
            )
        if self.kind == "fine-grained":
            return Check(
                name,
                Status.WARN,
                f"none among the latest {len(page.events)} events: either there were none lately, or the "
                "token lacks the Events permission",
                fine_grained_fix,
            )
        if self.kind == "installation":
            return Check(
                name,
                Status.FAIL,
                "no: an app installation token (like GITHUB_TOKEN) never sees your private events",
                "set GH_PAT to a token of yours",
            )
        return Check(
            name,
            Status.WARN,
            f"none among the latest {len(page.events)} events: GitHub shows them only to a token of the user "
            "that may read those repositories",
            "use a personal access token (classic with the repo scope, or fine-grained with Events read)",
        )

    # -- notifications ---------------------------------------------------------------------------

    def check_notifications(self) -> Check:
        """Can the token read ``GET /notifications``? Only classic tokens (and OAuth app tokens) with the
        ``notifications`` or ``repo`` scope may (https://docs.github.com/rest/activity/notifications):
        fine-grained and app tokens are refused. Not being able to is a failure only when the run
        would poll notifications (``SYMBIOTE_SOURCES``); otherwise the line only says what to do.
        """
        name = "notifications readable"
        polled = Source.NOTIFICATIONS in self.settings.sources
        if self.client is None or not self.token_ok:
            return Check(name, Status.SKIP, "needs a valid token")
        try:
            refusal = self._notifications_refusal(self.client)
        except GitHubError as exc:
            return Check(
                name,
                Status.WARN,
                f"could not check notifications: {exc.message}",
                "run doctor again; check GITHUB_API_URL and the network",
            )
        if refusal is None:
            if polled:
                return Check(name, Status.PASS, "yes, and they are polled (SYMBIOTE_SOURCES includes notifications)")
            return Check(
                name,
                Status.PASS,
                "yes, but they are not polled: set SYMBIOTE_SOURCES=events,notifications to act on review "
                "requests, mentions and assignments",
            )
        if polled:
            return Check(
                name,
                Status.FAIL,
                f"{refusal}; SYMBIOTE_SOURCES includes notifications, so the run would poll events only",
                f"use a classic token with the notifications scope ({TOKENS_URL}), or keep SYMBIOTE_SOURCES=events",
            )
        return Check(
            name,
            Status.SKIP,
            f"{refusal}; not polled (SYMBIOTE_SOURCES=events), so nothing is lost",
            "to act on review requests and mentions, use a classic token with the notifications scope "
            f"({TOKENS_URL}) and set SYMBIOTE_SOURCES=events,notifications",
        )

    def _notifications_refusal(self, client: GitHubClient) -> str | None:
        """Why the token cannot read notifications, or None when it can.

        A fine-grained token is known by its prefix (GitHub refuses it, no request needed); any
        other token asks for one thread: 403 or 404 is a refusal, other errors (rate limits) propagate.
        """
        refused = "this token cannot read notifications (fine-grained tokens cannot)"
        if self.kind == "fine-grained":
            return refused
        try:
            client.list_notifications(per_page=1)
        except RateLimitedError:
            raise  # a 403 that means "wait", not "never"
        except GitHubError as exc:
            if exc.status not in (403, 404):
                raise
        else:
            return None
        scopes = set(parse_scopes(client.oauth_scopes))
        if self.kind == "installation":
            return "this token cannot read notifications (app tokens like GITHUB_TOKEN cannot)"
        if (
            self.kind in ("classic", "oauth")
            and client.oauth_scopes is not None
            and not {"notifications", "repo"} & scopes
        ):
            return "this token cannot read notifications: it has neither the notifications nor the repo scope"
        return refused

    # -- storage ---------------------------------------------------------------------------------

    def _make_storage(self) -> Storage:
        if self.storage_factory is not None:
            return self.storage_factory(self.settings)
        return Storage(
            self.settings.storage_repo,
            self.settings.storage_branch,
            self.settings.storage_remote,
            push_retries=self.settings.push_retries,
        )

    def check_storage(self) -> Check:
        name = "storage branch"
        branch = self.settings.storage_branch
        fix_repo = (
            "run Symbiote in a clone of your fork (or set SYMBIOTE_STORAGE_REPO / --storage-repo), "
            "whose remote you can push to"
        )
        try:
            storage = self._make_storage()
        except StorageError as exc:
            return Check(name, Status.FAIL, exc.message, fix_repo)
        try:
            storage.open()
            storage.update(transactions.probe, "doctor: no-op")
            storage.read_json("meta.json")
            remote = storage.remote
            tip = storage.tip()
            if remote is None:
                return Check(
                    name,
                    Status.WARN,
                    f"{branch} is readable, but there is no remote: state stays on this machine",
                    "add your fork as the git remote origin (or set SYMBIOTE_STORAGE_REMOTE)",
                )
            if tip is None:
                return Check(name, Status.FAIL, f"{branch} has no commit after opening", fix_repo)
            # A dry-run push asks the remote for push access without writing anything.
            pushed = storage._run(
                "push",
                "--dry-run",
                "--porcelain",
                "--no-verify",
                remote,
                f"{tip}:{storage.ref}",
                check=False,
                timeout=120,
            )
            if pushed.status != 0:
                return Check(
                    name,
                    Status.FAIL,
                    f"{branch} is readable but not pushable to '{remote}': {_reason(pushed.err)}",
                    "give these git credentials push access to the fork (in Actions: permissions: contents: write)",
                )
            return Check(name, Status.PASS, f"{branch} is readable and pushable ('{remote}', tip {tip[:10]})")
        except StorageError as exc:
            return Check(name, Status.FAIL, exc.message, fix_repo)
        finally:
            storage.close()

    # -- Actions ------------------------------------------------------------------------------------

    def check_actions(self) -> Check:
        name = "Actions in the fork"
        try:
            fork = fork_repo(self.settings, dict(self.env))
        except ConfigError as exc:
            return Check(name, Status.FAIL, exc.message, "set SYMBIOTE_REPO to owner/name of your fork")
        if fork is None:
            return Check(
                name,
                Status.SKIP,
                "no fork configured (SYMBIOTE_REPO, or GITHUB_REPOSITORY in Actions)",
                "set SYMBIOTE_REPO=owner/name of your fork to check it",
            )
        if self.client is None or not self.token_ok:
            return Check(name, Status.SKIP, "needs a valid token")
        client = self.client
        try:
            if client.get_repo(fork) is None:
                return Check(
                    name,
                    Status.FAIL,
                    f"{fork} does not exist or the token cannot see it",
                    "check SYMBIOTE_REPO and that the token has access to the fork",
                )
            status, _, data = client.request("GET", f"/repos/{fork}/actions/permissions", ok=(403, 404))
            if status == 200 and isinstance(data, dict) and data.get("enabled") is False:
                return Check(
                    name,
                    Status.FAIL,
                    f"Actions are disabled in {fork}",
                    f"enable them at https://github.com/{fork}/settings/actions",
                )
            states: dict[str, str] = {}
            for workflow in EXPECTED_WORKFLOWS:
                code, _, info = client.request(
                    "GET", f"/repos/{fork}/actions/workflows/{quote(workflow, safe='')}", ok=(403, 404)
                )
                if code == 403:
                    return Check(
                        name,
                        Status.FAIL,
                        f"the token may not read the workflows of {fork} (403)",
                        "give the token Actions (read and write) on the fork",
                    )
                state = info.get("state") if code == 200 and isinstance(info, dict) else None
                states[workflow] = state if isinstance(state, str) else "missing"
        except GitHubError as exc:
            return Check(name, Status.FAIL, f"cannot check {fork}: {exc.message}", "check the token and network")
        missing = [w for w, s in states.items() if s in ("missing", "deleted")]
        if missing:
            return Check(
                name,
                Status.FAIL,
                f"workflows missing in {fork}: {', '.join(missing)}",
                f"sync your fork with upstream (https://github.com/{fork}: Sync fork)",
            )
        if any(s == "disabled_fork" for s in states.values()):
            return Check(
                name,
                Status.FAIL,
                f"workflows are not enabled in the fork {fork} yet (GitHub disables them in new forks)",
                f"open https://github.com/{fork}/actions and enable the workflows",
            )
        disabled = [w for w, s in states.items() if s != "active"]
        if disabled:
            return Check(
                name,
                Status.FAIL,
                f"disabled workflows in {fork}: {', '.join(f'{w} ({states[w]})' for w in disabled)}",
                f"enable them at https://github.com/{fork}/actions (select the workflow, then Enable workflow)",
            )
        return Check(name, Status.PASS, f"{fork}: {', '.join(EXPECTED_WORKFLOWS)} active")

    # -- worker -------------------------------------------------------------------------------------

    def check_worker(self) -> Check:
        name = "worker"
        url = (self.env.get("SYMBIOTE_WORKER_URL") or "").strip()
        if not url:
            return Check(name, Status.SKIP, "not configured (SYMBIOTE_WORKER_URL is unset)")
        shown = url.split("?", 1)[0].rstrip("/")
        health = f"{shown}/health"
        try:
            status, body = self.http_get(health)
        except ValueError as exc:
            return Check(name, Status.FAIL, f"{shown}: {exc}", "set SYMBIOTE_WORKER_URL to the worker's https:// URL")
        except OSError as exc:
            reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
            return Check(
                name,
                Status.FAIL,
                f"cannot reach {health}: {reason}",
                "check the URL and that the worker (symbiote serve) is running and reachable",
            )
        info = body if isinstance(body, dict) else {}
        if status == 503 and info.get("status") == "degraded":
            return Check(
                name,
                Status.FAIL,
                f"{health} answered 503: the worker cannot reach its storage branch",
                "check the worker's storage settings and logs",
            )
        if status != 200 or info.get("status") != "ok":
            return Check(
                name,
                Status.FAIL,
                f"{health} answered {status}: not a healthy Symbiote worker",
                "check SYMBIOTE_WORKER_URL (the worker's base URL) and the worker's logs",
            )
        version = info.get("version")
        what = f"{health} answered ok" + (f" (symbiote {version})" if isinstance(version, str) else "")
        if self.settings.callback_secret is None:
            return Check(
                name,
                Status.WARN,
                f"{what}, but SYMBIOTE_CALLBACK_SECRET is unset",
                "set SYMBIOTE_CALLBACK_SECRET to the worker's secret so that session reports are signed",
            )
        return Check(name, Status.PASS, what)

    # -- rules --------------------------------------------------------------------------------------

    def check_rules(self) -> Check:
        name = "rules file"
        try:
            path = rules_path(self.settings)
        except ConfigError as exc:
            return Check(name, Status.FAIL, exc.message, "fix SYMBIOTE_CONFIG or create the file")
        if path is None:
            return Check(name, Status.PASS, "none: the built-in rules apply (acknowledgment comments)")
        try:
            ruleset = load_rules_file(path)
        except RulesFileError as exc:
            shown = "; ".join(str(p) for p in exc.problems[:3])
            more = f" (+{len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
            return Check(name, Status.FAIL, shown + more, f"run `symbiote rules check {path}` and fix each line")
        except ConfigError as exc:
            return Check(name, Status.FAIL, exc.message, "check the file")
        return Check(name, Status.PASS, f"{path}: {len(ruleset.rules)} rules, valid")


def run_doctor(settings: Settings, **overrides: Any) -> list[Check]:
    """All checks, in order (see ``Doctor`` for what can be overridden)."""
    return Doctor(settings, **overrides).run()


def all_passed(checks: list[Check]) -> bool:
    """True when no check failed (skipped and warned checks do not fail the run)."""
    return all(c.status is not Status.FAIL for c in checks)


def json_report(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all_passed(checks), "checks": [c.as_json() for c in checks]}
