"""The UbiquityOS kernel plugin protocol, byte-compatible with ``@ubiquity-os/plugin-sdk`` 3.12.x.

The kernel forwards requests that need the user's authority to Symbiote (as workflow inputs or as a
worker POST). Nothing may act on such a request before ``parse_and_verify`` has checked the kernel's
RSA signature and, when present, its ``ubiquityKernelToken`` JWT: the request carries an installation
token, so an unverified one would let anybody borrow our authority.

brotli, PyJWT and cryptography are imported inside functions: the CLI must start fast and most
commands never touch the kernel.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from symbiote_cli.core.errors import ConfigError, InputError, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

# The order is part of the signature: the SDK signs JSON.stringify of an object built in this order.
SIGNED_KEYS = (
    "stateId",
    "eventName",
    "eventPayload",
    "settings",
    "authToken",
    "ubiquityKernelToken",
    "ref",
    "command",
)
REQUIRED_KEYS = ("stateId", "eventName", "eventPayload", "settings", "authToken", "ref", "command", "signature")

# plugin-sdk's KERNEL_PUBLIC_KEY: the production kernel's key.
DEFAULT_KERNEL_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAs96DOU+JqM8SyNXOB6u3
uBKIFiyrcST/LZTYN6y7LeJlyCuGPqSDrWCfjU9Ph5PLf9TWiNmeM8DGaOpwEFC7
U3NRxOSglo4plnQ5zRwIHHXvxyK400sQP2oISXymISuBQWjEIqkC9DybQrKwNzf+
I0JHWPqmwMIw26UvVOtXGOOWBqTkk+N2+/9f8eDIJP5QQVwwszc8s1rXOsLMlVIf
wShw7GO4E2jyK8TSJKpyjV8eb1JJMDwFhPiRrtZfQJUtDf2mV/67shQww61BH2Y/
Plnalo58kWIbkqZoq1yJrL5sFb73osM5+vADTXVn79bkvea7W19nSkdMiarYt4Hq
JQIDAQAB
-----END PUBLIC KEY-----
"""

KERNEL_TOKEN_ISSUER = "ubiquity-os-kernel"
KERNEL_TOKEN_AUDIENCE = "ai.ubq.fi"
KERNEL_TOKEN_LEEWAY = 60.0
RETURN_EVENT_TYPE = "return-data-to-ubiquity-os-kernel"
MAX_DECOMPRESSED_BYTES = 10 * 1024 * 1024
MIN_RSA_BITS = 2048
KEY_SETTING = "SYMBIOTE_KERNEL_PUBLIC_KEY"
LISTENERS = ("issue_comment.created", "issues.opened", "pull_request.opened")

_B64_RE = re.compile(r"^[A-Za-z0-9+/]*$")
_SURROGATES_RE = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")


# --- JSON and base64 exactly as JavaScript does them -------------------------------------------


def _js_surrogate(match: re.Match[str]) -> str:
    text = match.group(0)
    if len(text) == 2:  # a valid pair: JavaScript emits the character itself
        return chr(0x10000 + ((ord(text[0]) - 0xD800) << 10) + (ord(text[1]) - 0xDC00))
    return f"\\u{ord(text):04x}"  # lone surrogate: well-formed JSON.stringify escapes it


def _js_json(value: Any) -> str:
    """``JSON.stringify`` of JSON-like data: compact, non-ASCII raw, lone surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SURROGATES_RE.sub(_js_surrogate, text)


def _atob(text: str) -> bytes | None:
    """Decode base64 as the SDK's ``atob`` does (whitespace ignored, padding optional); None if invalid."""
    data = "".join(text.split())
    if len(data) % 4 == 0 and data.endswith("="):
        data = data[:-2] if data.endswith("==") else data[:-1]
    if len(data) % 4 == 1 or not _B64_RE.match(data):
        return None
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


# --- signed string and keys ----------------------------------------------------------------------


def build_signed_string(inputs: Mapping[str, Any]) -> str:
    """The exact text the kernel signs: only the signed keys, in SDK order, each only if present.

    A key that is absent is left out (JavaScript ``undefined``); ``None`` is kept as ``null``, as
    ``JSON.stringify`` does for a JSON body. ``signature``, ``kernelPublicKey`` and extras never count.
    """
    return _js_json({key: inputs[key] for key in SIGNED_KEYS if key in inputs})


def _bad_key() -> ConfigError:
    return ConfigError(f"{KEY_SETTING} is not a usable RSA public key (PEM text, or a path to a PEM file)")


@functools.lru_cache(maxsize=8)
def _public_key_from_text(text: str) -> RSAPublicKey:
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    try:
        if "-----BEGIN" in text:
            key = load_pem_public_key(text.encode("utf-8"))
        else:
            der = _atob(text)
            if not der:
                raise _bad_key()
            key = load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _bad_key() from exc
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise _bad_key()
    return key


def load_public_key(pem_or_path: str | None) -> RSAPublicKey:
    """Load the kernel's key from PEM text (``\\n`` escapes allowed, as env vars carry them), a file
    path, or bare base64 SPKI; None or blank means the production kernel's key."""
    text = (pem_or_path or "").strip().strip("\"'").strip()
    if not text:
        return _public_key_from_text(DEFAULT_KERNEL_PUBLIC_KEY)
    if "-----BEGIN" not in text:
        try:
            path = Path(text).expanduser()
            is_file = path.is_file()
        except (OSError, ValueError):
            is_file = False
        if is_file:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{KEY_SETTING}: cannot read the key file {path}") from exc
    text = text.replace("\\r", "").replace("\\n", "\n").replace("\r", "")
    return _public_key_from_text(text)


def _as_public_key(public_key: RSAPublicKey | str | None) -> RSAPublicKey:
    return public_key if public_key is not None and not isinstance(public_key, str) else load_public_key(public_key)


def _load_private_key(private_key_pem: str) -> RSAPrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    text = private_key_pem.strip().replace("\\n", "\n")
    try:
        key = load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError("the private key is not an unencrypted PEM RSA key") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("the private key is not an RSA key")
    return key


def _rsa_sign(private_key: RSAPrivateKey, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


# --- the outer signature -------------------------------------------------------------------------


def verify_signature(inputs: Mapping[str, Any], public_key: RSAPublicKey | str | None) -> None:
    """Check the kernel's RSASSA-PKCS1-v1_5/SHA-256 signature; raise SignatureError if it does not hold.

    ``public_key`` may be a loaded key, PEM text/path, or None for the production kernel's key.
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    key = _as_public_key(public_key)
    signature = inputs.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise SignatureError("missing signature")
    raw = _atob(signature)
    if raw is None:
        raise SignatureError("signature is not base64")
    try:
        data = build_signed_string(inputs).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SignatureError("kernel signature does not verify") from exc
    try:
        key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("kernel signature does not verify") from exc


def sign_inputs(inputs: Mapping[str, Any], private_key_pem: str) -> str:
    """The base64 signature the kernel would attach to ``inputs`` (for tests and tools)."""
    signed = build_signed_string(inputs).encode("utf-8")
    return base64.b64encode(_rsa_sign(_load_private_key(private_key_pem), signed)).decode("ascii")


# --- the ubiquityKernelToken JWT -----------------------------------------------------------------


def auth_token_sha256(auth_token: str) -> str:
    """base64url (unpadded) of SHA-256 of the installation token, as the kernel binds it in its JWT."""
    return _b64url(hashlib.sha256(auth_token.encode("utf-8")).digest())


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _same(claim: Any, expected: str) -> bool:
    """Constant-time equality of a claim with an expected string (padding ignored)."""
    if not isinstance(claim, str):
        return False
    return hmac.compare_digest(claim.rstrip("=").encode("utf-8"), expected.rstrip("=").encode("utf-8"))


def verify_kernel_token(
    token: str,
    public_key: RSAPublicKey | str | None,
    *,
    state_id: str,
    auth_token: str,
    now: float,
) -> dict[str, Any]:
    """Verify the kernel's RS256 attestation and that it binds this request's state id and token.

    Returns the claims. The clock is ``now`` (not the wall clock) so tests can sit inside the
    token's hour; a leeway of ``KERNEL_TOKEN_LEEWAY`` seconds absorbs clock skew.
    """
    import jwt  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    key = _as_public_key(public_key)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignatureError("kernel token is malformed") from exc
    if header.get("alg") != "RS256":
        raise SignatureError("kernel token is not RS256")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise SignatureError("kernel token has a bad signature") from exc
    except jwt.PyJWTError as exc:
        raise SignatureError("kernel token is malformed") from exc

    if claims.get("iss") != KERNEL_TOKEN_ISSUER:
        raise SignatureError("kernel token has the wrong issuer")
    audience = claims.get("aud")
    if not (audience == KERNEL_TOKEN_AUDIENCE or (isinstance(audience, list) and KERNEL_TOKEN_AUDIENCE in audience)):
        raise SignatureError("kernel token has the wrong audience")
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or iat is None:
        raise SignatureError("kernel token lacks exp or iat")
    if now > exp + KERNEL_TOKEN_LEEWAY:
        raise SignatureError("kernel token expired")
    if iat > now + KERNEL_TOKEN_LEEWAY:
        raise SignatureError("kernel token is not yet valid (issued in the future)")
    nbf = _number(claims.get("nbf"))
    if nbf is not None and nbf > now + KERNEL_TOKEN_LEEWAY:
        raise SignatureError("kernel token is not valid yet")
    if not _same(claims.get("state_id"), state_id):
        raise SignatureError("kernel token state_id mismatch")
    if not _same(claims.get("auth_token_sha256"), auth_token_sha256(auth_token)):
        raise SignatureError("kernel token auth token mismatch")
    return claims


def make_kernel_token(
    private_key_pem: str,
    *,
    state_id: str,
    auth_token: str,
    owner: str,
    repo: str,
    installation_id: int | None,
    now: float,
    ttl: int = 3600,
    jti: str | None = None,
) -> str:
    """Build the kernel's attestation JWT byte for byte as the kernel does (for tests and tools)."""
    iat = int(now // 1)
    header = {"alg": "RS256", "typ": "JWT"}
    payload = {
        "iss": KERNEL_TOKEN_ISSUER,
        "aud": KERNEL_TOKEN_AUDIENCE,
        "iat": iat,
        "exp": iat + max(1, ttl),
        "jti": jti if jti is not None else str(uuid.uuid4()),
        "owner": owner,
        "repo": repo,
        "installation_id": installation_id,
        "auth_token_sha256": auth_token_sha256(auth_token),
        "state_id": state_id,
    }
    signing_input = f"{_b64url(_js_json(header).encode())}.{_b64url(_js_json(payload).encode())}"
    signature = _rsa_sign(_load_private_key(private_key_pem), signing_input.encode("ascii"))
    return f"{signing_input}.{_b64url(signature)}"


# --- payload compression ---------------------------------------------------------------------------


def _brotli_decompress(raw: bytes, cap: int) -> bytes:
    """Decompress a whole Brotli stream, refusing more than ``cap`` bytes of output (bombs)."""
    import brotli  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    decoder = brotli.Decompressor()
    pieces: list[bytes] = []
    total = 0
    try:
        try:
            first = decoder.process(raw, output_buffer_limit=cap + 1)
        except TypeError:  # brotli < 1.2 has no output limit: feed small slices and count instead
            for start in range(0, len(raw), 16):
                piece = decoder.process(raw[start : start + 16])
                total += len(piece)
                if total > cap:
                    raise InputError("kernel payload is too large once decompressed") from None
                pieces.append(piece)
        else:
            pieces.append(first)
            total = len(first)
            while total <= cap and not decoder.is_finished() and not decoder.can_accept_more_data():
                piece = decoder.process(b"", output_buffer_limit=cap + 1 - total)
                if not piece:
                    break
                total += len(piece)
                pieces.append(piece)
    except brotli.error as exc:
        raise InputError("kernel payload is not valid Brotli data") from exc
    if total > cap:
        raise InputError("kernel payload is too large once decompressed")
    if not decoder.is_finished():
        raise InputError("kernel payload is a truncated Brotli stream")
    return b"".join(pieces)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_payload(b64: str, *, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> Any:
    """base64 → Brotli → UTF-8 → JSON, as the SDK's ``decompressString`` + ``JSON.parse``."""
    if not isinstance(b64, str):
        raise InputError("kernel payload must be a base64 string")
    raw = _atob(b64)
    if not raw:
        raise InputError("kernel payload is not base64")
    data = _brotli_decompress(raw, max_bytes)
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError("kernel payload is not UTF-8 JSON") from exc


def encode_output(obj: Any) -> str:
    """JSON → Brotli → base64: how results travel back to the kernel (the SDK's ``compressString``)."""
    import brotli  # noqa: PLC0415 - loaded on first use: route stays light (test_startup)

    try:
        text = _js_json(obj)
    except (TypeError, ValueError) as exc:
        raise InputError("kernel output is not JSON-serialisable") from exc
    return base64.b64encode(brotli.compress(text.encode("utf-8"))).decode("ascii")


def return_dispatch_body(state_id: str, output: Any) -> dict[str, Any]:
    """Body of ``POST /repos/{owner}/{repo}/dispatches`` that hands a result back to the kernel."""
    return {
        "event_type": RETURN_EVENT_TYPE,
        "client_payload": {"state_id": state_id, "output": encode_output(output)},
    }


# --- the verified request ------------------------------------------------------------------------


def _sub(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


class KernelRequest(BaseModel):
    """A kernel request whose signature (and attestation, when sent) has been verified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_id: str
    event_name: str
    payload: dict[str, Any] = Field(repr=False)
    settings: dict[str, Any] = Field(default_factory=dict)
    auth_token: SecretStr
    command: dict[str, Any] | None = None
    ref: str
    kernel_token_claims: dict[str, Any] | None = None

    @property
    def attested(self) -> bool:
        """True when the request carried a verified ``ubiquityKernelToken`` (newer kernels)."""
        return self.kernel_token_claims is not None

    @property
    def is_worker(self) -> bool:
        """True for the worker form (``ref`` is the worker URL), False for the workflow form (a branch)."""
        return self.ref.startswith(("https://", "http://"))

    @property
    def repository(self) -> str | None:
        """``owner/name`` of the repository the event is about."""
        name = _sub(self.payload, "repository").get("full_name")
        return name if isinstance(name, str) and name else None

    @property
    def owner(self) -> str | None:
        repo = self.repository
        return repo.split("/", 1)[0] if repo and "/" in repo else None

    @property
    def issue_number(self) -> int | None:
        """The issue or pull request number, if the event has one."""
        for key in ("issue", "pull_request"):
            number = _sub(self.payload, key).get("number")
            if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                return number
        return None

    @property
    def comment_id(self) -> int | None:
        value = _sub(self.payload, "comment").get("id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def comment_body(self) -> str | None:
        """The comment text for ``issue_comment`` events."""
        body = _sub(self.payload, "comment").get("body")
        return body if isinstance(body, str) else None

    @property
    def sender(self) -> str | None:
        login = _sub(self.payload, "sender").get("login")
        return login if isinstance(login, str) else None

    @property
    def installation_id(self) -> int | None:
        value = _sub(self.payload, "installation").get("id")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def command_name(self) -> str | None:
        name = (self.command or {}).get("name")
        return name if isinstance(name, str) else None


def _json_field(text: str, field: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InputError(f"kernel request field {field} is not JSON") from exc


def parse_and_verify(
    inputs: Mapping[str, Any],
    *,
    public_key_pem: str | None = None,
    now: float | None = None,
) -> KernelRequest:
    """Validate, verify and decode a kernel request (workflow inputs or worker body).

    Order matters: the signature and the attestation are checked before anything is decompressed
    or trusted. An unsigned ``kernelPublicKey`` input is ignored: trusting it would let the sender
    choose the key. Inputs without ``ubiquityKernelToken`` (older kernels) are accepted.
    """
    if not isinstance(inputs, Mapping):
        raise InputError("kernel request must be a JSON object")
    for field in REQUIRED_KEYS:
        if field not in inputs or inputs[field] is None:
            raise InputError(f"kernel request is missing {field}")
        if not isinstance(inputs[field], str):
            raise InputError(f"kernel request field {field} must be a string")
    for field in ("stateId", "eventName", "authToken"):
        if not inputs[field].strip():
            raise InputError(f"kernel request field {field} is empty")
    kernel_token = inputs.get("ubiquityKernelToken")
    if kernel_token is not None and not isinstance(kernel_token, str):
        raise InputError("kernel request field ubiquityKernelToken must be a string")

    key = load_public_key(public_key_pem)
    verify_signature(inputs, key)

    state_id: str = inputs["stateId"]
    auth_token: str = inputs["authToken"]
    claims: dict[str, Any] | None = None
    if kernel_token:
        claims = verify_kernel_token(
            kernel_token,
            key,
            state_id=state_id,
            auth_token=auth_token,
            now=time.time() if now is None else now,
        )

    payload = decode_payload(inputs["eventPayload"])
    if not isinstance(payload, dict):
        raise InputError("kernel request eventPayload must be a JSON object")
    settings = _json_field(inputs["settings"], "settings")
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise InputError("kernel request settings must be a JSON object")
    command = _json_field(inputs["command"], "command")
    if command is not None and not isinstance(command, dict):
        raise InputError("kernel request command must be a JSON object or null")

    return KernelRequest(
        state_id=state_id,
        event_name=inputs["eventName"],
        payload=payload,
        settings=settings,
        auth_token=SecretStr(auth_token),
        command=command,
        ref=inputs["ref"],
        kernel_token_claims=claims,
    )


# --- the manifest --------------------------------------------------------------------------------


# The plugin's identity in the manifest: ``owner/repo@ref``, as ubiquity-os/action-deploy-plugin writes
# it (``{GITHUB_REPOSITORY}@{branch}``). The kernel only requires it: plugin-sdk ``manifestSchema`` makes
# ``short_name`` a required non-empty string, and a manifest without it is "Manifest is invalid.", so the
# kernel knows none of the plugin's listeners and never calls it. Only SDK-based plugins read it back (to
# find their own entry among the configured plugins); Symbiote does not. So it names upstream Symbiote
# on its default branch, one constant: a fork is configured by its own ``owner/repo:symbiote-auth.yml@main``
# key, which the kernel never compares with ``short_name``, and one value can be both served and committed.
MANIFEST_SHORT_NAME = "ubiquity-os/symbiote@main"


def plugin_manifest(*, short_name: str = MANIFEST_SHORT_NAME, homepage_url: str | None = None) -> dict[str, Any]:
    """The manifest served at ``GET /manifest.json`` and committed as the repository's ``manifest.json``
    (the kernel reads an Actions plugin's from its repository at the configured ref).

    Shape per plugin-sdk ``manifestSchema`` (name and short_name required; description, commands with
    ``ubiquity:example``, ``ubiquity:listeners``, skipBotEvents, configuration); extra keys are tolerated.
    No version: the committed file and the served one must be identical whatever the installed version
    (``GET /health`` reports it). ``homepage_url`` stays out of both by default: in a repository's
    manifest it makes the kernel POST to that worker instead of dispatching the workflow
    (ubiquity-os-kernel ``resolvePluginDispatchTarget``).
    """
    manifest: dict[str, Any] = {
        "name": "Symbiote",
        "short_name": short_name,
        "description": (
            "A GitHub agent that acts on your behalf. In repositories served by UbiquityOS, the kernel "
            "forwards requests that need your authority to Symbiote."
        ),
        "commands": {
            "symbiote": {
                "description": "Ask Symbiote to act on this issue or pull request on your behalf.",
                "ubiquity:example": "/symbiote summarize this thread",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "prompt": {"type": "string", "description": "What Symbiote should do."},
                    },
                },
            },
        },
        "ubiquity:listeners": list(LISTENERS),
        "skipBotEvents": True,
        "configuration": {
            "type": "object",
            "default": {},
            "properties": {},
            "additionalProperties": True,
        },
    }
    if homepage_url:
        manifest["homepage_url"] = homepage_url
    return manifest
