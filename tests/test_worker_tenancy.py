"""The worker as a service for many users (issue 13), against the fake GitHub and a loopback OIDC issuer.

* Tenancy through the GitHub App: two users, two forks, two installations; each session dispatched
  into the user's own fork with an installation token scoped to that one repository; a user without
  the installation is ``not_enrolled`` and nothing is dispatched; the worker holds no user's token.
* Callbacks and request fetches authenticated by GitHub Actions OIDC, the claims bound to the
  session: forged, expired, wrong-audience, wrong-owner, wrong-workflow and wrong-run tokens refused.
* Nothing private in workflow inputs: the auth workflow gets the state id and the worker's URL only.
* Replays change nothing on another replica or after a restart: no second dispatch, no second write.
* Sessions that last: a chained run continues its session (same id, new run id, the run chain).
* Kernel requests stay in the user's scope: the confused deputy of the issue is refused and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from oidc_issuer import OidcIssuer, rsa_key
from pydantic import SecretStr
from test_worker import (
    BEARER,
    SECRET,
    VECTOR,
    WORKER_TOKEN,
    Api,
    World,
    comment_request,
    on_branch,
    origin_tip,
    sign,
)

from symbiote_cli.core import kernel, sessions
from symbiote_cli.core.privacy import generate_key
from symbiote_cli.settings import Settings
from symbiote_cli.worker import create_app

try:
    from .fakegithub import FakeGitHub, new_token
except ImportError:
    from fakegithub import FakeGitHub, new_token  # type: ignore[no-redef]

WORKER_URL = "https://symbiote-worker.example"
APP_ID = 424242
MAIN_INPUTS = ["user", "duration", "session_id", "callback_url"]
AUTH_INPUTS = ["state_id", "worker_url", "stateId", "eventName", "eventPayload", "settings", "authToken",
               "ubiquityKernelToken", "ref", "command", "signature"]  # fmt: skip


def pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class Tenancy:
    world: World
    issuer: OidcIssuer
    api: Api

    @property
    def fake(self) -> FakeGitHub:
        return self.world.fake

    def token(self, user: str, *, workflow: str = "symbiote-main.yml", run_id: str = "1001", **kw: Any) -> str:
        """The OIDC token of a run of ``workflow`` in ``user``'s fork."""
        return self.issuer.mint(
            audience=kw.pop("audience", WORKER_URL),
            owner=kw.pop("owner", user),
            repo=kw.pop("repo", "symbiote"),
            workflow=workflow,
            run_id=run_id,
            **kw,
        )

    def report(self, session: sessions.Session, token: str) -> Any:
        body = {"kind": "session", **session.model_dump(mode="json")}
        return self.api.post("/session/callback", json=body, headers={"Authorization": f"Bearer {token}"})

    def dispatches(self, workflow: str | None = None) -> list[Any]:
        return [d for d in self.fake.workflow_dispatches if workflow is None or d.workflow == workflow]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_", "ACTIONS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)


def make_world(fake: FakeGitHub, fork: Path, origin: Path, **overrides: Any) -> World:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_url=fake.url,
        storage_repo=fork,
        interval=0.05,
        heartbeat_interval=60.0,
        callback_secret=SECRET,
        worker_token=WORKER_TOKEN,
        seconds_between_requests=0,
        seconds_between_writes=0,
        http_retries=0,
        **overrides,
    )
    return World(fake, fork, origin, settings)


@pytest.fixture
def tenancy(
    fake_github: FakeGitHub, fork: Path, bare_origin: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Tenancy]:
    """Actions mode with the GitHub App: alice and bob enrolled (the app installed on their forks),
    carol with a fork but no installation. The worker has no GH_PAT at all."""
    caplog.set_level(logging.DEBUG, logger="symbiote")
    key = rsa_key()
    fake_github.set_app(APP_ID, key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))  # fmt: skip
    for login, installed in (("alice", True), ("bob", True), ("carol", False)):
        fake_github.add_user(login)
        fake_github.add_repo(f"{login}/symbiote", kernel_installed=installed)
        fake_github.add_workflow(f"{login}/symbiote", "symbiote-main.yml", inputs=MAIN_INPUTS)
        fake_github.add_workflow(f"{login}/symbiote", "symbiote-auth.yml", inputs=AUTH_INPUTS)
    with OidcIssuer() as issuer:
        world = make_world(
            fake_github,
            fork,
            bare_origin,
            mode="actions",
            app_id=str(APP_ID),
            app_private_key=SecretStr(pem(key)),
            oidc_issuer=issuer.url,
            worker_url=WORKER_URL,
            storage_key=SecretStr(generate_key()),
        )
        api = world.app()
        yield Tenancy(world, issuer, api)
        for client in reversed(world.clients):
            client.__exit__(None, None, None)
    tokens = [t.token for t in fake_github.access_tokens]
    for text in [*world.seen, caplog.text]:
        for secret in [SECRET, WORKER_TOKEN, *tokens]:
            assert secret not in text, "a secret leaked into a response or a log line"


# --------------------------------------------------------------------------- tenancy through the app


def test_each_user_is_dispatched_in_their_own_fork_with_a_repo_scoped_installation_token(tenancy: Tenancy) -> None:
    api, fake = tenancy.api, tenancy.fake
    alice = api.post("/start/alice", headers=BEARER)
    bob = api.post("/start/bob", headers=BEARER)
    assert (alice.status_code, bob.status_code) == (202, 202), (alice.text, bob.text)
    [to_alice, to_bob] = tenancy.dispatches()
    assert (to_alice.repo, to_alice.workflow) == ("alice/symbiote", "symbiote-main.yml")
    assert (to_bob.repo, to_bob.workflow) == ("bob/symbiote", "symbiote-main.yml")
    assert to_alice.inputs["session_id"] == alice.json()["session_id"]
    assert to_alice.inputs["callback_url"] == f"{WORKER_URL}/session/callback"
    # dispatched by the app's installation, never by a user's token
    assert {to_alice.actor, to_bob.actor} == {"symbiote[bot]"}
    assert [t.repositories for t in fake.access_tokens] == [["symbiote"], ["symbiote"]]
    lookups = fake.requests_to("GET", r"/repos/[^/]+/symbiote/installation$")
    assert len(lookups) == 2
    # sessions are per user, on the worker's own branch
    assert on_branch(tenancy.world.origin, "users/alice/session.json")["id"] == alice.json()["session_id"]
    assert on_branch(tenancy.world.origin, "users/bob/session.json")["id"] == bob.json()["session_id"]


def test_a_user_without_the_installation_is_not_enrolled_and_nothing_is_dispatched(tenancy: Tenancy) -> None:
    api = tenancy.api
    api.get("/health", headers=BEARER)
    tip = origin_tip(tenancy.world.origin)
    for path in ("/start/carol", "/start/dave"):
        refused = api.post(path, headers=BEARER)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == "not_enrolled"
    state = api.signed_post("/state/s-carol", {**comment_request("c1", repo="carol/symbiote"), "user": "carol"})
    assert (state.status_code, state.json()["error"]) == (404, "not_enrolled")
    assert tenancy.dispatches() == []
    assert tenancy.fake.access_tokens == []
    assert origin_tip(tenancy.world.origin) == tip


def test_a_token_scoped_to_one_fork_cannot_dispatch_in_another(tenancy: Tenancy) -> None:
    """The fake enforces GitHub's rule, so the worker's scoping is what keeps users apart."""
    tenancy.api.post("/start/alice", headers=BEARER)
    [token] = tenancy.fake.access_tokens
    import httpx  # noqa: PLC0415

    response = httpx.post(
        f"{tenancy.fake.url}/repos/bob/symbiote/actions/workflows/symbiote-main.yml/dispatches",
        json={"ref": "main", "inputs": {}},
        headers={"Authorization": f"token {token.token}"},
    )
    assert response.status_code in (403, 404)
    assert len(tenancy.dispatches()) == 1


# --------------------------------------------------------------------------- OIDC callbacks


def started_run(tenancy: Tenancy, user: str, run_id: str = "1001") -> sessions.Session:
    answer = tenancy.api.post(f"/start/{user}", headers=BEARER).json()
    now = time.time()
    fresh = sessions.new_session(user, "actions", now, deadline_s=None, session_id=answer["session_id"])
    return sessions.activate(fresh, now, run_id=run_id, run_url=f"https://github.com/{user}/symbiote/actions/runs/1")


def test_a_run_reports_with_its_oidc_token(tenancy: Tenancy) -> None:
    run = started_run(tenancy, "alice")
    response = tenancy.report(run, tenancy.token("alice"))
    assert response.status_code == 200, response.text
    stored = on_branch(tenancy.world.origin, "users/alice/session.json")
    assert (stored["status"], stored["run_id"], stored["runs"]) == ("active", "1001", ["1001"])
    # the keys were fetched through discovery once and then cached
    beat = sessions.heartbeat(run, time.time() + 1, counts={"cycles": 2})
    assert tenancy.report(beat, tenancy.token("alice")).status_code == 200
    assert tenancy.issuer.requests.count("/.well-known/openid-configuration") == 1


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("forged", 401, "bad_token"),
        ("unknown_kid", 401, "bad_token"),
        ("expired", 401, "expired_token"),
        ("wrong_audience", 401, "wrong_audience"),
        ("wrong_issuer", 401, "wrong_issuer"),
        ("wrong_owner", 403, "wrong_owner"),
        ("wrong_repository", 403, "wrong_repository"),
        ("wrong_workflow", 403, "wrong_workflow"),
        ("wrong_run", 403, "wrong_run"),
        ("hs256", 401, "bad_token"),
    ],
)
def test_bad_oidc_tokens_are_refused_and_write_nothing(tenancy: Tenancy, case: str, status: int, code: str) -> None:
    run = started_run(tenancy, "alice")
    issuer = tenancy.issuer
    claims = issuer.claims(audience=WORKER_URL, owner="alice", repo="symbiote", run_id="1001")
    if case == "forged":
        token = issuer.sign(claims, key=rsa_key())
    elif case == "unknown_kid":
        token = issuer.sign(claims, key=rsa_key(), kid="another-key")
    elif case == "expired":
        token = issuer.sign({**claims, "iat": claims["iat"] - 3600, "nbf": claims["iat"] - 3600,
                             "exp": claims["iat"] - 600})  # fmt: skip
    elif case == "wrong_audience":
        token = issuer.sign({**claims, "aud": "https://another-worker.example"})
    elif case == "wrong_issuer":
        token = issuer.sign({**claims, "iss": "https://token.actions.githubusercontent.com"})
    elif case == "wrong_owner":
        # bob's genuine run token, reporting alice's session
        token = tenancy.token("bob")
    elif case == "wrong_repository":
        token = tenancy.token("alice", repo="another-fork")
    elif case == "wrong_workflow":
        token = tenancy.token("alice", workflow="release.yml")
    elif case == "wrong_run":
        token = tenancy.token("alice", run_id="666")
    else:
        import jwt  # noqa: PLC0415

        token = jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes!!", algorithm="HS256")
    tip = origin_tip(tenancy.world.origin)
    response = tenancy.report(run, token)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert origin_tip(tenancy.world.origin) == tip


def test_a_runs_token_wins_over_a_signature_made_with_another_secret(tenancy: Tenancy) -> None:
    """A fork may hold a callback secret of its own: its OIDC token is what proves the run."""
    run = started_run(tenancy, "alice")
    body = json.dumps({"kind": "session", **run.model_dump(mode="json")}).encode()
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {tenancy.token('alice')}",
        **sign(body, path="/session/callback", secret="the-forks-own-secret"),
    }
    response = tenancy.api.post("/session/callback", content=body, headers=headers)
    assert response.status_code == 200, response.text


def test_an_oidc_token_reaches_only_what_a_run_calls(tenancy: Tenancy) -> None:
    token = {"Authorization": f"Bearer {tenancy.token('alice')}"}
    for method, path in (("POST", "/start/alice"), ("GET", "/session/alice/status"), ("GET", "/storage/events/alice"),
                         ("POST", "/registry/refresh"), ("GET", "/state/x")):  # fmt: skip
        response = tenancy.api.request(method, path, headers=token)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "operator_only"
    assert tenancy.dispatches() == []


def test_an_http_issuer_is_accepted_on_loopback_only(tenancy: Tenancy) -> None:
    settings = tenancy.world.make_settings(oidc_issuer="http://issuer.example")
    with pytest.raises(Exception, match="loopback"):
        create_app(settings, gc_interval=None, resume=False)


# --------------------------------------------------------------------------- nothing private in inputs


def test_the_auth_workflow_gets_the_state_id_and_fetches_its_request_with_its_token(tenancy: Tenancy) -> None:
    api = tenancy.api
    request = {**comment_request("secret-body", repo="alice/private-thing"), "user": "alice"}  # not flagged private
    response = api.signed_post("/state/s-1", request)
    assert response.status_code == 202, response.text
    [dispatch] = tenancy.dispatches("symbiote-auth.yml")
    assert dispatch.repo == "alice/symbiote"
    assert dispatch.inputs == {"state_id": "s-1", "worker_url": WORKER_URL}
    raw = json.dumps(on_branch(tenancy.world.origin, "requests/s-1.json"))
    assert "secret-body" not in raw  # sealed on the worker's branch too (SYMBIOTE_STORAGE_KEY)
    auth_token = tenancy.token("alice", workflow="symbiote-auth.yml", run_id="2001")
    fetched = api.get("/state/s-1/request", headers={"Authorization": f"Bearer {auth_token}"})
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["request"]["body"] == "hello secret-body"
    for token, code in (
        (tenancy.token("bob", workflow="symbiote-auth.yml"), "wrong_owner"),
        (tenancy.token("alice", workflow="symbiote-main.yml"), "wrong_workflow"),
    ):
        refused = api.get("/state/s-1/request", headers={"Authorization": f"Bearer {token}"})
        assert (refused.status_code, refused.json()["error"]) == (403, code)
    # the run's result, with the same token: kept once in the worker's outbox
    result = {"kind": "state_result", "state_id": "s-1", "user": "alice", "status": "done",
              "result": {"status": "done"}, "finished_at": time.time()}  # fmt: skip
    headers = {"Authorization": f"Bearer {auth_token}"}
    assert api.post("/session/callback", json=result, headers=headers).status_code == 200
    assert on_branch(tenancy.world.origin, "outbox/s-1.json")["status"] == "done"
    tip = origin_tip(tenancy.world.origin)
    assert api.post("/session/callback", json={**result, "status": "failed"}, headers=headers).status_code == 404
    assert origin_tip(tenancy.world.origin) == tip
    # another user's id never shows alice's state: the state id is hers
    other = api.signed_post("/state/s-1", {**comment_request("x", repo="bob/demo"), "user": "bob"})
    assert (other.status_code, other.json()["error"]) == (409, "state_conflict")


# --------------------------------------------------------------------------- replays: idempotent by id


def second_replica(tenancy: Tenancy) -> Api:
    """Another worker process on another clone of the same state repository."""
    return tenancy.world.app(storage=tenancy.world.storage())


def test_replayed_start_and_state_requests_dispatch_nothing_more_on_another_replica(tenancy: Tenancy) -> None:
    first = tenancy.api
    start_headers = sign(b"", path="/start/alice")
    body = json.dumps({**comment_request("r1"), "user": "alice"}).encode()
    state_headers = {"Content-Type": "application/json", **sign(body, path="/state/s-r")}
    started = first.post("/start/alice", headers=start_headers)
    queued = first.post("/state/s-r", content=body, headers=state_headers)
    assert (started.status_code, queued.status_code) == (202, 202), (started.text, queued.text)
    assert len(tenancy.dispatches()) == 2
    tip = origin_tip(tenancy.world.origin)
    for replica in (second_replica(tenancy), second_replica(tenancy)):
        again = replica.post("/start/alice", headers=start_headers)
        assert again.status_code == 202, again.text
        assert (again.json()["session_id"], again.json()["existing"]) == (started.json()["session_id"], True)
        replayed = replica.post("/state/s-r", content=body, headers=state_headers)
        assert replayed.status_code in (200, 202), replayed.text
        assert replayed.json()["status"] == "dispatched"
    assert len(tenancy.dispatches()) == 2
    assert origin_tip(tenancy.world.origin) == tip


def test_a_replayed_session_report_changes_nothing(tenancy: Tenancy) -> None:
    run = started_run(tenancy, "alice")
    body = json.dumps({"kind": "session", **run.model_dump(mode="json")}).encode()
    headers = {"Content-Type": "application/json", **sign(body, path="/session/callback")}
    assert tenancy.api.post("/session/callback", content=body, headers=headers).status_code == 200
    tip = origin_tip(tenancy.world.origin)
    replica = second_replica(tenancy)
    time.sleep(1.1)  # a later replay: the report still stands at the time its run stamped it
    assert replica.post("/session/callback", content=body, headers=headers).status_code == 200
    assert tenancy.api.post("/session/callback", content=body, headers=headers).status_code == 200
    assert origin_tip(tenancy.world.origin) == tip


# --------------------------------------------------------------------------- sessions that last


def test_a_chained_run_continues_its_session(tenancy: Tenancy) -> None:
    """The issue: the successor reused the session id and was answered 409, then exited 0."""
    run = started_run(tenancy, "alice", run_id="1001")
    assert tenancy.report(run, tenancy.token("alice", run_id="1001")).status_code == 200
    now = time.time()
    deadline = run.model_copy(update={"deadline_at": now - 1})
    handed = sessions.end(deadline, now, counts={"cycles": 300})
    ended = tenancy.report(handed, tenancy.token("alice", run_id="1001"))
    assert ended.status_code == 200, ended.text
    # the chained successor: same session id, a new run id
    successor = run.model_copy(update={"run_id": "2002", "run_url": "https://github.com/alice/symbiote/actions/runs/2"})
    answer = tenancy.report(successor, tenancy.token("alice", run_id="2002"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["live"] is True
    stored = on_branch(tenancy.world.origin, "users/alice/session.json")
    assert (stored["id"], stored["status"], stored["run_id"]) == (run.id, "active", "2002")
    assert stored["runs"] == ["1001", "2002"]
    assert stored["counts"]["cycles"] == 300
    # the predecessor cannot come back once its successor runs
    late = tenancy.report(sessions.heartbeat(run, time.time()), tenancy.token("alice", run_id="1001"))
    assert (late.status_code, late.json()["error"]) == (409, "other_run")


def test_a_session_ended_before_its_deadline_is_not_continued(tenancy: Tenancy) -> None:
    run = started_run(tenancy, "alice", run_id="1001")
    tenancy.report(run, tenancy.token("alice", run_id="1001"))
    stopped = sessions.end(run.model_copy(update={"deadline_at": time.time() + 3600}), time.time())
    assert tenancy.report(stopped, tenancy.token("alice", run_id="1001")).status_code == 200
    # The worker's copy has no deadline: what keeps a cancelled run from coming back is the fork's
    # own record (poll's claim); here the successor of a handed-over session is accepted, a
    # superseded one never.
    stored = on_branch(tenancy.world.origin, "users/alice/session.json")
    assert stored["status"] == "ended"


# --------------------------------------------------------------------------- kernel requests in scope


def kernel_inputs(
    fake: FakeGitHub, *, sender: str, repo: str, ref: str, state_id: str | None = None, number: int = 7
) -> dict[str, str]:
    """The kernel's worker-form inputs for ``sender``'s comment on ``repo#number``, signed with the
    vector's key (the tests' kernel)."""
    event = fake.issue_comment(sender, repo, number, "/symbiote hello")
    payload = {
        "action": "created",
        "issue": event["payload"]["issue"],
        "comment": event["payload"]["comment"],
        "repository": fake.repository_json(fake.repos[repo.lower()]),
        "sender": fake.simple_user(sender),
    }
    inputs = {
        "stateId": state_id or secrets.token_hex(8),
        "eventName": "issue_comment.created",
        "eventPayload": kernel.encode_output(payload),
        "settings": "{}",
        "authToken": "ghs_" + secrets.token_hex(18),
        "ref": ref,
        "command": "null",
    }
    inputs["signature"] = kernel.sign_inputs(inputs, VECTOR_KEYS["private_key_pem"])
    return inputs


VECTOR_KEYS: dict[str, Any] = json.loads(VECTOR.read_text(encoding="utf-8"))
LOCAL_URL = "https://alices-worker.example"


@pytest.fixture
def local(fake_github: FakeGitHub, fork: Path, bare_origin: Path) -> Iterator[tuple[World, Api]]:
    """Local mode: alice's own worker, with her token, at LOCAL_URL."""
    token = new_token()
    fake_github.add_user("alice", token)
    fake_github.add_user("a-stranger")
    for repo in ("alice/demo", "test-org/test-repo"):
        fake_github.add_repo(repo)
        fake_github.add_issue(repo, 7, "An issue", author="alice")
    world = make_world(
        fake_github, fork, bare_origin, gh_pat=SecretStr(token), kernel_public_key=VECTOR_KEYS["public_key_pem"]
    )
    api = world.app(public_url=LOCAL_URL)
    yield world, api
    for client in reversed(world.clients):
        client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("sender", "repo", "ref", "reason"),
    [
        # the issue's confused deputy: a stranger's event in another org, for another plugin
        ("a-stranger", "test-org/test-repo", "https://other-plugin.example", "sender a-stranger"),
        ("a-stranger", "alice/demo", LOCAL_URL, "sender a-stranger"),
        ("alice", "test-org/test-repo", LOCAL_URL, "repository test-org/test-repo"),
        ("alice", "alice/demo", "https://other-plugin.example", "ref does not name this plugin"),
        ("alice", "alice/demo", "main", "ref does not name this plugin"),
    ],
)
def test_kernel_requests_out_of_the_users_scope_are_refused_and_recorded(
    local: tuple[World, Api], sender: str, repo: str, ref: str, reason: str
) -> None:
    world, api = local
    inputs = kernel_inputs(world.fake, sender=sender, repo=repo, ref=ref)
    before = len(world.fake.comments_on(repo, 7))
    response = api.post("/", json=inputs)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "out_of_scope"
    assert reason in response.json()["message"]
    time.sleep(0.1)
    assert len(world.fake.comments_on(repo, 7)) == before  # nothing done: no "on behalf of" comment
    recorded = on_branch(world.origin, f"outbox/{inputs['stateId']}.json")
    assert recorded["status"] == "skipped"
    assert "out of scope" in recorded["result"]["detail"]
    assert inputs["authToken"] not in response.text


def test_kernel_requests_in_scope_are_acted_on(local: tuple[World, Api]) -> None:
    world, api = local
    inputs = kernel_inputs(world.fake, sender="alice", repo="alice/demo", ref=LOCAL_URL)
    response = api.post("/", json=inputs)
    assert response.status_code == 200, response.text
    assert response.json()["output"]["status"] == "done"


def test_the_user_can_widen_the_scope(local: tuple[World, Api]) -> None:
    world, api = local
    world.close(api)
    settings = world.make_settings(kernel_scope=["test-org/*"], kernel_allowed_senders=["a-stranger"])
    widened = world.app(settings, public_url=LOCAL_URL)
    inputs = kernel_inputs(world.fake, sender="a-stranger", repo="test-org/test-repo", ref=LOCAL_URL)
    response = widened.post("/", json=inputs)
    assert response.status_code == 200, response.text


def test_kernel_requests_in_actions_mode_go_to_the_senders_fork(tenancy: Tenancy) -> None:
    fake = tenancy.fake
    fake.add_repo("alice/demo")
    fake.add_issue("alice/demo", 7, "An issue", author="alice")
    world = tenancy.world
    api = world.app(world.make_settings(kernel_public_key=VECTOR_KEYS["public_key_pem"]))
    inputs = kernel_inputs(fake, sender="alice", repo="alice/demo", ref=WORKER_URL)
    response = api.post("/", json=inputs)
    assert response.status_code == 200, response.text
    assert response.json()["output"]["status"] == "deferred"
    [dispatch] = tenancy.dispatches("symbiote-auth.yml")
    assert dispatch.repo == "alice/symbiote"
    assert dispatch.inputs == {"state_id": inputs["stateId"], "worker_url": WORKER_URL}
    assert inputs["authToken"] not in json.dumps(on_branch(world.origin, f"requests/{inputs['stateId']}.json"))
    token = tenancy.token("alice", workflow="symbiote-auth.yml")
    fetched = api.get(f"/state/{inputs['stateId']}/request", headers={"Authorization": f"Bearer {token}"}).json()
    assert fetched["kind"] == "kernel"
    assert fetched["inputs"]["signature"] == inputs["signature"]
    stranger = kernel_inputs(fake, sender="carol", repo="alice/demo", ref=WORKER_URL)
    assert api.post("/", json=stranger).status_code == 404  # carol is not enrolled
    assert len(tenancy.dispatches("symbiote-auth.yml")) == 1


def test_transactions_take_a_state_id_once_and_gc_drops_unreported_requests() -> None:
    """``claim_request``/``finish_request``/``prune_requests`` on an in-memory view (pure functions)."""
    from test_transactions import View  # noqa: PLC0415

    from symbiote_cli.storage import transactions as tx  # noqa: PLC0415

    record = {"state_id": "s", "user": "alice", "fork": "alice/symbiote", "received_at": 1000.0}
    view = View()
    first = tx.claim_request(view, "s", record)
    assert first == {"requests/s.json": record}
    after = view.applied(first)
    assert tx.claim_request(after, "s", {**record, "received_at": 2000.0}) == {}
    assert tx.claim_request(View({"outbox/s.json": {"status": "done"}}), "s", record) == {}
    assert tx.claim_request(View({"users/bob/inbox/s.json": {"state_id": "s"}}), "s", record) == {}
    done = tx.finish_request(after, "s", {"status": "done"})
    assert done == {"outbox/s.json": {"status": "done"}, "requests/s.json": None}
    finished = after.applied(done)
    assert tx.finish_request(finished, "s", {"status": "failed"}) == {}
    assert tx.prune_requests(after, now=1000.0 + 29 * 86400, retention_days=30) == {}
    assert tx.prune_requests(after, now=1000.0 + 31 * 86400, retention_days=30) == {"requests/s.json": None}


def test_the_fake_scopes_installation_tokens_to_their_repositories(tenancy: Tenancy) -> None:
    """GitHub's rule, kept by the fake: a token made for one repository of an installation reaches
    that repository only, even among the installation's own."""
    import httpx  # noqa: PLC0415

    fake = tenancy.fake
    fake.add_repo("alice/other", kernel_installed=True)
    fake.add_workflow("alice/other", "symbiote-main.yml")
    tenancy.api.post("/start/alice", headers=BEARER)
    [token] = fake.access_tokens
    headers = {"Authorization": f"token {token.token}"}
    assert httpx.get(f"{fake.url}/repos/alice/symbiote", headers=headers).status_code == 200
    other = httpx.post(
        f"{fake.url}/repos/alice/other/actions/workflows/symbiote-main.yml/dispatches",
        json={"ref": "main", "inputs": {}},
        headers=headers,
    )
    assert other.status_code == 404
    assert len(tenancy.dispatches()) == 1
