"""The UbiquityOS plugin manifest: what ``GET /manifest.json`` serves and the repository's ``manifest.json``
(which the kernel reads from an Actions plugin's repository) are one document, valid for the plugin SDK.

The schema is ``@ubiquity-os/plugin-sdk`` 3.12.5's own ``manifestSchema`` exported as JSON Schema
(``tests/data/ubiquity-os/manifest-schema.json``); the kernel decodes every manifest with it and
drops a plugin whose manifest fails ("Manifest is invalid.").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from symbiote_cli import __version__
from symbiote_cli.core.kernel import LISTENERS, MANIFEST_SHORT_NAME, plugin_manifest
from symbiote_cli.settings import Settings
from symbiote_cli.worker import create_app

try:
    from .openapi import data_dir
except ImportError:
    from openapi import data_dir  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = data_dir() / "ubiquity-os" / "manifest-schema.json"
ROOT_MANIFEST = ROOT / "manifest.json"
REGENERATE = (
    'python -c "import json; from symbiote_cli.core.kernel import plugin_manifest; '
    "open('manifest.json', 'w').write(json.dumps(plugin_manifest(), indent=2, ensure_ascii=False) + '\\n')\""
)
# plugin-sdk ``parsePluginIdentifier``: ``owner/repo[:workflowId][@ref]``, the form of a plugin's key.
PLUGIN_IDENTIFIER = re.compile(
    r"([0-9a-zA-Z\-._]+)/([0-9a-zA-Z\-._]+)(?::([0-9a-zA-Z\-._]+))?(?:@([0-9a-zA-Z\-._]+(?:/[0-9a-zA-Z\-._]+)*))?"
)


@pytest.fixture(scope="module")
def validator() -> Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The TypeBox export names no draft; the keywords it uses mean the same in draft 7 and 2020-12.
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest exactly as the worker's route answers it (no auth, no background work)."""
    settings = Settings(_env_file=None, storage_repo=tmp_path_factory.mktemp("fork"))  # type: ignore[call-arg]
    response = TestClient(create_app(settings, gc_interval=None, resume=False)).get("/manifest.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    return body


def _errors(validator: Validator, manifest: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(manifest)]


def test_served_manifest_passes_the_sdk_schema(validator: Validator, served: dict[str, Any]) -> None:
    assert _errors(validator, served) == []
    assert served["short_name"] == MANIFEST_SHORT_NAME
    assert served["ubiquity:listeners"] == list(LISTENERS)


def test_repository_manifest_is_what_the_worker_serves(validator: Validator, served: dict[str, Any]) -> None:
    committed = json.loads(ROOT_MANIFEST.read_text(encoding="utf-8"))
    assert committed == served, f"manifest.json is stale: regenerate it with {REGENERATE}"
    assert _errors(validator, committed) == []


def test_manifest_carries_nothing_that_differs_between_install_and_repository(served: dict[str, Any]) -> None:
    """No version (the committed file cannot follow the installed package); no homepage_url (in a
    repository's manifest it sends the kernel to that worker instead of the workflow)."""
    assert "version" not in served
    assert __version__ not in json.dumps(served)
    assert "homepage_url" not in served


def test_short_name_is_a_plugin_identity() -> None:
    """``owner/repo@ref``, as the SDK's deploy action writes it and ``parsePluginIdentifier`` reads it."""
    match = PLUGIN_IDENTIFIER.fullmatch(MANIFEST_SHORT_NAME)
    assert match is not None
    owner, repo, workflow, ref = match.groups()
    assert (owner, repo, workflow, ref) == ("ubiquity-os", "symbiote", None, "main")


def test_schema_is_not_vacuous(validator: Validator) -> None:
    """The same check refuses the manifest the worker used to serve (no short_name) and other breakage."""
    without_short_name = {k: v for k, v in plugin_manifest().items() if k != "short_name"}
    assert _errors(validator, without_short_name) == ["(root): 'short_name' is a required property"]
    assert _errors(validator, plugin_manifest(short_name=""))
    bad_listener = {**plugin_manifest(), "ubiquity:listeners": ["issues.exploded"]}
    assert _errors(validator, bad_listener)
    bad_command = {**plugin_manifest(), "commands": {"symbiote": {"description": "x"}}}
    assert _errors(validator, bad_command) == ["commands/symbiote: 'ubiquity:example' is a required property"]


def test_homepage_url_for_a_deployed_worker_is_still_valid(validator: Validator) -> None:
    manifest = plugin_manifest(short_name="octo/symbiote@main", homepage_url="https://symbiote.example.dev")
    assert _errors(validator, manifest) == []
    assert manifest["homepage_url"] == "https://symbiote.example.dev"
