"""Which repos the UbiquityOS kernel serves — looked up once, cached with a TTL.

The kernel acts only where its app is installed and a config exists: the repo's
``.github/.ubiquity-os.config.yml`` or a repository named ``.ubiquity-os`` owned
by the repo's owner (the UbiquityOS kernel's README). With app credentials the
installation lookup is authoritative; the config probe is the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from symbiote_cli.core.clock import iso
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import Item, RegistryEntry
from symbiote_cli.core.routing import registry_key

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.github.client import GitHubClient

log = logging.getLogger("symbiote.registry")

CONFIG_PATH = ".github/.ubiquity-os.config.yml"
OWNER_REPO = ".ubiquity-os"

# repo -> True/False when the app's installation lookup answered, None when unknown.
InstallationLookup = Callable[[str], bool | None]


class KernelRegistry:
    """Resolves and caches kernel-served repos; ``changed`` tells the loop to store it.

    It never reads or writes the storage branch: its caller hands it the stored entries
    (``layout.load_registry``) and stores ``take_changes()`` with ``transactions.merge_registry``.

    Without a client (``symbiote route --offline``, or no token) it only reads the cache:
    ``resolve`` looks nothing up and ``unknown`` says which repos it cannot answer for.
    """

    def __init__(
        self,
        client: GitHubClient | None,
        clock: Clock,
        *,
        entries: dict[str, RegistryEntry] | None = None,
        ttl: float = 6 * 3600.0,
        kernel_repos: Iterable[str] = (),
        kernel_owners: Iterable[str] = (),
        installation_lookup: InstallationLookup | None = None,
        names: bytes | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.entries: dict[str, RegistryEntry] = dict(entries or {})
        self.ttl = ttl
        self.kernel_repos = frozenset(r.lower() for r in kernel_repos)
        self.kernel_owners = frozenset(o.lower() for o in kernel_owners)
        self.installation_lookup = installation_lookup
        self.names = names  # keys private repos' entries (privacy.repo_key)
        self.changed: dict[str, RegistryEntry] = {}
        self._owner_cache: dict[str, bool] = {}

    def _fresh(self, key: str) -> bool:
        entry = self.entries.get(key)
        return entry is not None and self.clock.now() - entry.checked_at < self.ttl

    def _static(self, event: Item) -> bool:
        """SYMBIOTE_KERNEL_REPOS/OWNERS decide without a lookup."""
        return event.repo_name.lower() in self.kernel_repos or event.owner.lower() in self.kernel_owners

    def resolve(self, events: Iterable[Item], *, force: bool = False) -> None:
        """Look up every repo of ``events`` whose entry is missing or stale (nothing without a client)."""
        client = self.client
        if client is None:
            return
        seen: set[str] = set()
        for event in events:
            repo = event.repo_name
            key = registry_key(repo, private=event.private, names=self.names)
            if key in seen or self._static(event):
                continue
            seen.add(key)
            if not force and self._fresh(key):
                continue
            if event.is_symbiote_marked:
                continue
            try:
                kernel, source = self._probe(client, repo)
            except (AuthError, RateLimitedError):
                raise
            except GitHubError as exc:
                # Unknown is not "no": keep any older entry, try again next time.
                log.warning("kernel lookup for a repo failed (%s); will retry", exc.status or "network")
                continue
            entry = RegistryEntry(
                repo=key if event.private else repo, kernel=kernel, source=source, checked_at=self.clock.now()
            )
            self.entries[key] = entry
            self.changed[key] = entry

    def _probe(self, client: GitHubClient, repo: str) -> tuple[bool, str]:
        if self.installation_lookup is not None:
            installed = self.installation_lookup(repo)
            if installed is False:
                return False, "app not installed"
            if installed is None:
                log.info("installation lookup unavailable; falling back to the config probe")
        if client.file_exists(repo, CONFIG_PATH):
            return True, f"{CONFIG_PATH} exists"
        owner = repo.split("/", 1)[0]
        if owner.lower() not in self._owner_cache:
            self._owner_cache[owner.lower()] = client.get_repo(f"{owner}/{OWNER_REPO}") is not None
        if self._owner_cache[owner.lower()]:
            return True, f"owner has a {OWNER_REPO} repository"
        return False, "no kernel config found"

    def unknown(self, events: Iterable[Item], why: str) -> dict[str, str]:
        """Registry key -> "kernel status unknown <why>" for each repo of ``events`` that ``resolve``
        would look up but has no fresh answer for (never looked up, stale, or the lookup failed).

        For ``RoutingContext.kernel_unknown``: routing then says so instead of presenting the
        fallback route as if the kernel had been ruled out.
        """
        out: dict[str, str] = {}
        for event in events:
            key = registry_key(event.repo_name, private=event.private, names=self.names)
            if key in out or self._static(event) or event.is_symbiote_marked or self._fresh(key):
                continue
            entry = self.entries.get(key)
            stale = f" (the cached lookup of {iso(entry.checked_at)} is stale)" if entry is not None else ""
            out[key] = f"kernel status unknown {why}{stale}"
        return out

    def known(self) -> dict[str, RegistryEntry]:
        """The fresh entries only: a stale answer is not one routing may rely on."""
        return {key: entry for key, entry in self.entries.items() if self._fresh(key)}

    def take_changes(self) -> dict[str, RegistryEntry]:
        changed, self.changed = self.changed, {}
        return changed

