"""Kernel requests stay in the user's scope: Symbiote acts with a user's authority only on their behalf.

A kernel request can be genuine (signed by the kernel) and still have nothing to do with the user
Symbiote serves: anyone can list a worker's URL, or a fork's auth workflow, as a plugin in their own
organization's kernel configuration, and the kernel will then forward their events. Acting on those
with the user's token would make Symbiote a confused deputy. So a verified request is acted on only
when all of these hold:

* its ``sender`` is the served user, or a login the user lists (``SYMBIOTE_KERNEL_ALLOWED_SENDERS``);
* its repository is the user's own, or matches the user's allow-list (``SYMBIOTE_KERNEL_SCOPE``:
  owners like ``ubiquity`` and ``owner/repo`` globs like ``ubiquity/*-plugin``);
* its ``ref`` names this plugin: the worker's public URL (the worker form), or, in the Actions form,
  a branch of the fork or the fork's own ``owner/repo:symbiote-auth.yml@ref``;
* the kernel token, when present, binds the same repository, and any audience of it beyond the
  kernel's own (``ai.ubq.fi``) names this plugin too.

Pure: :func:`out_of_scope` returns the reason to refuse, or None.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from symbiote_cli.core.errors import UsageError
from symbiote_cli.core.kernel import KERNEL_TOKEN_AUDIENCE, KernelRequest

AUTH_WORKFLOW = "symbiote-auth.yml"
_PLAIN_REF_RE = re.compile(r"[A-Za-z0-9._/-]{1,255}")


class OutOfScopeError(UsageError):
    """A verified kernel request outside the user's scope: refused, nothing done."""


def _norm_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


@dataclass(frozen=True)
class Scope:
    """Whose authority is lent, where, and under which plugin identities."""

    user: str
    allowed_senders: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    plugin_urls: tuple[str, ...] = ()
    fork: str | None = None
    check_repo: bool = True

    @classmethod
    def build(
        cls,
        user: str,
        *,
        allowed_senders: Iterable[str] = (),
        repos: Iterable[str] = (),
        plugin_urls: Iterable[str | None] = (),
        fork: str | None = None,
        check_repo: bool = True,
    ) -> Scope:
        return cls(
            user=user,
            allowed_senders=tuple(s.strip().lower() for s in allowed_senders if s.strip()),
            repos=tuple(r.strip().lower() for r in repos if r.strip()),
            plugin_urls=tuple(_norm_url(u) for u in plugin_urls if u),
            fork=fork,
            check_repo=check_repo,
        )

    def sender_ok(self, sender: str | None) -> bool:
        if not sender:
            return False
        login = sender.lower()
        return login == self.user.lower() or login in self.allowed_senders

    def repo_ok(self, repo: str | None) -> bool:
        if not repo or "/" not in repo:
            return False
        name = repo.lower()
        owner = name.split("/", 1)[0]
        if owner == self.user.lower():
            return True
        for entry in self.repos:
            if "/" in entry:
                if fnmatch.fnmatchcase(name, entry):
                    return True
            elif fnmatch.fnmatchcase(owner, entry):
                return True
        return False

    def names_this_plugin(self, ref: str) -> bool:
        """``ref`` (or an audience) names this plugin."""
        if ref.startswith(("https://", "http://")):
            return _norm_url(ref) in self.plugin_urls
        if self.fork is None:
            return False
        if ":" in ref:
            target, _, _branch = ref.partition("@")
            return target.lower() == f"{self.fork}:{AUTH_WORKFLOW}".lower()
        # The Actions form: the kernel dispatched this fork's workflow at a branch (or tag, or sha).
        return bool(_PLAIN_REF_RE.fullmatch(ref)) and ".." not in ref


def out_of_scope(req: KernelRequest, scope: Scope) -> str | None:
    """Why ``req`` must not be acted on with ``scope.user``'s authority, or None when it may."""
    sender = req.sender
    if not scope.sender_ok(sender):
        return f"sender {sender or '(none)'} is not {scope.user} (nor a login in SYMBIOTE_KERNEL_ALLOWED_SENDERS)"
    repo = req.repository
    if scope.check_repo and not scope.repo_ok(repo):
        return f"repository {repo or '(none)'} is not {scope.user}'s own nor in SYMBIOTE_KERNEL_SCOPE"
    if not scope.names_this_plugin(req.ref):
        return "ref does not name this plugin (the worker's public URL, or this fork's auth workflow)"
    claims = req.kernel_token_claims
    if claims is not None:
        owner, name = claims.get("owner"), claims.get("repo")
        if isinstance(owner, str) and isinstance(name, str) and repo and f"{owner}/{name}".lower() != repo.lower():
            return "the kernel token was issued for another repository"
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        for item in audiences:
            if item == KERNEL_TOKEN_AUDIENCE or not isinstance(item, str):
                continue
            if not scope.names_this_plugin(item):
                return "the kernel token's audience names another plugin"
    return None
