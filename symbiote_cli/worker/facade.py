"""``Worker``: the worker's services composed once per app (``app.state.worker``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from symbiote_cli.worker.context import ClientFactory, WorkerContext, WorkerMode
from symbiote_cli.worker.services.auth import Auth
from symbiote_cli.worker.services.callbacks import CallbackService
from symbiote_cli.worker.services.dispatch import Dispatcher
from symbiote_cli.worker.services.events import EventsService
from symbiote_cli.worker.services.health import HealthService
from symbiote_cli.worker.services.kernel import KernelService
from symbiote_cli.worker.services.maintenance import DEFAULT_GC_INTERVAL, SHUTDOWN_JOIN_S, Maintenance
from symbiote_cli.worker.services.pollers import LocalPollers
from symbiote_cli.worker.services.registry import RegistryService
from symbiote_cli.worker.services.sessions import SessionService
from symbiote_cli.worker.services.state import StateService
from symbiote_cli.worker.services.tenancy import Tenancy

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage


class Worker:
    """Everything the endpoints do, without HTTP: one service per concern over a shared context."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        storage: Storage | None = None,
        client_factory: ClientFactory | None = None,
        public_url: str | None = None,
        gc_interval: float | None = DEFAULT_GC_INTERVAL,
        owner_check_interval: float | None = None,
        resume: bool = True,
        end_sessions_on_shutdown: bool = False,
    ) -> None:
        self.context = WorkerContext(
            settings, clock=clock, storage=storage, client_factory=client_factory, public_url=public_url
        )
        self.tenancy = Tenancy(self.context)
        dispatcher = Dispatcher(self.context, self.tenancy)
        self.auth = Auth(self.context)
        self.pollers = LocalPollers(self.context, owner_check_interval)
        self.sessions = SessionService(self.context, self.pollers, dispatcher)
        self.states = StateService(self.context, dispatcher)
        self.callbacks = CallbackService(self.context, self.auth, self.states)
        self.kernel = KernelService(self.context, self.tenancy, self.states)
        self.events = EventsService(self.context)
        self.registry = RegistryService(self.context)
        self.health = HealthService(self.context, self.pollers)
        self.maintenance = Maintenance(
            self.context,
            self.sessions,
            self.pollers,
            self.states,
            gc_interval=gc_interval,
            resume=resume,
            end_sessions_on_shutdown=end_sessions_on_shutdown,
        )

    @property
    def mode(self) -> WorkerMode:
        return self.context.mode

    @property
    def run_id(self) -> str:
        """``worker-<instance>``: the run id of the sessions this worker polls in-process."""
        return self.context.run_id

    @property
    def storage(self) -> Storage:
        return self.context.storage

    def start_background(self) -> None:
        self.maintenance.start_background()

    def shutdown(self, timeout: float = SHUTDOWN_JOIN_S) -> None:
        self.maintenance.shutdown(timeout)
