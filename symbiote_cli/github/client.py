"""The GitHub client: a thin typed layer over PyGithub's ``Requester``.

Retries, back-off, ``Retry-After`` and rate-limit waits are PyGithub's
(``GithubRetry`` on urllib3); this module adds what PyGithub's object API
hides: the status code and headers of conditional requests (a 304 to
``If-None-Match`` is free: https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate),
``X-Poll-Interval`` and the rate-limit headers.

Errors become ``SymbioteError`` subclasses whose messages never contain the token.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from symbiote_cli import __version__
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError

if TYPE_CHECKING:
    from github.Requester import Requester

USER_AGENT = f"symbiote/{__version__} (+https://github.com/ubiquity-os/symbiote)"
_LINK_NEXT = re.compile(r'<[^>]+>;\s*rel="next"')
# GitHub's recommended media type and API version header
# (https://docs.github.com/rest/about-the-rest-api/api-versions).
_BASE_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@dataclass
class RateInfo:
    """The last rate-limit headers seen (``x-ratelimit-*``)."""

    limit: int | None = None
    remaining: int | None = None
    used: int | None = None
    reset: float | None = None

    def update(self, headers: dict[str, Any]) -> None:
        for name in ("limit", "remaining", "used"):
            value = headers.get(f"x-ratelimit-{name}")
            if value is not None and str(value).isdigit():
                setattr(self, name, int(value))
        reset = headers.get("x-ratelimit-reset")
        if reset is not None and str(reset).isdigit():
            self.reset = float(reset)


@dataclass
class EventsPage:
    """One page of ``GET /users/{username}/events``."""

    status: int
    events: list[dict[str, Any]]
    etag: str | None
    poll_interval: int | None
    has_next: bool


@dataclass
class NotificationsPage:
    """One page of ``GET /notifications``."""

    status: int
    notifications: list[dict[str, Any]]
    last_modified: str | None
    poll_interval: int | None
    has_next: bool


@dataclass
class Counters:
    """Requests sent and points spent, for summaries and benchmarks."""

    requests: int = 0
    not_modified: int = 0
    writes: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def _is_write(verb: str) -> bool:
    return verb in {"POST", "PATCH", "PUT", "DELETE"}


class GitHubClient:
    """Typed calls Symbiote makes; one instance per token."""

    def __init__(
        self,
        token: str,
        api_url: str,
        *,
        timeout: float = 15.0,
        retries: int = 4,
        seconds_between_requests: float | None = None,
        seconds_between_writes: float | None = None,
        secondary_rate_wait: float = 60.0,
        max_rate_limit_wait: float = 120.0,
        token_source: str = "GH_PAT",
    ) -> None:
        self._token = token
        self.api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._between_requests = seconds_between_requests
        self._between_writes = seconds_between_writes
        self._secondary_wait = secondary_rate_wait
        self._max_wait = max_rate_limit_wait
        self.token_source = token_source
        self.rate = RateInfo()
        self.counters = Counters()
        self.oauth_scopes: str | None = None
        self._readers: Requester | None = None
        self._auth: Any = None
        self._writers: Requester | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the token
        return f"GitHubClient(api_url={self.api_url!r})"

    def use_auth(self, auth: Any) -> None:
        """Authenticate with a PyGithub ``Auth`` (e.g. an app installation) instead of a token."""
        self._auth = auth
        self._readers = self._writers = None

    # -- plumbing -----------------------------------------------------------------

    def _requester(self, write: bool) -> Requester:
        """Two requesters: reads retry everything transient, writes never blindly.

        A content-creating POST that timed out or got a 5xx may have succeeded, so
        writes are retried by urllib3 only when GitHub certainly refused them (403/429
        rate limits, connection refused); the executor re-checks its marker for the rest.

        ``raise_on_status=False``: when the retries run out, the last answer (a rate limit
        with its headers, a 5xx) is returned and mapped by ``_error``, not turned into a
        ``RetryError`` that would read as "cannot reach GitHub" with no status.
        """
        with self._lock:
            current = self._writers if write else self._readers
            if current is not None:
                return current
            from github import Auth, Consts, GithubRetry  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
            from github.GithubException import RateLimitExceededExceedsMaxWait  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
            from github.Requester import Requester  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
            from urllib3.util.retry import Retry  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)

            class CappedRetry(GithubRetry):
                """urllib3 sleeps any ``Retry-After``, however long: raise instead when it exceeds our cap."""

                def increment(  # type: ignore[override]
                    self, method: Any = None, url: Any = None, response: Any = None, *args: Any, **kwargs: Any
                ) -> Retry:
                    wait = self.get_retry_after(response) if response is not None else None
                    if wait is not None and self.max_rate_limit_wait is not None and wait > self.max_rate_limit_wait:
                        raise RateLimitExceededExceedsMaxWait(response.status, None, dict(response.headers), wait=wait)
                    return super().increment(method, url, response, *args, **kwargs)

            if write:
                retry = CappedRetry(
                    total=self._retries,
                    connect=self._retries,
                    read=0,
                    other=0,
                    status_forcelist=[429],
                    allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"},
                    backoff_factor=0.5,
                    secondary_rate_wait=self._secondary_wait,
                    max_rate_limit_wait=self._max_wait,
                    respect_retry_after_header=True,
                    raise_on_status=False,
                )
            else:
                retry = CappedRetry(
                    total=self._retries,
                    status_forcelist=[429, *range(500, 600)],
                    backoff_factor=0.5,
                    secondary_rate_wait=self._secondary_wait,
                    max_rate_limit_wait=self._max_wait,
                    respect_retry_after_header=True,
                    raise_on_status=False,
                )
            requester = Requester(
                auth=self._auth if self._auth is not None else Auth.Token(self._token),
                base_url=self.api_url,
                timeout=int(max(1, self._timeout)),
                user_agent=USER_AGENT,
                per_page=Consts.DEFAULT_PER_PAGE,
                verify=True,
                retry=retry,
                pool_size=None,
                seconds_between_requests=self._between_requests,
                seconds_between_writes=self._between_writes,
            )
            if write:
                self._writers = requester
            else:
                self._readers = requester
            return requester

    def request(
        self,
        verb: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        body: Any | None = None,
        ok: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any], Any]:
        """Send one request; return (status, lower-cased headers, parsed JSON or None).

        Statuses in ``ok`` (besides 2xx and 304) are returned instead of raised.
        """
        from github.GithubException import GithubException, RateLimitExceededExceedsMaxWait  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
        from requests.exceptions import RequestException  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
        from urllib3.exceptions import HTTPError as Urllib3Error  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)

        write = _is_write(verb)
        requester = self._requester(write)
        try:
            status, raw_headers, output = requester.requestJson(
                verb, path, params, {**_BASE_HEADERS, **(headers or {})}, body
            )
        except RateLimitExceededExceedsMaxWait as exc:
            retry_at = self._retry_at(dict(exc.headers or {}))
            raise RateLimitedError(f"GitHub rate limit on {verb} {_short(path)}; resumes later", retry_at) from None
        except GithubException as exc:
            raise self._error(verb, path, exc.status, dict(exc.headers or {}), exc.data) from None
        except (RequestException, Urllib3Error, OSError) as exc:
            raise GitHubError(
                f"cannot reach GitHub at {self.api_url} ({type(exc).__name__}) on {verb} {_short(path)}"
            ) from None
        lower = {str(k).lower(): v for k, v in raw_headers.items()}
        self.rate.update(lower)
        self.counters.requests += 1
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1
        if status == 304:
            self.counters.not_modified += 1
        if write and status < 400:
            self.counters.writes += 1
        if "x-oauth-scopes" in lower:
            self.oauth_scopes = str(lower["x-oauth-scopes"])
        data: Any = None
        if output:
            try:
                data = json.loads(output)
            except ValueError:
                if status < 400:
                    raise GitHubError(
                        f"GitHub sent a body that is not JSON on {verb} {_short(path)} ({status})", status
                    ) from None
        if status >= 400 and status not in ok:
            raise self._error(verb, path, status, lower, data)
        return status, lower, data

    def _retry_at(self, headers: dict[str, Any]) -> float:

        lower = {str(k).lower(): v for k, v in headers.items()}
        retry_after = lower.get("retry-after")
        if retry_after is not None and str(retry_after).isdigit():
            return time.time() + float(retry_after)
        reset = lower.get("x-ratelimit-reset")
        if reset is not None and str(reset).isdigit():
            return float(reset)
        return time.time() + 60.0

    def _error(self, verb: str, path: str, status: int, headers: dict[str, Any], data: Any) -> Exception:
        message = data.get("message") if isinstance(data, dict) else None
        text = str(message)[:200] if message else ""
        lower = {str(k).lower(): v for k, v in headers.items()}
        if status == 401:
            return AuthError(
                f"GitHub rejected the token in {self.token_source} (401 {text or 'Bad credentials'}): "
                f"create a new token and set {self.token_source}"
            )
        if status in (403, 429) and (
            lower.get("x-ratelimit-remaining") == "0" or "retry-after" in lower or "rate limit" in text.lower()
        ):
            return RateLimitedError(
                f"GitHub rate limit ({status}) on {verb} {_short(path)}", self._retry_at(lower)
            )
        detail = f": {text}" if text else ""
        return GitHubError(f"GitHub answered {status} to {verb} {_short(path)}{detail}", status)

    # -- calls ---------------------------------------------------------------------

    def whoami(self) -> str:
        """The token owner's login (``GET /user``)."""
        _, _, data = self.request("GET", "/user")
        login = data.get("login") if isinstance(data, dict) else None
        if not isinstance(login, str):
            raise GitHubError("GET /user returned no login")
        return login

    def list_events(
        self, user: str, *, etag: str | None = None, page: int = 1, per_page: int = 100
    ) -> EventsPage:
        """One page of the user's events, newest first.

        ``GET /users/{username}/events`` shows private events when the token is the
        user's own (https://docs.github.com/rest/activity/events#list-events-for-the-authenticated-user);
        at most 300 events of the last 30 days, 100 per page.
        """
        headers = {"If-None-Match": etag} if etag else None
        status, hdrs, data = self.request(
            "GET",
            f"/users/{quote(user, safe='')}/events",
            params={"per_page": per_page, "page": page},
            headers=headers,
        )
        return EventsPage(
            status=status,
            events=_objects(data),
            etag=hdrs.get("etag"),
            poll_interval=_poll_interval(hdrs),
            has_next=_has_next(hdrs),
        )

    def list_notifications(
        self, *, if_modified_since: str | None = None, page: int = 1, per_page: int = 50
    ) -> NotificationsPage:
        """One page of the user's notification threads, most recently updated first.

        ``GET /notifications`` (https://docs.github.com/rest/activity/notifications#list-notifications-for-the-authenticated-user):
        ``all=true`` so that a thread the user already read in the browser still reaches the rules;
        ``If-Modified-Since`` with the last ``Last-Modified`` makes an unchanged list a 304, which
        costs no rate limit; at most 50 per page. Only classic tokens may read it: a fine-grained
        token gets 403 (``GitHubError`` with that status).
        """
        headers = {"If-Modified-Since": if_modified_since} if if_modified_since else None
        status, hdrs, data = self.request(
            "GET",
            "/notifications",
            params={"all": "true", "per_page": per_page, "page": page},
            headers=headers,
        )
        return NotificationsPage(
            status=status,
            notifications=_objects(data),
            last_modified=hdrs.get("last-modified"),
            poll_interval=_poll_interval(hdrs),
            has_next=_has_next(hdrs),
        )

    def mark_thread_read(self, thread_id: str) -> None:
        """``PATCH /notifications/threads/{thread_id}`` (205 Reset Content): the thread is read."""
        self.request("PATCH", f"/notifications/threads/{quote(thread_id, safe='')}")

    def get_repo(self, full_name: str) -> dict[str, Any] | None:
        """Repository metadata, or None when it does not exist (or is invisible to us)."""
        status, _, data = self.request("GET", f"/repos/{full_name}", ok=(404,))
        return data if status == 200 and isinstance(data, dict) else None

    def get_issue_comment(self, full_name: str, comment_id: int) -> dict[str, Any] | None:
        """One issue or PR conversation comment (``GET /repos/{owner}/{repo}/issues/comments/{comment_id}``),
        or None when it is gone."""
        status, _, data = self.request("GET", f"/repos/{full_name}/issues/comments/{comment_id}", ok=(404,))
        return data if status == 200 and isinstance(data, dict) else None

    def file_exists(self, full_name: str, path: str) -> bool:
        status, _, _ = self.request("GET", f"/repos/{full_name}/contents/{quote(path)}", ok=(404,))
        return status == 200

    def list_issue_comments(self, full_name: str, number: int, *, since: str | None = None) -> list[dict[str, Any]]:
        """All comments of an issue/PR updated at or after ``since`` (every page)."""
        comments: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"per_page": 100, "page": page}
            if since:
                params["since"] = since
            _, hdrs, data = self.request("GET", f"/repos/{full_name}/issues/{number}/comments", params=params)
            if isinstance(data, list):
                comments.extend(c for c in data if isinstance(c, dict))
            if not _has_next(hdrs) or page >= 50:
                return comments
            page += 1

    def create_comment(self, full_name: str, number: int, body: str) -> dict[str, Any]:
        _, _, data = self.request("POST", f"/repos/{full_name}/issues/{number}/comments", body={"body": body})
        return data if isinstance(data, dict) else {}

    def delete_comment(self, full_name: str, comment_id: int) -> None:
        """``DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}`` (204)."""
        self.request("DELETE", f"/repos/{full_name}/issues/comments/{comment_id}")

    def add_reaction(
        self, full_name: str, content: str, *, issue_number: int | None = None, comment_id: int | None = None
    ) -> dict[str, Any]:
        if comment_id is not None:
            path = f"/repos/{full_name}/issues/comments/{comment_id}/reactions"
        else:
            path = f"/repos/{full_name}/issues/{issue_number}/reactions"
        _, _, data = self.request("POST", path, body={"content": content})
        return data if isinstance(data, dict) else {}

    def add_labels(self, full_name: str, number: int, labels: list[str]) -> list[dict[str, Any]]:
        _, _, data = self.request("POST", f"/repos/{full_name}/issues/{number}/labels", body={"labels": labels})
        return data if isinstance(data, list) else []

    def dispatch_workflow(self, full_name: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """``POST .../actions/workflows/{workflow_id}/dispatches`` (204 on success)."""
        self.request(
            "POST",
            f"/repos/{full_name}/actions/workflows/{quote(workflow, safe='')}/dispatches",
            body={"ref": ref, "inputs": inputs},
        )

    def repository_dispatch(self, full_name: str, event_type: str, client_payload: dict[str, Any]) -> None:
        self.request(
            "POST",
            f"/repos/{full_name}/dispatches",
            body={"event_type": event_type, "client_payload": client_payload},
        )


def _objects(data: Any) -> list[dict[str, Any]]:
    """The JSON objects of a list answer (anything else is dropped)."""
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _poll_interval(headers: dict[str, Any]) -> int | None:
    """``X-Poll-Interval``: the seconds GitHub asks a poller to wait (events and notifications send it)."""
    poll = headers.get("x-poll-interval")
    return int(poll) if poll is not None and str(poll).isdigit() else None


def _has_next(headers: dict[str, Any]) -> bool:
    """Whether the ``Link`` header names a next page."""
    return bool(_LINK_NEXT.search(str(headers.get("link", ""))))


def _short(path: str) -> str:
    """The path without a query string, for messages."""
    return path.split("?", 1)[0]
