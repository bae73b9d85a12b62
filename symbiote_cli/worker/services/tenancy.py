"""Whom the worker serves, and where each user's workflows run.

* **Local mode**: single-tenant by design. The worker acts with its own ``GH_PAT``, so it serves
  only that token's owner; any other user is refused (403 ``not_served``).
* **Actions mode with the GitHub App** (``SYMBIOTE_APP_ID`` + ``SYMBIOTE_APP_PRIVATE_KEY``): the
  worker holds no user's token. A user is enrolled when the app is installed on their fork
  ``{user}/{SYMBIOTE_FORK_NAME}``; the worker asks GitHub every time (``GET /repos/{o}/{r}/installation``
  with the app JWT), takes an installation token scoped to that one repository (Actions write) and
  dispatches there; the user's own ``GH_PAT`` secret does the acting. No installation: 404
  ``not_enrolled``, nothing dispatched.
* **Actions mode without the app** (the older set-up, ``SYMBIOTE_REPO`` = one fork): that fork's
  owner only, dispatched with the worker's token.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiote_cli.core.errors import GitHubError, SymbioteError
from symbiote_cli.wiring import make_app
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError, as_api_error

if TYPE_CHECKING:
    from symbiote_cli.github.appauth import AppCredentials
    from symbiote_cli.github.client import GitHubClient

log = logging.getLogger("symbiote.worker")

DISPATCH_PERMISSIONS = {"actions": "write", "metadata": "read"}
"""What a dispatch token may do: start workflows in the one fork it is scoped to."""


@dataclass(frozen=True)
class Tenant:
    """A served user and, in actions mode, the fork their workflows run in."""

    user: str
    fork: str | None
    installation: int | None = None
    """The app's installation on the fork, as GitHub answered for this request."""


class Tenancy:
    """Resolves a login to a ``Tenant`` (or refuses it) and gives the client to dispatch with."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._owner: str | None = None
        self._app: AppCredentials | None = make_app(ctx.settings) if ctx.mode is WorkerMode.ACTIONS else None

    @property
    def multi_tenant(self) -> bool:
        return self._app is not None

    def served_user(self) -> str:
        """Single-tenant modes: the one login served (GH_PAT's owner; the legacy fork's owner)."""
        if self.ctx.mode is WorkerMode.ACTIONS and self.ctx.settings.repo:
            return self.ctx.settings.repo.split("/", 1)[0]
        with self._lock:
            if self._owner is not None:
                return self._owner
        try:
            owner = self.ctx.client_factory(None).whoami()
        except SymbioteError as exc:
            error = as_api_error(exc)
            raise ApiError(error.status if error.status >= 500 else 502, "github_error", exc.message) from None
        with self._lock:
            self._owner = owner
        return owner

    def fork_of(self, user: str) -> str:
        """Where ``user``'s workflows run (actions mode)."""
        if self._app is None:
            repo = self.ctx.settings.repo
            if not repo:
                raise ApiError(503, "not_configured", "actions mode needs the GitHub App or SYMBIOTE_REPO")
            return repo
        return f"{user}/{self.ctx.settings.fork_name}"

    def resolve(self, user: str) -> Tenant:
        """The tenant for ``user``; 403 ``not_served`` or 404 ``not_enrolled`` otherwise."""
        if self._app is None:
            served = self.served_user()
            if served.lower() != user.lower():
                what = "the owner of its GH_PAT" if self.ctx.mode is WorkerMode.LOCAL else "the owner of SYMBIOTE_REPO"
                raise ApiError(403, "not_served", f"this worker serves only {what}, not {user}")
            return Tenant(served, self.fork_of(served) if self.ctx.mode is WorkerMode.ACTIONS else None)
        fork = self.fork_of(user)
        installation = self._installation(fork)
        if installation is None:
            raise ApiError(404, "not_enrolled", f"{user} is not enrolled: install the Symbiote GitHub App on {fork}")
        return Tenant(user, fork, installation)

    def owns(self, user: str) -> bool:
        """Is ``user`` served here (no GitHub call for the multi-tenant case: any login may be)."""
        if self._app is not None:
            return True
        try:
            return self.served_user().lower() == user.lower()
        except ApiError:
            return False

    def _installation(self, fork: str) -> int | None:
        assert self._app is not None
        try:
            return self._app.repo_installation(fork)
        except GitHubError as exc:
            message = f"could not look up the app's installation on {fork}: {exc.message}"
            raise ApiError(502, "github_error", message) from None

    def dispatch_client(self, tenant: Tenant) -> GitHubClient:
        """A client that may dispatch workflows in ``tenant.fork`` (and nowhere else, with the app)."""
        if self._app is None:
            return self.ctx.client_factory(None)
        from symbiote_cli.github.client import GitHubClient  # noqa: PLC0415 - PyGithub on first use

        assert tenant.fork is not None
        installation = tenant.installation or self._installation(tenant.fork)
        if installation is None:
            raise ApiError(404, "not_enrolled", f"{tenant.user} is not enrolled (no installation on {tenant.fork})")
        try:
            token = self._app.repo_token(tenant.fork, installation, DISPATCH_PERMISSIONS)
        except GitHubError as exc:
            raise ApiError(502, "github_error", exc.message) from None
        from symbiote_cli.core.redaction import REDACT  # noqa: PLC0415

        REDACT.add(token)
        settings = self.ctx.settings
        return GitHubClient(
            token,
            settings.api_url,
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            seconds_between_requests=settings.seconds_between_requests,
            seconds_between_writes=settings.seconds_between_writes,
            token_source="SYMBIOTE_APP_PRIVATE_KEY",
        )
