"""The UbiquityOS kernel's form (``POST /`` and ``POST /state/{stateId}``): RSA-signed plugin inputs."""

from __future__ import annotations

from typing import Any

from symbiote_cli.core.errors import InputError, SignatureError
from symbiote_cli.core.kernel import parse_and_verify
from symbiote_cli.flows.kernel_requests import kernel_output
from symbiote_cli.wiring import act_on_kernel_inputs
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import KernelAnswer, KernelOutput


class KernelService:
    """Acts on the kernel's inputs as the plugin SDK's worker does: 200 with the output, or 400."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    def handle(self, data: dict[str, Any], path_state_id: str | None, header: str | None) -> KernelAnswer:
        """Verify the kernel's signed inputs (and ``X-Hub-Signature-256``, if sent), then act once."""
        signature = data.get("signature")
        if header is not None and (not isinstance(signature, str) or header.strip() != f"sha256={signature}"):
            raise ApiError(400, "invalid_signature", "X-Hub-Signature-256 does not match the body's signature")
        if path_state_id is not None and data.get("stateId") != path_state_id:
            raise ApiError(400, "invalid_body", "the body's stateId is not the one in the path")
        settings = self.ctx.settings
        try:
            # Verified here first, so that only the kernel's own requests ever wait for storage.
            parse_and_verify(data, public_key_pem=settings.kernel_public_key, now=self.ctx.clock.now())
            outcome = act_on_kernel_inputs(settings, data, clock=self.ctx.clock, storage=self.ctx.storage)
        except SignatureError:
            raise ApiError(400, "invalid_signature", "Invalid signature") from None
        except InputError as exc:
            raise ApiError(400, "invalid_body", exc.message) from None
        assert outcome.state_id is not None, "the kernel's inputs always carry a state id"
        output = KernelOutput.model_validate(kernel_output(outcome.result))
        return KernelAnswer(state_id=outcome.state_id, output=output)
