"""``symbiote act --inputs-env`` end to end: the UbiquityOS kernel's signed plugin inputs and
Symbiote's own ``state_id`` + ``request`` form, as the auth workflow passes them, against the fake
GitHub and a bare-repo origin.

Kernel requests are made the kernel's way with the throw-away test key of the test vector
(``kernel.sign_inputs``, ``kernel.make_kernel_token``, Brotli+base64 payload), verified with that
key through ``SYMBIOTE_KERNEL_PUBLIC_KEY``. The kernel's ``authToken`` is a real installation token
the fake issued to its app, so returning the result (``repository_dispatch``) is authorised by it
and by nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakegithub import FakeGitHub
from github import Auth, GithubIntegration
from openapi import data_dir

from symbiote_cli.core import kernel
from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.kernel import KernelRequest
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionResult, ActionStatus
from symbiote_cli.flows.act import act_once
from symbiote_cli.flows.inbox import Outcome, outbox_json
from symbiote_cli.flows.kernel_requests import act_on_kernel_request
from symbiote_cli.storage import layout as state
from symbiote_cli.storage import transactions

VECTOR_PATH = data_dir() / "ubiquity-os" / "kernel-signature-vector.json"
VECTOR: dict[str, Any] = json.loads(VECTOR_PATH.read_text(encoding="utf-8"))
KERNEL_PUBLIC = VECTOR["public_key_pem"]
KERNEL_PRIVATE = VECTOR["private_key_pem"]
CLI = [sys.executable, "-m", "symbiote_cli"]
PLUGIN_REPO = "octo/symbiote"  # the fork: where the kernel dispatched the auth workflow
KERNEL_APP_ID = 975031
# Everything the auth workflow passes (symbiote-auth.yml: every declared input, unused ones empty).
OWN_KEYS = ("state_id", "request", "callback_url")
KERNEL_KEYS = (
    "stateId",
    "eventName",
    "eventPayload",
    "settings",
    "authToken",
    "ubiquityKernelToken",
    "ref",
    "command",
    "signature",
)


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def workflow_inputs(**given: str) -> dict[str, str]:
    """The inputs object the auth workflow hands the CLI: every declared input, empty unless given."""
    inputs = dict.fromkeys((*OWN_KEYS, *KERNEL_KEYS), "")
    inputs.update(given)
    return inputs


@dataclass
class Kernel:
    """The UbiquityOS kernel as far as a plugin sees it: an app installed on the plugin's owner,
    its installation token, and its signing key (the vector's test key)."""

    fake: FakeGitHub
    auth_token: str
    installation_id: int

    def payload(self, repo: str, number: int, body: str, sender: str = "octo") -> dict[str, Any]:
        """An ``issue_comment.created`` webhook payload for a real comment on the fake."""
        event = self.fake.issue_comment(sender, repo, number, body)
        record = self.fake.repos[repo.lower()]
        return {
            "action": "created",
            "issue": event["payload"]["issue"],
            "comment": event["payload"]["comment"],
            "repository": self.fake.repository_json(record),
            "sender": self.fake.simple_user(sender),
            "installation": {"id": self.installation_id},
        }

    def request(
        self,
        payload: dict[str, Any],
        *,
        state_id: str | None = None,
        ref: str = "main",
        with_kernel_token: bool = True,
        now: float | None = None,
        private_key: str = KERNEL_PRIVATE,
    ) -> dict[str, str]:
        state = state_id or str(uuid.uuid4())
        owner, name = str(payload["repository"]["full_name"]).split("/", 1)
        inputs: dict[str, str] = {
            "stateId": state,
            "eventName": "issue_comment.created",
            "eventPayload": kernel.encode_output(payload),  # Brotli + base64, the SDK's compressString
            "settings": "{}",
            "authToken": self.auth_token,
        }
        if with_kernel_token:
            inputs["ubiquityKernelToken"] = kernel.make_kernel_token(
                private_key,
                state_id=state,
                auth_token=self.auth_token,
                owner=owner,
                repo=name,
                installation_id=self.installation_id,
                now=time.time() if now is None else now,
            )
        inputs["ref"] = ref
        inputs["command"] = "null"
        inputs["signature"] = kernel.sign_inputs(inputs, private_key)
        return inputs


@pytest.fixture
def kernel_app(fake_github: FakeGitHub) -> Kernel:
    private, public = _rsa_pair()
    fake_github.set_app(KERNEL_APP_ID, public, slug="ubiquity-os")
    fake_github.add_repo(PLUGIN_REPO, kernel_installed=True)
    integration = GithubIntegration(auth=Auth.AppAuth(KERNEL_APP_ID, private), base_url=fake_github.url)
    owner, name = PLUGIN_REPO.split("/")
    installation = integration.get_repo_installation(owner, name)
    token = integration.get_access_token(installation.id).token
    return Kernel(fake_github, token, installation.id)


@dataclass
class Act:
    fake: FakeGitHub
    fork: Path
    env: dict[str, str]
    outputs: list[str]
    start: int = 0

    def __call__(self, inputs: dict[str, Any] | str, **extra: str) -> subprocess.CompletedProcess[str]:
        raw = inputs if isinstance(inputs, str) else json.dumps(inputs)
        done = subprocess.run(
            [*CLI, "act", "--inputs-env", "SYMBIOTE_INPUTS", "--json"],
            cwd=self.fork,
            env={**self.env, "SYMBIOTE_INPUTS": raw, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done


@pytest.fixture
def act(fake_github: FakeGitHub, kernel_app: Kernel, fork: Path, env_for: Callable[..., dict[str, str]]) -> Any:
    fake_github.add_repo("octo/hello")
    env = env_for(
        fake_github,
        SYMBIOTE_KERNEL_PUBLIC_KEY=KERNEL_PUBLIC,
        SYMBIOTE_SECONDS_BETWEEN_WRITES="0",
        SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0",
        GITHUB_REPOSITORY=PLUGIN_REPO,
    )
    runner = Act(fake_github, fork, env, [], start=len(fake_github.requests))
    yield runner
    for text in runner.outputs:
        assert fake_github.token not in text, "the user's token leaked into the output"
        assert kernel_app.auth_token not in text, "the kernel's installation token leaked into the output"


def marked(fake: FakeGitHub, repo: str, number: int) -> list[Any]:
    return [c for c in fake.comments_on(repo, number) if "<!-- symbiote:" in c.body]


def storage_log(origin: Path) -> str:
    done = subprocess.run(
        ["git", "log", "--all", "--format=%s"], cwd=origin, capture_output=True, text=True, check=False
    )
    return done.stdout


def writes(act: Act) -> list[Any]:
    """Writes to GitHub since the test's set-up (minting the kernel's token is set-up)."""
    return [r for r in act.fake.requests[act.start :] if r.method in ("POST", "PATCH", "PUT", "DELETE")]


def result_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- kernel form


def test_signed_kernel_request_comments_once_and_records_the_outbox(
    act: Act, kernel_app: Kernel, bare_origin: Path
) -> None:
    fake = act.fake
    payload = kernel_app.payload("octo/hello", 1, "/symbiote please acknowledge")
    inputs = workflow_inputs(**kernel_app.request(payload))
    state = inputs["stateId"]

    first = act(inputs)
    assert first.returncode == 0, first.stderr
    result = result_of(first)
    assert result["state_id"] == state
    assert result["status"] == "done"
    assert result["kind"] == "comment"
    [ack] = marked(fake, "octo/hello", 1)
    assert ack.author == "octo"  # acted with the user's token, not the kernel's
    assert f"key=kernel-{state}-0" in ack.body
    assert result["url"].endswith(f"#issuecomment-{ack.id}")

    # Run twice (a re-run of the workflow): the outbox answers, nothing is posted again.
    second = act(inputs)
    assert second.returncode == 0, second.stderr
    assert result_of(second)["status"] == "already_done"
    assert len(marked(fake, "octo/hello", 1)) == 1

    outbox = json.loads(
        subprocess.run(
            [*CLI, "store", "get", f"outbox/{state}.json"],
            cwd=act.fork,
            env=act.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert outbox["state_id"] == state
    assert outbox["status"] == "done"
    assert outbox["result"]["repo"] == "octo/hello"
    assert f"kernel: result of state {state}" in storage_log(bare_origin)
    # Not enabled: nothing goes back to the kernel.
    assert not fake.repository_dispatches


@pytest.mark.parametrize("form", ["workflow", "worker", "legacy"])
def test_every_kernel_form_is_accepted(act: Act, kernel_app: Kernel, form: str) -> None:
    payload = kernel_app.payload("octo/hello", 2, "hello from the kernel")
    if form == "workflow":
        inputs = kernel_app.request(payload)
    elif form == "worker":
        inputs = kernel_app.request(payload, ref="https://symbiote.example.workers.dev")
    else:  # an older kernel, without ubiquityKernelToken
        inputs = kernel_app.request(payload, with_kernel_token=False)
    # The worker form names this plugin by the worker's public URL (issue 13: kernel scope).
    done = act(workflow_inputs(**inputs), SYMBIOTE_WORKER_URL="https://symbiote.example.workers.dev")
    assert done.returncode == 0, done.stderr
    assert len(marked(act.fake, "octo/hello", 2)) == 1


@pytest.mark.parametrize(
    ("sender", "repo", "ref", "reason"),
    [
        ("a-stranger", "octo/hello", "main", "sender a-stranger"),
        ("octo", "test-org/elsewhere", "main", "repository test-org/elsewhere"),
        ("octo", "octo/hello", "https://another-plugin.example", "ref does not name this plugin"),
        ("octo", "octo/hello", "someone/else:symbiote-auth.yml@main", "ref does not name this plugin"),
    ],
)
def test_a_request_out_of_the_users_scope_is_refused_and_nothing_is_done(
    act: Act, kernel_app: Kernel, bare_origin: Path, sender: str, repo: str, ref: str, reason: str
) -> None:
    """The confused deputy (issue 13): a genuine kernel request that is not the user's business."""
    act.fake.add_user("a-stranger")
    act.fake.add_repo("test-org/elsewhere")
    payload = kernel_app.payload(repo, 2, "please act", sender=sender)
    done = act(workflow_inputs(**kernel_app.request(payload, ref=ref)))
    assert done.returncode == 2, done.stdout
    assert "out of scope" in done.stderr
    assert reason in done.stderr
    assert marked(act.fake, repo, 2) == []
    assert writes(act) == []


@pytest.mark.parametrize("form", ["legacy_inputs_without_ubiquityKernelToken", "legacy_worker_inputs"])
def test_the_sdk_vector_itself_acts_as_the_auth_workflow_passes_it(act: Act, form: str) -> None:
    """The plugin SDK's own signed request (no kernel token, so no clock to fake), padded with the
    empty defaults of every other input the auth workflow declares, verifies and acts once."""
    fake = act.fake
    decoded = VECTOR["decoded"]["eventPayload"]
    repo, number = decoded["repository"]["full_name"], decoded["issue"]["number"]
    fake.add_repo(repo)
    fake.add_issue(repo, number, decoded["issue"]["title"], author=decoded["sender"]["login"])
    inputs = workflow_inputs(**VECTOR[form])
    assert inputs["ubiquityKernelToken"] == ""
    # alice's comment in test-org, for the plugin at the vector's worker URL: octo lets both in.
    scope = {
        "SYMBIOTE_KERNEL_ALLOWED_SENDERS": "alice",
        "SYMBIOTE_KERNEL_SCOPE": "test-org",
        "SYMBIOTE_WORKER_URL": VECTOR["legacy_worker_inputs"]["ref"],
    }
    for _ in range(2):
        done = act(inputs, **scope)
        assert done.returncode == 0, done.stderr
    [ack] = marked(fake, repo, number)
    assert ack.author == "octo"
    assert result_of(done)["status"] == "already_done"


def _rejected(act: Act, bare_origin: Path, done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not writes(act), "a rejected request wrote to GitHub"
    assert not act.fake.comments_on("octo/hello", 3)[1:], "a rejected request commented"
    assert "result of state" not in storage_log(bare_origin), "a rejected request wrote to storage"


def test_the_vectors_tampered_copy_is_rejected(act: Act, bare_origin: Path) -> None:
    before = len(act.fake.requests)
    done = act(workflow_inputs(**VECTOR["tampered"]["inputs"]))
    _rejected(act, bare_origin, done, "kernel signature does not verify")
    assert len(act.fake.requests) == before  # not even a read: verification comes first


@pytest.mark.parametrize("field", ["eventPayload", "authToken", "stateId", "settings", "ref", "command"])
def test_a_changed_field_is_rejected_and_nothing_is_written(
    act: Act, kernel_app: Kernel, bare_origin: Path, field: str
) -> None:
    payload = kernel_app.payload("octo/hello", 3, "tamper with me")
    inputs = kernel_app.request(payload)
    changed = {
        "eventPayload": kernel.encode_output({**payload, "comment": {**payload["comment"], "body": "other"}}),
        "authToken": kernel_app.auth_token + "x",
        "stateId": str(uuid.uuid4()),
        "settings": '{"a":1}',
        "ref": "develop",
        "command": '{"name":"symbiote","parameters":{}}',
    }[field]
    done = act(workflow_inputs(**{**inputs, field: changed}))
    _rejected(act, bare_origin, done, "kernel signature does not verify")


def test_wrong_key_expired_or_mismatched_kernel_token_are_rejected(
    act: Act, kernel_app: Kernel, bare_origin: Path
) -> None:
    payload = kernel_app.payload("octo/hello", 3, "check the key")
    # Signed by the test key, verified with the production kernel's key (no override): rejected.
    env_default_key = {k: v for k, v in act.env.items() if k != "SYMBIOTE_KERNEL_PUBLIC_KEY"}
    plain = Act(act.fake, act.fork, env_default_key, act.outputs, act.start)
    _rejected(act, bare_origin, plain(workflow_inputs(**kernel_app.request(payload))), "does not verify")
    # A correctly signed request whose kernel token expired two hours ago.
    stale = kernel_app.request(payload, now=time.time() - 7200)
    _rejected(act, bare_origin, act(workflow_inputs(**stale)), "kernel token expired")
    # A kernel token minted for another state id, spliced in and re-signed.
    other = kernel_app.request(payload)
    spliced = {k: v for k, v in kernel_app.request(payload).items() if k != "signature"}
    spliced["ubiquityKernelToken"] = other["ubiquityKernelToken"]
    spliced["signature"] = kernel.sign_inputs(spliced, KERNEL_PRIVATE)
    _rejected(act, bare_origin, act(workflow_inputs(**spliced)), "kernel token state_id mismatch")
    # Signed by some other key altogether.
    intruder, _ = _rsa_pair()
    forged = kernel_app.request(payload, private_key=intruder, with_kernel_token=False)
    _rejected(act, bare_origin, act(workflow_inputs(**forged)), "kernel signature does not verify")
    # An unsigned request is refused as such (and never acts through Symbiote's own form).
    unsigned = workflow_inputs(**{**kernel_app.request(payload), "signature": ""})
    _rejected(act, bare_origin, act(unsigned), "signature is missing")


def test_result_returns_to_the_kernel_when_enabled(act: Act, kernel_app: Kernel) -> None:
    fake = act.fake
    payload = kernel_app.payload("octo/hello", 4, "and tell the kernel")
    inputs = kernel_app.request(payload)
    done = act(workflow_inputs(**inputs), SYMBIOTE_KERNEL_RETURN="true")
    assert done.returncode == 0, done.stderr
    [ack] = marked(fake, "octo/hello", 4)

    [dispatch] = fake.repository_dispatches
    assert dispatch.repo == PLUGIN_REPO
    assert dispatch.event_type == "return-data-to-ubiquity-os-kernel"
    assert dispatch.actor == "ubiquity-os[bot]"  # with the kernel's authToken, not the user's token
    [request] = fake.requests_to("POST", rf"^/repos/{PLUGIN_REPO}/dispatches$")
    assert request.headers["authorization"] == f"token {kernel_app.auth_token}"
    assert set(dispatch.client_payload) == {"state_id", "output"}
    assert dispatch.client_payload["state_id"] == inputs["stateId"]
    output = kernel.decode_payload(dispatch.client_payload["output"])  # Brotli + base64 back to JSON
    assert output == {
        "status": "done",
        "kind": "comment",
        "url": f"https://github.com/octo/hello/issues/4#issuecomment-{ack.id}",
        "detail": "comment posted",
    }
    # The second run answers from the outbox and neither comments nor returns again.
    again = act(workflow_inputs(**inputs), SYMBIOTE_KERNEL_RETURN="true")
    assert result_of(again)["status"] == "already_done"
    assert len(fake.repository_dispatches) == 1
    assert len(marked(fake, "octo/hello", 4)) == 1


def test_private_repo_kernel_request_keeps_the_outbox_redacted(act: Act, kernel_app: Kernel) -> None:
    fake = act.fake
    fake.add_repo("octo/hush", private=True)
    payload = kernel_app.payload("octo/hush", 1, "Secret plans")
    inputs = kernel_app.request(payload)
    done = act(workflow_inputs(**inputs))
    assert done.returncode == 0, done.stderr
    assert len(marked(fake, "octo/hush", 1)) == 1
    stored = subprocess.run(
        [*CLI, "store", "get", f"outbox/{inputs['stateId']}.json"],
        cwd=act.fork,
        env=act.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "octo/hush" not in stored
    assert "Secret plans" not in stored


# ----------------------------------------------------------------------------- Symbiote's own form


def test_own_form_acts_once_per_state_id(act: Act, bare_origin: Path) -> None:
    fake = act.fake
    fake.add_issue("octo/hello", 6, "own form")
    request = {
        "kind": "comment",
        "repo": "octo/hello",
        "issue_number": 6,
        "body": "on behalf of octo",
        "idempotency_key": "own-6",
    }
    inputs = workflow_inputs(state_id="state-own-6", request=json.dumps(request))
    first = act(inputs)
    assert first.returncode == 0, first.stderr
    assert result_of(first)["status"] == "done"
    second = act(inputs)
    assert second.returncode == 0, second.stderr
    assert result_of(second)["status"] == "already_done"
    assert len(marked(fake, "octo/hello", 6)) == 1
    assert "act: result of state state-own-6" in storage_log(bare_origin)


_COMMENT = {"kind": "comment", "repo": "octo/hello", "issue_number": 1, "body": "x", "idempotency_key": "k-1"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{", "is not JSON"),
        ("[]", "JSON object"),
        (json.dumps(workflow_inputs(request='{"kind": "none"}')), "state_id"),
        (json.dumps(workflow_inputs(state_id="s-1")), "request"),
        (json.dumps(workflow_inputs(state_id="s-1", request="{")), "malformed JSON"),
        (json.dumps(workflow_inputs(state_id="s-1", request='{"kind": "comment"}')), "request"),
        (json.dumps(workflow_inputs(state_id="../escape", request=json.dumps(_COMMENT))), "state id"),
    ],
)
def test_own_form_bad_inputs_exit_2(act: Act, bare_origin: Path, raw: str, reason: str) -> None:
    done = act(raw)
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr
    assert not writes(act)
    assert "result of state" not in storage_log(bare_origin)


# --------------------------------------------------------------------------- one result per state id


class MemoryBranch:
    """The storage branch in memory: ``update`` applies a transaction as ``Storage.update`` does."""

    def __init__(self) -> None:
        self.files: dict[str, Any] = {}

    def read_json(self, path: str) -> Any | None:
        value = self.files.get(path)
        return json.loads(json.dumps(value)) if value is not None else None

    def list_paths(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self.files if p.startswith(prefix))

    def update(self, mutate: Callable[[Any], dict[str, Any]], message: str) -> str | None:
        changes = mutate(self)
        for path, value in changes.items():
            if value is None:
                self.files.pop(path, None)
            else:
                self.files[path] = json.loads(json.dumps(value))
        return "sha" if changes else None


class RacingExecutor:
    """Acts, and while it does, another run of the same state id stores its result first."""

    dry_run = False

    def __init__(self, branch: MemoryBranch, state_id: str) -> None:
        self.branch = branch
        self.state_id = state_id

    def execute(self, request: Any, since: str | None = None) -> Any:
        def done(detail: str) -> ActionResult:
            return ActionResult(
                idempotency_key=request.idempotency_key,
                kind=request.kind,
                repo=request.repo,
                status=ActionStatus.DONE,
                detail=detail,
                at=1.0,
            )

        first = outbox_json("octo", Outcome(self.state_id, done("the other run"), None, private=False), None, 1.0)
        self.branch.update(partial(transactions.record_outcome, state_id=self.state_id, record=first), "other run")
        return done("this run")


@pytest.mark.parametrize("flow", ["kernel", "act"])
def test_a_second_outcome_for_the_same_state_id_keeps_the_first(flow: str) -> None:
    """Two runs of one state id racing: the result stored first stays (the kernel bridge overwrote it)."""
    branch = MemoryBranch()
    executor = RacingExecutor(branch, "race-1")
    request = ActionRequest(
        kind=ActionKind.COMMENT, repo="octo/hello", issue_number=1, body="hi", idempotency_key="k-1"
    )
    if flow == "kernel":

        class Planner:
            def plan(self, event: Any, user: str) -> list[ActionRequest]:
                return [request]

        req = KernelRequest(
            state_id="race-1",
            event_name="issues.opened",
            payload={
                "action": "opened",
                "issue": {"number": 1},
                "repository": {"full_name": "octo/hello", "id": 1, "private": False},
                "sender": {"login": "octo", "id": 1},
            },
            auth_token="ghs_unused",  # not a secret, never sent
            ref="main",
        )
        outcome = act_on_kernel_request(
            req,
            user="octo",
            storage=branch,
            executor=executor,
            planner=Planner(),  # type: ignore[arg-type]
            sealer=None,
            clock=FakeClock(2.0),
        )
    else:
        outcome = act_once(
            request,
            executor=executor,
            clock=FakeClock(2.0),
            state_id="race-1",  # type: ignore[arg-type]
            storage=branch,
            owner=lambda: "octo",  # type: ignore[arg-type]
        )
    assert outcome.result.detail == "this run"
    stored = branch.read_json(state.outbox_path("race-1"))
    assert stored["result"]["detail"] == "the other run"
