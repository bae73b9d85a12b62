"""The composite action (action.yml) and the main workflow's poll step, run the way the runner runs them.

A small stand-in for the Actions runner executes each step: ``uses:`` steps that only prepare the
machine are skipped (``actions/setup-python`` reports the current interpreter as its ``python-path``),
``run:`` steps go to ``bash --noprofile --norc -eo pipefail FILE`` with the step's ``env:`` evaluated
from the ``inputs``/``github``/``steps``/``secrets`` contexts, per-step ``GITHUB_OUTPUT``,
``GITHUB_STEP_SUMMARY``, ``GITHUB_ENV`` and ``GITHUB_PATH`` files, ``GITHUB_ACTIONS=true``,
``RUNNER_TEMP`` a temporary directory and ``GITHUB_ACTION_PATH`` the repository root. Only the
expression forms the files actually use are understood (a property path, a quoted literal, ``||``);
anything else fails the test, so a new form in the YAML is noticed here first.

No network: the install step's ``pip install "$GITHUB_ACTION_PATH"`` is replaced by a virtualenv
made with ``--system-site-packages`` from the current interpreter, which is then pointed at the
action path and at this interpreter's packages, and gets a ``symbiote`` entry script. GitHub is
the fake on loopback (``GITHUB_API_URL``) and the checkout's ``origin`` a bare repository.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from test_workflows import ACTION, MAIN, ROOT, load, step_named, steps_of, strings

from symbiote_cli.cli import gha

CLI = [sys.executable, "-m", "symbiote_cli"]
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
PIP_LINE = '"$bin/python" -m pip install --disable-pip-version-check --quiet "$GITHUB_ACTION_PATH"'
VENV_LINE = '"$PYTHON" -m venv "$venv"'
MAIN_INPUTS = ("user", "duration", "session_id", "callback_url")
JOB_TOKEN = "ghs_jobcanary" + "Q" * 23

# ----------------------------------------------------------------------------- expressions

_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


def _lookup(path: str, ctx: dict[str, Any]) -> Any:
    """``a.b-c.d`` in the contexts; a missing property is null (the runner's rule), names case-insensitive."""
    node: Any = ctx
    for part in path.split("."):
        if not _NAME.fullmatch(part):
            raise ValueError(f"unsupported expression part {part!r} in {path!r}")
        if not isinstance(node, dict):
            return None
        matches = [value for key, value in node.items() if key.lower() == part.lower()]
        node = matches[0] if matches else None
    return node


def _operand(text: str, ctx: dict[str, Any]) -> Any:
    text = text.strip()
    literal = _LITERAL.fullmatch(text)
    if literal:
        return literal.group(1).replace("''", "'")
    if "(" in text or "[" in text or "==" in text or "!" in text or "&&" in text or not text:
        raise ValueError(f"unsupported expression: {text!r}")
    return _lookup(text, ctx)


def evaluate(expression: str, ctx: dict[str, Any]) -> Any:
    """The forms used by action.yml and the workflows: a property path, a 'literal', ``a || b``."""
    value: Any = None
    for part in expression.split("||"):
        value = _operand(part, ctx)
        if value not in (None, "", False, 0):
            return value
    return value


def _as_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def interpolate(text: Any, ctx: dict[str, Any]) -> str:
    """Replace every ``${{ ... }}`` in a YAML string value."""
    return _EXPR.sub(lambda m: _as_string(evaluate(m.group(1), ctx)), _as_string(text))


def test_evaluator_understands_exactly_the_forms_in_use() -> None:
    ctx = {
        "inputs": {"github-token": "t", "user": "", "Duration": "90m"},
        "github": {"token": "g", "repository_owner": "octo", "action_path": "/a"},
        "steps": {"poll": {"outputs": {"events-processed": "3"}}},
    }
    assert interpolate("${{ inputs.github-token }}", ctx) == "t"
    assert interpolate("${{ inputs.duration }}", ctx) == "90m"
    assert interpolate("${{ inputs.user || github.repository_owner }}", ctx) == "octo"
    assert interpolate("${{ inputs.session_id || '5h45m' }}", ctx) == "5h45m"
    assert interpolate("x-${{ steps.poll.outputs.events-processed }}-${{ steps.nope.outputs.x }}", ctx) == "x-3-"
    assert interpolate("${{ github.action_path }}/bin", ctx) == "/a/bin"
    for unsupported in ("${{ toJSON(inputs) }}", "${{ inputs.a == 'b' }}", "${{ github['token'] }}", "${{ }}"):
        with pytest.raises(ValueError, match="unsupported"):
            interpolate(unsupported, ctx)
    # Every expression in the files under test (outside `run:`, where there are none) is one this
    # evaluator understands.
    for path in (ACTION, MAIN):
        for _where, text in strings(load(path)):
            interpolate(text, {"inputs": {}, "github": {}, "steps": {}, "secrets": {}})


# ----------------------------------------------------------------------------- runner files


def parse_file_commands(text: str) -> dict[str, str]:
    """``GITHUB_OUTPUT``/``GITHUB_ENV`` syntax: ``name=value`` or ``name<<DELIM`` ... ``DELIM``."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            while lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


# ----------------------------------------------------------------------------- the runner


@dataclass
class StepRun:
    name: str
    returncode: int
    log: str
    outputs: dict[str, str]
    summary: str


@dataclass
class JobRun:
    steps: list[StepRun] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return "".join(step.log for step in self.steps)

    @property
    def summary(self) -> str:
        return "".join(step.summary for step in self.steps)

    @property
    def ok(self) -> bool:
        return all(step.returncode == 0 for step in self.steps)


StepHook = Callable[[str, dict[str, str]], str]


@dataclass
class Runner:
    """Runs a list of steps like the Actions runner (one job, ubuntu, bash)."""

    workdir: Path
    temp: Path
    job_env: dict[str, str]
    ctx: dict[str, Any]
    skip_uses: dict[str, dict[str, str]]  # action (without @ref) -> the outputs it would set
    rewrite: dict[str, StepHook] = field(default_factory=dict)  # step name -> script rewrite
    skip_names: tuple[str, ...] = ()
    action_path: Path | None = None
    signal_step: str = ""  # the step whose process ``on_start`` gets

    def run(
        self, steps: list[dict[str, Any]], *, on_start: Callable[[subprocess.Popen[str]], None] | None = None
    ) -> JobRun:
        job = JobRun()
        self.ctx.setdefault("steps", {})
        env_extra: dict[str, str] = {}
        path_extra: list[str] = []
        for index, step in enumerate(steps):
            name = str(step.get("name") or step.get("id") or index)
            if "if" in step:
                raise NotImplementedError(f"step {name}: `if:` is not supported by this runner")
            step_id = str(step.get("id") or f"__{index}")
            if "uses" in step:
                action = str(step["uses"]).split("@", 1)[0]
                if action not in self.skip_uses:
                    raise NotImplementedError(f"step {name}: cannot run {action}")
                for value in (step.get("with") or {}).values():
                    interpolate(value, self.ctx)  # the inputs must still evaluate
                self.ctx["steps"][step_id] = {"outputs": dict(self.skip_uses[action]), "outcome": "success"}
                continue
            if name in self.skip_names:
                continue
            assert step.get("shell", "bash") == "bash", name
            files = {
                key: self.temp / f"{key.lower()}_{index}"
                for key in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH")
            }
            for path in files.values():
                path.write_text("", encoding="utf-8")
            env = {**self.job_env, **env_extra, **{k: str(v) for k, v in files.items()}}
            if path_extra:
                env["PATH"] = os.pathsep.join([*reversed(path_extra), env["PATH"]])
            if self.action_path is not None:
                env["GITHUB_ACTION_PATH"] = str(self.action_path)
            env["GITHUB_ACTION"] = step_id
            for key, value in (step.get("env") or {}).items():
                env[str(key)] = interpolate(value, self.ctx)
            script = str(step["run"])
            if name in self.rewrite:
                script = self.rewrite[name](script, env)
            script_file = self.temp / f"step_{index}.sh"
            script_file.write_text(script, encoding="utf-8")
            proc = subprocess.Popen(
                [*BASH, str(script_file)],
                cwd=self.workdir,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one log, in order, as the runner shows it
                text=True,
            )
            try:
                if on_start is not None and name == self.signal_step:
                    on_start(proc)
                log, _ = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            outputs = parse_file_commands(files["GITHUB_OUTPUT"].read_text(encoding="utf-8"))
            self.ctx["steps"][step_id] = {
                "outputs": outputs,
                "outcome": "success" if proc.returncode == 0 else "failure",
            }
            env_extra.update(parse_file_commands(files["GITHUB_ENV"].read_text(encoding="utf-8")))
            path_extra += [p for p in files["GITHUB_PATH"].read_text(encoding="utf-8").splitlines() if p]
            job.steps.append(
                StepRun(name, proc.returncode, log, outputs, files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8"))
            )
            if proc.returncode != 0:
                break
        return job


# ----------------------------------------------------------------------------- offline install


def _outer_site_dirs() -> list[str]:
    """Where this interpreter finds Symbiote's dependencies (its venv, when it is one)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def _installer(temp: Path) -> Path:
    """A stand-in for ``pip install PATH``, run by the new venv's python: makes the package at PATH
    and this interpreter's packages importable and writes the ``symbiote`` console script."""
    [script] = [ep for ep in entry_points(group="console_scripts") if ep.name == "symbiote"]
    module, func = script.value.split(":")
    installer = temp / "offline_install.py"
    installer.write_text(
        "import pathlib, sys, sysconfig\n"
        "action_path = pathlib.Path(sys.argv[1]).resolve()\n"
        "assert (action_path / 'pyproject.toml').is_file(), action_path\n"
        "site = pathlib.Path(sysconfig.get_paths()['purelib'])\n"
        f"outer = {_outer_site_dirs()!r}\n"
        "lines = [str(action_path)] + [f'import site; site.addsitedir({d!r})' for d in outer]\n"
        "(site / 'symbiote_offline.pth').write_text('\\n'.join(lines) + '\\n')\n"
        "bindir = pathlib.Path(sys.executable).parent\n"
        "entry = bindir / 'symbiote'\n"
        "entry.write_text(\n"
        f"    f'#!{{sys.executable}}\\nimport sys\\nfrom {module} import {func}\\nsys.exit({func}())\\n'\n"
        ")\n"
        "entry.chmod(0o755)\n",
        encoding="utf-8",
    )
    return installer


def offline_install(script: str, env: dict[str, str]) -> str:
    """The action's install step with only its pip line (and the venv flags) swapped out."""
    assert script.count(PIP_LINE) == 1, "the install step no longer installs with pip from GITHUB_ACTION_PATH"
    assert script.count(VENV_LINE) == 1
    installer = _installer(Path(env["RUNNER_TEMP"]))
    script = script.replace(VENV_LINE, '"$PYTHON" -m venv --system-site-packages --without-pip "$venv"')
    return script.replace(PIP_LINE, f'"$bin/python" "{installer}" "$GITHUB_ACTION_PATH"')


def make_venv(temp: Path) -> Path:
    """The same venv, for the main workflow (whose install step is `python -m pip install .`)."""
    venv = temp / "symbiote-venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), str(_installer(temp)), str(ROOT)], check=True)
    return venv / "bin"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def world(fake_github: FakeGitHub, fork: Path, tmp_path: Path, env_for: Callable[..., dict[str, str]]) -> World:
    fake_github.add_repo("octo/hello")
    fake_github.poll_interval = 1
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    base = env_for(fake_github, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
    base.pop("GH_PAT")  # a job has no GH_PAT of its own: the action and the workflow bring it
    base.update(
        {
            "GITHUB_ACTIONS": "true",
            "CI": "true",
            "GITHUB_WORKSPACE": str(fork),
            "RUNNER_TEMP": str(temp),
            "RUNNER_OS": "Linux",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "4242",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return World(fake_github, fork, temp, base)


@dataclass
class World:
    fake: FakeGitHub
    fork: Path
    temp: Path
    env: dict[str, str]

    def cli(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if k != "GITHUB_ACTIONS"}
        env.update({"GH_PAT": self.fake.token or "", **extra})
        return subprocess.run(
            [*CLI, *args], cwd=self.fork, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def baseline(self) -> None:
        done = self.cli("poll", "--once")
        assert done.returncode == 0, done.stderr

    def action_runner(self, inputs: dict[str, str]) -> Runner:
        doc = load(ACTION)
        ctx: dict[str, Any] = {
            "github": {"token": JOB_TOKEN, "action_path": str(ROOT), "repository_owner": "octo"},
            "steps": {},
        }
        resolved: dict[str, str] = {}
        for name, spec in doc["inputs"].items():
            if name in inputs:
                resolved[name] = inputs[name]
            elif spec.get("required"):
                raise AssertionError(f"required input {name} not given")
            else:
                resolved[name] = interpolate(spec.get("default", ""), ctx)
        unknown = set(inputs) - set(doc["inputs"])
        assert not unknown, f"not inputs of the action: {unknown}"
        ctx["inputs"] = resolved
        return Runner(
            workdir=self.fork,
            temp=self.temp,
            job_env=dict(self.env),
            ctx=ctx,
            skip_uses={"actions/setup-python": {"python-path": sys.executable, "python-version": "3.11.7"}},
            rewrite={"Install Symbiote": offline_install},
            action_path=ROOT,
        )

    def run_action(self, inputs: dict[str, str], **kwargs: Any) -> tuple[JobRun, Runner]:
        runner = self.action_runner(inputs)
        doc = load(ACTION)
        job = runner.run(steps_of(doc), **kwargs)
        job.outputs = {name: interpolate(spec["value"], runner.ctx) for name, spec in doc["outputs"].items()}
        return job, runner


def _assert_masked_first(log: str, secret: str) -> None:
    lines = log.splitlines()
    assert lines, "empty log"
    assert lines[0] == f"::add-mask::{secret}", lines[:3]
    leaks = [line for line in lines if secret in line and line != f"::add-mask::{secret}"]
    assert not leaks, f"the token appears in the log outside ::add-mask:: ({len(leaks)} lines)"


def _summary_rows(markdown: str) -> dict[str, str]:
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 2 and cells[0] not in ("", "---"):
            rows[cells[0]] = cells[1]
    return rows


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


# ----------------------------------------------------------------------------- the composite action


def test_action_runs_end_to_end(world: World, bare_origin: Path) -> None:
    fake = world.fake
    world.baseline()
    fake.issue_opened("octo", "octo/hello", 1, "a bug")
    fake.issue_comment("octo", "octo/hello", 1, "more detail")

    job, _ = world.run_action({"github-token": fake.token or "", "user": "octo", "duration": "4s", "interval": "1"})
    assert job.ok, job.log
    assert [s.name for s in job.steps] == ["Install Symbiote", "Poll"]
    assert (world.temp / "symbiote-venv" / "bin" / "symbiote").exists()

    # Outputs, through the action's `outputs:` expressions.
    out = job.outputs
    assert set(out) == {"events-processed", "actions-taken", "notifications-processed", "session-id"}
    assert out["actions-taken"] == "2"
    assert out["notifications-processed"] == "0"  # the notifications source is off by default
    assert int(out["events-processed"]) >= 2
    assert re.fullmatch(r"[A-Za-z0-9._:-]{8,}", out["session-id"]), out["session-id"]
    acks = [c for c in fake.comments_on("octo/hello", 1) if "<!-- symbiote:" in c.body]
    assert len(acks) == 2

    # The job summary: Markdown with the session, counts and routes.
    summary = job.summary
    assert summary.startswith("### Symbiote poll: octo\n")
    rows = _summary_rows(summary)
    assert rows["Session"] == gha.md_escape(out["session-id"])
    assert rows["User"] == "octo"
    assert rows["Events processed"] == out["events-processed"]
    assert rows["Actions taken"] == "2"
    assert rows["Actions failed"] == "0"
    assert rows["Exit reason"] == "deadline reached"
    assert "#### Events by route" in summary
    assert "| app | 2 |" in summary
    assert "| IssuesEvent | 1 |" in summary
    assert int(rows["Storage commits"]) >= 1

    # Masking: the token is registered before any other line and shows nowhere else.
    poll_log = job.steps[-1].log
    _assert_masked_first(poll_log, fake.token or "")
    assert fake.token not in job.log.replace(f"::add-mask::{fake.token}", "")
    assert JOB_TOKEN not in job.log
    basic = re.search(r"^::add-mask::(\S+)$", poll_log.splitlines()[1])
    assert basic is not None  # the storage token's basic-auth header is masked too, second
    # The state went to the bare origin's storage branch, through the caller's checkout.
    assert "__STORAGE__" in _git(bare_origin, "branch", "--list")
    # The session in storage is the one the output names.
    session = json.loads(world.cli("store", "get", "users/octo/session.json").stdout)
    assert session["id"] == out["session-id"]
    assert session["status"] == "ended"


def test_action_dry_run_takes_no_actions(world: World) -> None:
    fake = world.fake
    world.baseline()
    fake.issue_opened("octo", "octo/hello", 2, "dry")
    job, _ = world.run_action(
        {"github-token": fake.token or "", "user": "octo", "duration": "2s", "interval": "1", "dry-run": "true"}
    )
    assert job.ok, job.log
    assert job.outputs["actions-taken"] == "0"
    assert int(job.outputs["events-processed"]) >= 1
    assert "> **Dry run**" in job.summary
    assert not fake.comments_on("octo/hello", 2)
    _assert_masked_first(job.steps[-1].log, fake.token or "")


def test_action_with_empty_token_fails_clearly(world: World) -> None:
    job, _ = world.run_action({"github-token": "", "user": "octo", "duration": "2s"})
    assert not job.ok
    poll = job.steps[-1]
    assert poll.name == "Poll"
    assert poll.returncode == 1
    assert "::error title=Symbiote::the github-token input is empty" in poll.log
    assert job.outputs == {"events-processed": "", "actions-taken": "", "notifications-processed": "", "session-id": ""}
    assert not world.fake.requests


def test_action_sigint_still_writes_summary_and_outputs(world: World) -> None:
    """Cancellation sends SIGINT: the step's summary and outputs are still written (and it exits 0)."""
    fake = world.fake
    world.baseline()
    runner = world.action_runner({"github-token": fake.token or "", "user": "octo", "interval": "0.3"})
    runner.signal_step = "Poll"
    sent: dict[str, float] = {}

    def interrupt(proc: subprocess.Popen[str]) -> None:
        deadline = time.time() + 60
        while time.time() < deadline and len(fake.requests_to("GET", r"^/users/octo/events$")) < 3:
            time.sleep(0.05)
        fake.issue_opened("octo", "octo/hello", 3, "while running")
        while time.time() < deadline and not fake.comments_on("octo/hello", 3):
            time.sleep(0.05)
        sent["at"] = time.time()
        proc.send_signal(signal.SIGINT)  # `exec` made the symbiote process the step's process

    job = runner.run(steps_of(load(ACTION)), on_start=interrupt)
    elapsed = time.time() - sent["at"]
    assert job.ok, job.log
    assert elapsed < 7.5  # before the runner's SIGTERM
    rows = _summary_rows(job.summary)
    assert rows["Exit reason"] == "stopped by signal"
    assert rows["Actions taken"] == "1"
    poll_outputs = job.steps[-1].outputs
    assert poll_outputs["actions-taken"] == "1"
    assert poll_outputs["session-id"]
    _assert_masked_first(job.steps[-1].log, fake.token or "")


# ----------------------------------------------------------------------------- the main workflow: chaining


def _main_runner(world: World, inputs: dict[str, str], *, workflow_ref: str) -> Runner:
    bindir = make_venv(world.temp)
    doc = load(MAIN)
    declared = doc[True]["workflow_dispatch"]["inputs"]
    resolved = {name: inputs.get(name, spec.get("default", "")) for name, spec in declared.items()}
    ctx: dict[str, Any] = {
        "github": {"token": JOB_TOKEN, "repository_owner": "octo", "repository": "octo/symbiote"},
        "inputs": resolved,
        "secrets": {"GH_PAT": world.fake.token},
        "steps": {},
    }
    env = dict(world.env)
    env.update(
        {
            "PATH": f"{bindir}{os.pathsep}{env['PATH']}",
            "GITHUB_REPOSITORY": "octo/symbiote",
            "GITHUB_WORKFLOW_REF": workflow_ref,
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "SYMBIOTE_INTERVAL": "0.5",
        }
    )
    return Runner(
        workdir=world.fork,
        temp=world.temp,
        job_env=env,
        ctx=ctx,
        skip_uses={"actions/checkout": {}, "actions/setup-python": {"python-path": sys.executable}},
        skip_names=("Install Symbiote from this fork",),  # `pip install .`: make_venv did it offline
    )


def _main_steps() -> list[dict[str, Any]]:
    [job] = load(MAIN)["jobs"].values()
    assert step_named(load(MAIN), "Install Symbiote from this fork")["run"].strip() == "python -m pip install ."
    return list(job["steps"])


@pytest.fixture
def plugin_repo(world: World) -> FakeGitHub:
    fake = world.fake
    fake.add_repo("octo/symbiote")
    fake.add_workflow("octo/symbiote", ".github/workflows/symbiote-main.yml", inputs=list(MAIN_INPUTS))
    fake.add_user("octo", JOB_TOKEN)  # the job's GITHUB_TOKEN (it may write to its own repository)
    return fake


def test_main_chains_the_next_run_with_the_same_inputs(world: World, plugin_repo: FakeGitHub) -> None:
    fake = plugin_repo
    inputs = {"user": "octo", "duration": "2s", "session_id": "", "callback_url": ""}
    runner = _main_runner(
        world, inputs, workflow_ref="octo/symbiote/.github/workflows/symbiote-main.yml@refs/heads/main"
    )
    job = runner.run(_main_steps())
    assert job.ok, job.log
    assert [s.name for s in job.steps] == ["Poll"]
    assert "deadline reached" in job.log
    assert "chained the next run of symbiote-main.yml" in job.log

    [dispatch] = fake.workflow_dispatches
    assert dispatch.repo == "octo/symbiote"
    assert dispatch.workflow == "symbiote-main.yml"
    assert dispatch.ref == "main"
    # The same inputs (empty ones are left to their defaults, which are empty too), and the
    # session id: the successor continues this session (issue 13), under its own run id.
    session_id = job.steps[0].outputs["session-id"]
    assert dispatch.inputs == {**{k: v for k, v in inputs.items() if v}, "session_id": session_id}
    [request] = fake.requests_to("POST", r"^/repos/octo/symbiote/actions/workflows/symbiote-main\.yml/dispatches$")
    assert request.headers["authorization"].endswith(JOB_TOKEN)  # GITHUB_TOKEN chains, not GH_PAT
    assert request.body == {"ref": "main", "inputs": dispatch.inputs}

    # Actions mode: summary and outputs on the chained exit too; the tokens only in ::add-mask::.
    rows = _summary_rows(job.summary)
    assert rows["Exit reason"] == "deadline reached"
    assert job.steps[0].outputs["session-id"]
    log = job.log
    assert fake.token not in log.replace(f"::add-mask::{fake.token}", "")
    assert JOB_TOKEN not in log.replace(f"::add-mask::{JOB_TOKEN}", "")
    first_output = next(i for i, line in enumerate(log.splitlines()) if not line.startswith("::add-mask::"))
    masks = log.splitlines()[:first_output]
    assert f"::add-mask::{fake.token}" in masks
    assert f"::add-mask::{JOB_TOKEN}" in masks


def test_main_chain_carries_session_and_callback_inputs(world: World, plugin_repo: FakeGitHub) -> None:
    """A session id given to the run is handed on as is."""
    fake = plugin_repo
    inputs = {"user": "octo", "duration": "1s", "session_id": "sess-chain-1"}
    runner = _main_runner(
        world, inputs, workflow_ref="octo/symbiote/.github/workflows/symbiote-main.yml@refs/heads/main"
    )
    job = runner.run(_main_steps())
    assert job.ok, job.log
    [dispatch] = fake.workflow_dispatches
    assert dispatch.inputs == {"user": "octo", "duration": "1s", "session_id": "sess-chain-1"}
    assert job.steps[0].outputs["session-id"] == "sess-chain-1"


def test_main_sigint_writes_summary_and_does_not_chain(world: World, plugin_repo: FakeGitHub) -> None:
    fake = plugin_repo
    runner = _main_runner(
        world,
        {"user": "octo", "duration": "10m"},
        workflow_ref="octo/symbiote/.github/workflows/symbiote-main.yml@refs/heads/main",
    )
    runner.signal_step = "Poll"

    def interrupt(proc: subprocess.Popen[str]) -> None:
        deadline = time.time() + 60
        while time.time() < deadline and len(fake.requests_to("GET", r"^/users/octo/events$")) < 2:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)

    job = runner.run(_main_steps(), on_start=interrupt)
    assert job.ok, job.log
    rows = _summary_rows(job.summary)
    assert rows["Exit reason"] == "stopped by signal"
    assert job.steps[0].outputs["events-processed"] == "0"
    assert not fake.workflow_dispatches  # only a run that reached its deadline hands over


def test_chain_outside_actions_is_a_clear_usage_error(world: World, plugin_repo: FakeGitHub) -> None:
    done = world.cli("poll", "--chain", "--duration", "1s", "--interval", "0.5")
    assert done.returncode == 2, done.stderr
    assert "GITHUB_WORKFLOW_REF" in done.stderr
    assert not plugin_repo.workflow_dispatches
