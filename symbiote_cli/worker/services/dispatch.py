"""Actions mode: start workflows of the user's fork (``workflow_dispatch``)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError, as_api_error

if TYPE_CHECKING:
    from symbiote_cli.github.client import GitHubClient


class Workflow(StrEnum):
    """The fork's workflows the worker dispatches."""

    MAIN = "symbiote-main.yml"
    """A polling session (``POST /start`` in actions mode)."""
    AUTH = "symbiote-auth.yml"
    """One state request with no live session to queue it for."""


class Dispatcher:
    """Dispatches the fork's workflows on its default branch, with the worker's own client."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    @property
    def repo(self) -> str:
        repo = self.ctx.settings.repo
        assert repo is not None, "dispatching needs SYMBIOTE_REPO (actions mode)"
        return repo

    def dispatch(self, workflow: Workflow, inputs: Mapping[str, str]) -> None:
        """Dispatch ``workflow``; GitHub's refusal becomes a 502 (or its 503) ``dispatch_failed``."""
        try:
            client = self.ctx.client_factory(None)
            client.dispatch_workflow(self.repo, workflow.value, self._ref(client), dict(inputs))
        except SymbioteError as exc:
            error = as_api_error(exc)
            raise ApiError(
                502 if error.status < 500 else error.status,
                "dispatch_failed",
                f"could not dispatch {workflow.value} in {self.repo}: {exc.message}",
            ) from None

    def _ref(self, client: GitHubClient) -> str:
        data = client.get_repo(self.repo)
        ref = data.get("default_branch") if data else None
        return ref if isinstance(ref, str) and ref else "main"
