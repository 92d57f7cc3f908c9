"""Run examples/node/validate.js against the real service and check its JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from concurrent import futures
from typing import Iterator

import grpc
import pytest

from conftest import REPO_ROOT
from statuses import abort_with_error_info
from token_validator_client._proto.tokenvalidator.v1 import token_validator_pb2_grpc as pb_grpc

NODE_DIR = REPO_ROOT / "examples" / "node"


def run_node(*args: str) -> tuple[int, dict]:
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir(), "run `npm ci` in examples/node first"
    proc = subprocess.run(
        [node, "validate.js", *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=60
    )
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"validate.js printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, out


@pytest.mark.integration
def test_node_valid_access_token(dev):
    code, out = run_node("--addr", dev.grpc_addr, "--token-use", "access", "--scope", "openid", dev.access_token)
    assert code == 0, out
    assert out["valid"] is True
    assert out["reason"] == "REASON_UNSPECIFIED"
    assert out["claims"]["username"] == "dev-user"
    assert out["claims"]["token_use"] == "access"
    assert "openid" in out["claims"]["scopes"]
    assert out["claims"]["payload"]["iss"] == dev.issuer
    assert isinstance(out["claims"]["expires_at"], int)


@pytest.mark.integration
def test_node_grpc_url_and_rejections(dev, expired, bob):
    code, out = run_node("--addr", dev.grpc_url, expired["id_token"])
    assert code == 1
    assert out == {"valid": False, "reason": "REASON_EXPIRED", "message": out["message"]}
    code, out = run_node("--addr", dev.grpc_addr, "--group", "admin", bob["access_token"])
    assert code == 1
    assert out["reason"] == "REASON_MISSING_GROUP"


@pytest.mark.integration
def test_node_user_info_reasons_from_the_detail(dev, revoked, expired):
    """GetUserInfo failures: the reason is the ErrorInfo detail's, decoded by validate.js."""
    code, out = run_node("--addr", dev.grpc_addr, "--user-info", revoked["access_token"])
    assert code == 1, out
    assert out["valid"] is False and out["error"] == "UNAUTHENTICATED"
    assert out["reason"] == "REASON_REVOKED"
    code, out = run_node("--addr", dev.grpc_url, "--user-info", expired["access_token"])
    assert code == 1, out
    assert out["reason"] == "REASON_EXPIRED"
    assert out["metadata"]["pool"] == "dev" and out["metadata"]["kid"]
    code, out = run_node("--addr", dev.grpc_addr, "--user-info", dev.access_token)
    assert code == 0, out
    assert out["valid"] is True and out["user"]["username"] == "dev-user"


@pytest.mark.integration
def test_node_check_revocation(dev):
    """--check-revocation sends check_revocation: true; a revoked token is REASON_REVOKED, exit 1."""
    tokens = dev.mint(username=f"node-{uuid.uuid4().hex[:8]}")
    dev.revoke(tokens["access_token"])
    code, out = run_node("--addr", dev.grpc_addr, "--token-use", "access", tokens["access_token"])
    assert code == 0 and out["valid"] is True, out  # offline, the revoked token still looks valid
    code, out = run_node("--addr", dev.grpc_addr, "--check-revocation", tokens["access_token"])
    assert code == 1, out
    assert out == {"valid": False, "reason": "REASON_REVOKED", "message": out["message"], "revoked": True}
    assert out["message"]
    # The ID token of the same sign-in, once its access token was found revoked.
    code, out = run_node("--addr", dev.grpc_url, "--check-revocation", "--token-use", "id", tokens["id_token"])
    assert (code, out["reason"]) == (1, "REASON_REVOKED"), out
    # A token that was not revoked passes the check.
    code, out = run_node("--addr", dev.grpc_addr, "--check-revocation", dev.mint(username="node-ok")["access_token"])
    assert code == 0 and out["valid"] is True, out
    code, _ = run_node_usage("--user-info", "--check-revocation", tokens["access_token"])
    assert code == 2


def run_node_usage(*args: str) -> tuple[int, str]:
    node = shutil.which("node")
    assert node, "node is not installed"
    proc = subprocess.run([node, "validate.js", *args], cwd=NODE_DIR, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr


@pytest.mark.integration
def test_node_cannot_answer_reasons(dev):
    code, out = run_node("--addr", dev.grpc_addr, "")
    assert code == 3, out
    assert (out["error"], out["reason"]) == ("INVALID_ARGUMENT", "TOKEN_EMPTY")
    code, out = run_node("--addr", dev.grpc_addr, "--user-info", dev.access_token + "A" * 20_000)
    assert code == 3, out
    assert (out["error"], out["reason"]) == ("INVALID_ARGUMENT", "TOKEN_TOO_LARGE")


@pytest.mark.integration
def test_node_service_down(doomed_dev):
    addr = doomed_dev.grpc_addr
    doomed_dev.stop()
    code, out = run_node("--addr", addr, "--timeout", "5", doomed_dev.access_token)
    assert code == 3
    assert out["error"] == "UNAVAILABLE"
    assert out["reason"] is None  # no service answered: no detail


class DetailServicer(pb_grpc.TokenValidatorServicer):
    """GetUserInfo: ``detail`` -> the detail says REVOKED while the message says EXPIRED;
    anything else -> the same message without a detail (an older server)."""

    def GetUserInfo(self, request, context):  # noqa: N802
        message = "REASON_EXPIRED: the token has expired"
        if request.token == "detail":
            abort_with_error_info(
                context, grpc.StatusCode.UNAUTHENTICATED, message, "REASON_REVOKED", {"pool": "eu", "kid": "k1"}
            )
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)


@pytest.fixture()
def detail_addr() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_TokenValidatorServicer_to_server(DetailServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_node_follows_the_detail_not_the_message(detail_addr):
    code, out = run_node("--addr", detail_addr, "--user-info", "detail")
    assert code == 1, out
    assert out["reason"] == "REASON_REVOKED"
    assert out["message"] == "REASON_EXPIRED: the token has expired"
    assert out["metadata"] == {"pool": "eu", "kid": "k1"}
    code, out = run_node("--addr", detail_addr, "--user-info", "no-detail")
    assert code == 1, out
    assert out["reason"] is None and out["metadata"] == {}
