from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devserver  # noqa: E402
from token_validator_client import TokenValidatorClient  # noqa: E402

REPO_ROOT = devserver.REPO_ROOT


def _start_or_fail() -> devserver.DevServer:
    try:
        return devserver.start()
    except devserver.DevServerError as e:
        # Fail, never skip: the suite must not go green without the service.
        pytest.fail(f"cannot start token-validator dev: {e}", pytrace=False)


@pytest.fixture(scope="session")
def dev() -> Iterator[devserver.DevServer]:
    """One `token-validator dev` process shared by the tests that only read from it."""
    server = _start_or_fail()
    yield server
    server.stop()


@pytest.fixture()
def doomed_dev() -> Iterator[devserver.DevServer]:
    """A `token-validator dev` process of its own, which the test may stop."""
    server = _start_or_fail()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def client(dev: devserver.DevServer) -> Iterator[TokenValidatorClient]:
    c = TokenValidatorClient(dev.grpc_addr, timeout=5.0)
    yield c
    c.close()


@pytest.fixture(scope="session")
def bob(dev: devserver.DevServer) -> dict[str, str]:
    """Tokens of a user in "users" only, with limited scopes and a custom attribute."""
    return dev.mint(
        username="bob",
        groups=["users"],
        scopes=["openid", "email"],
        email="bob@example.com",
        preferred_username="Bobby",
        attributes={"custom:tenant": "acme"},
    )


@pytest.fixture(scope="session")
def expired(dev: devserver.DevServer) -> dict[str, str]:
    return dev.mint(expires_in=-3600)


@pytest.fixture(scope="session")
def revoked(dev: devserver.DevServer) -> dict[str, str]:
    """Tokens of a user whose access token was revoked (POST /dev/revoke): GetUserInfo refuses it."""
    tokens = dev.mint(username="revoked-user", email="revoked@example.com")
    dev.revoke(tokens["access_token"])
    return tokens


def load_flask_example():
    """Import examples/flask-backend/app.py (its folder name is not a package name)."""
    path = REPO_ROOT / "examples" / "flask-backend" / "app.py"
    spec = importlib.util.spec_from_file_location("flask_backend_example", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
