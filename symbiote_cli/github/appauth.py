"""GitHub App credentials (``SYMBIOTE_APP_ID`` + ``SYMBIOTE_APP_PRIVATE_KEY``).

Uses PyGithub's app auth: an app JWT for ``GET /repos/{owner}/{repo}/installation``
(authoritative "is the app installed here", https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app)
and installation access tokens, which expire after an hour and are refreshed
before that (PyGithub refreshes a few minutes early). Token lengths are never
assumed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from symbiote_cli.core.errors import ConfigError, GitHubError
from symbiote_cli.github.client import GitHubClient

log = logging.getLogger("symbiote.app")


def load_private_key(value: str) -> str:
    """PEM text (also with literal ``\\n``), or a path to a PEM file."""
    text = value.strip()
    if "-----BEGIN" not in text:
        path = Path(text)
        try:
            if path.is_file():
                text = path.read_text(encoding="utf-8").strip()
        except OSError:
            pass
    text = text.replace("\\n", "\n")
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise ConfigError("SYMBIOTE_APP_PRIVATE_KEY must be a PEM private key or the path of one")
    return text + "\n"


class AppCredentials:
    """Installation lookups and per-repo installation clients for one GitHub App."""

    def __init__(self, app_id: str, private_key_pem: str, api_url: str, *, timeout: float = 15.0) -> None:
        self.app_id = app_id
        self._key = private_key_pem
        self.api_url = api_url
        self.timeout = timeout
        self._installations: dict[str, int | None] = {}
        self._clients: dict[int, GitHubClient] = {}
        self._lock = threading.Lock()
        self._integration: object | None = None

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id!r})"

    def _gi(self) -> object:
        if self._integration is None:
            from github import Auth, GithubIntegration  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)

            self._integration = GithubIntegration(
                auth=Auth.AppAuth(self.app_id, self._key), base_url=self.api_url, timeout=int(self.timeout)
            )
        return self._integration

    def installation_id(self, repo: str) -> int | None:
        """The app's installation on ``repo``; None when not installed. Cached per run."""
        from github.GithubException import GithubException, UnknownObjectException  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
        from requests.exceptions import RequestException  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)
        from urllib3.exceptions import HTTPError as Urllib3Error  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)

        with self._lock:
            if repo in self._installations:
                return self._installations[repo]
        owner, name = repo.split("/", 1)
        try:
            installation = self._gi().get_repo_installation(owner, name)  # type: ignore[attr-defined]
            found: int | None = int(installation.id)
        except UnknownObjectException:
            found = None
        except GithubException as exc:
            raise _lookup_error(exc.status) from None
        except (RequestException, Urllib3Error, OSError) as exc:
            # GitHub unreachable: unknown, like a 5xx (not a crash of the poll loop).
            raise _lookup_error(None, type(exc).__name__) from None
        with self._lock:
            self._installations[repo] = found
        return found

    def is_installed(self, repo: str) -> bool | None:
        """True/False from GitHub; None when GitHub could not say (fall back to the probe)."""

        try:
            return self.installation_id(repo) is not None
        except GitHubError as exc:
            log.warning("installation lookup failed (%s)", exc.status)
            return None

    def client_for(self, repo: str) -> GitHubClient | None:
        """A client acting as the app's installation on ``repo``; None if not installed, or when
        GitHub cannot say right now (the caller then acts with the user's token, as without an app)."""
        from github import Auth  # noqa: PLC0415 - PyGithub on first use: --help and route stay light (test_startup)

        try:
            installation = self.installation_id(repo)
        except GitHubError as exc:
            log.warning("installation lookup failed (%s); acting with the user's token", exc.status or "network")
            return None
        if installation is None:
            return None
        with self._lock:
            client = self._clients.get(installation)
            if client is None:
                auth = Auth.AppAuth(self.app_id, self._key).get_installation_auth(installation)
                client = GitHubClient("", self.api_url, timeout=self.timeout, token_source="SYMBIOTE_APP_PRIVATE_KEY")
                client.use_auth(auth)
                self._clients[installation] = client
            return client

    # -- the worker's tenancy: one installation per user's fork, looked up fresh every time ---------

    def app_jwt(self, now: float | None = None) -> str:
        """An app JWT (RS256, ``iss`` = app id, ten minutes at most, ``iat`` a minute back for skew)."""
        import jwt  # noqa: PLC0415 - PyJWT on first use: route stays light (test_startup)

        issued = int(time.time() if now is None else now) - 60
        payload = {"iat": issued, "exp": issued + 540, "iss": str(self.app_id)}
        return jwt.encode(payload, self._key, algorithm="RS256")

    def _app_request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        import requests  # noqa: PLC0415 - requests on first use: route stays light (test_startup)

        headers = {
            "Authorization": f"Bearer {self.app_jwt()}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        try:
            response = requests.request(
                method, f"{self.api_url}{path}", json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise _lookup_error(None, type(exc).__name__) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data

    def repo_installation(self, repo: str) -> int | None:
        """The app's installation on ``repo`` asked of GitHub now (no cache): None when not installed."""
        owner, name = repo.split("/", 1)
        status, data = self._app_request("GET", f"/repos/{quote(owner)}/{quote(name)}/installation")
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("id"), int):
            raise _lookup_error(status)
        return int(data["id"])

    def repo_token(self, repo: str, installation_id: int, permissions: dict[str, str]) -> str:
        """An installation token that reaches ``repo`` only, with only ``permissions``."""
        name = repo.split("/", 1)[1]
        status, data = self._app_request(
            "POST",
            f"/app/installations/{installation_id}/access_tokens",
            {"repositories": [name], "permissions": dict(permissions)},
        )
        token = data.get("token") if isinstance(data, dict) else None
        if status != 201 or not isinstance(token, str) or not token:
            raise GitHubError(f"GitHub refused an installation token for {repo} ({status})", status)
        return token


def _lookup_error(status: int | None, reason: str | None = None) -> Exception:

    return GitHubError(f"GitHub App installation lookup failed ({status or reason or 'network'})", status)
