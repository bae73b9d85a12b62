"""The baseline: the obvious PyGithub polling loop, written the way most first versions are.

Every interval it lists the user's events with PyGithub's defaults (no ETag, 30 per page, every
page of the feed), acts on event ids it has not seen (GET the repo, GET the issue, POST a
comment), and, when the set of seen ids changed, commits it to a branch of its own checkout and
pushes it. The first cycle only records what is already in the feed, as Symbiote's baseline does.
The one guard it has beyond the obvious is not answering its own comments (without it, it would
loop forever).

``stop_at_seen=True`` is the one-line improvement a careful user makes next: the feed is newest
first, so stop paging at the first id already seen (``break`` instead of ``continue``). An idle
poll then costs one request instead of ten.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from github import Auth, Github

from benchmarks.common import SimClock, git

ACK_TAG = "[naive-ack]"
BRANCH = "naive-state"


class NaivePoller:
    def __init__(
        self, api_url: str, token: str, login: str, checkout: Path, clock: SimClock, *, stop_at_seen: bool = False
    ) -> None:
        self.clock = clock
        self.stop_at_seen = stop_at_seen
        self.gh = Github(auth=Auth.Token(token), base_url=api_url)
        self.user = self.gh.get_user(login)
        self.seen: set[str] = set()
        self.started = False
        self.checkout = checkout
        self.cycles = 0
        self.commits = 0
        self.acted = 0
        start_branch(checkout)

    # -- what the loop does -------------------------------------------------------------

    def cycle(self) -> int:
        """One poll; returns how many events were new."""
        self.cycles += 1
        new = 0
        for event in self.user.get_events():
            if event.id in self.seen:
                if self.stop_at_seen:
                    break  # the one-line improvement: the rest of the feed is older
                continue
            self.seen.add(event.id)
            new += 1
            if self.started and self.wants(event.type, event.payload):
                self.act(event.id, event.repo.name, event.payload)
        self.started = True
        if new:  # the seen set changed
            self.commit()
        return new

    def run(self, seconds: float, interval: float = 60.0) -> None:
        stop = threading.Event()
        deadline = self.clock.now() + seconds
        while self.clock.now() < deadline:
            self.cycle()
            self.clock.sleep(min(interval, max(0.0, deadline - self.clock.now())), stop)

    @staticmethod
    def wants(kind: str, payload: dict[str, Any]) -> bool:
        action = payload.get("action")
        if kind == "IssueCommentEvent":
            body = (payload.get("comment") or {}).get("body") or ""
            return action == "created" and ACK_TAG not in body
        return (kind, action) in {("IssuesEvent", "opened"), ("PullRequestEvent", "opened")}

    def act(self, event_id: str, repo_name: str, payload: dict[str, Any]) -> None:
        number = (payload.get("issue") or {}).get("number") or payload.get("number")
        repo = self.gh.get_repo(repo_name)
        issue = repo.get_issue(int(number))
        issue.create_comment(f"Noticed event {event_id}, on it. {ACK_TAG}")
        self.acted += 1

    def commit(self) -> None:
        commit_state(self.checkout, self.seen, self.cycles)
        self.commits += 1


def start_branch(checkout: Path) -> None:
    git(checkout, "checkout", "--quiet", "-b", BRANCH)


def commit_state(checkout: Path, seen: set[str], cycle: int) -> None:
    """The baseline's storage: one JSON file of every id seen, committed and pushed."""
    state = {"seen": sorted(seen)}
    (checkout / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    git(checkout, "add", "state.json")
    git(checkout, "commit", "--quiet", "-m", f"state after cycle {cycle}")
    git(checkout, "push", "--quiet", "origin", BRANCH)
