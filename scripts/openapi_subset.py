"""Cut GitHub's REST OpenAPI description down to the operations Symbiote uses.

    python scripts/openapi_subset.py FULL OUT

FULL is ``generated/api.github.com.json`` of the npm package ``@octokit/openapi`` (MIT;
plain or gzipped, e.g. ``api.github.com.json.gz``); OUT is written with the paths listed
in ``PATHS`` below (every method of each), every ``#/components/...`` they reference,
transitively, and ``info.x-subset-of`` naming the source version. Nothing else is changed:
schemas, parameters and examples are GitHub's own.

``tests/data/github/openapi-subset.json`` is made this way (tests/data/README.md gives the
exact command and source). When the project starts calling another endpoint, add its path
here and cut again.

Origin: the team's reference copy of this cut (a data-tooling helper kept beside the
reference data, not part of any published package); this is the project's own version of
it, producing byte-identical output for the same PATHS.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

PATHS = [
    "/user",
    "/users/{username}",
    "/rate_limit",
    "/users/{username}/events",
    "/users/{username}/events/public",
    "/users/{username}/received_events",
    "/users/{username}/events/orgs/{org}",
    "/notifications",
    "/notifications/threads/{thread_id}",
    "/repos/{owner}/{repo}",
    "/repos/{owner}/{repo}/installation",
    "/orgs/{org}/installation",
    "/users/{username}/installation",
    "/app",
    "/app/installations",
    "/app/installations/{installation_id}/access_tokens",
    "/installation/repositories",
    "/user/installations",
    "/repos/{owner}/{repo}/issues/{issue_number}",
    "/repos/{owner}/{repo}/issues/{issue_number}/comments",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    "/repos/{owner}/{repo}/issues/{issue_number}/reactions",
    "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
    "/repos/{owner}/{repo}/issues/{issue_number}/labels",
    "/repos/{owner}/{repo}/pulls/{pull_number}",
    "/repos/{owner}/{repo}/compare/{basehead}",
    "/repos/{owner}/{repo}/contents/{path}",
    "/repos/{owner}/{repo}/dispatches",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
    "/repos/{owner}/{repo}/actions/runs/{run_id}",
    "/repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
    "/repos/{owner}/{repo}/actions/permissions",
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}",
]
_PREFIX = "#/components/"


def _component_refs(node: Any, found: set[str]) -> None:
    """Add every ``#/components/...`` ``$ref`` under ``node`` to ``found``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_PREFIX):
            found.add(ref)
        for value in node.values():
            _component_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _component_refs(value, found)


def load(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def cut(spec: dict[str, Any], wanted: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The subset of ``spec`` for the ``wanted`` paths, and the paths it lacks."""
    paths = {p: spec["paths"][p] for p in wanted if p in spec["paths"]}
    missing = [p for p in wanted if p not in spec["paths"]]
    components: dict[str, dict[str, Any]] = {}
    todo: set[str] = set()
    seen: set[str] = set()
    _component_refs(paths, todo)
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        kind, name = ref[len(_PREFIX) :].split("/", 1)
        node = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = node
        _component_refs(node, todo)
    subset = {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-subset-of": "api.github.com.json from @octokit/openapi " + spec["info"]["version"]},
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {kind: dict(sorted(nodes.items())) for kind, nodes in sorted(components.items())},
    }
    return subset, missing


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(__doc__ or "")
        return 2
    subset, missing = cut(load(Path(argv[0])), PATHS)
    # indent=1, ASCII escapes, no trailing newline: the format the subset has always had.
    Path(argv[1]).write_text(json.dumps(subset, indent=1), encoding="utf-8")
    count = sum(len(nodes) for nodes in subset["components"].values())
    sys.stdout.write(f"{len(subset['paths'])} paths, {count} components, missing: {missing}\n")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
