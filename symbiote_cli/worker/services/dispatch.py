"""Actions mode: start workflows of the user's fork (``workflow_dispatch``)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError, as_api_error
from symbiote_cli.worker.services.tenancy import Tenancy, Tenant

if TYPE_CHECKING:
    from symbiote_cli.github.client import GitHubClient


class Workflow(StrEnum):
    """The fork's workflows the worker dispatches."""

    MAIN = "symbiote-main.yml"
    """A polling session (``POST /start`` in actions mode)."""
    AUTH = "symbiote-auth.yml"
    """One state request: the run fetches it from the worker (``GET /state/{stateId}/request``)."""


class Dispatcher:
    """Dispatches a tenant's fork's workflows on its default branch (with the app's scoped token)."""

    def __init__(self, ctx: WorkerContext, tenancy: Tenancy) -> None:
        self.ctx = ctx
        self.tenancy = tenancy

    def dispatch(self, tenant: Tenant, workflow: Workflow, inputs: Mapping[str, str]) -> None:
        """Dispatch ``workflow``; GitHub's refusal becomes a 502 (or its 503) ``dispatch_failed``."""
        repo = tenant.fork
        assert repo is not None, "dispatching needs the tenant's fork (actions mode)"
        client = self.tenancy.dispatch_client(tenant)
        try:
            client.dispatch_workflow(repo, workflow.value, self._ref(client, repo), dict(inputs))
        except SymbioteError as exc:
            error = as_api_error(exc)
            raise ApiError(
                502 if error.status < 500 else error.status,
                "dispatch_failed",
                f"could not dispatch {workflow.value} in {repo}: {exc.message}",
            ) from None

    @staticmethod
    def _ref(client: GitHubClient, repo: str) -> str:
        data = client.get_repo(repo)
        ref = data.get("default_branch") if data else None
        return ref if isinstance(ref, str) and ref else "main"
