"""Fixtures: one token-validator (dev mode, this folder's token-validator.yaml),
one echoing app, and each proxy started from its example file. Every process
runs on loopback and is stopped at the end, whatever the tests did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness


def pytest_report_header(config):
    return f"token-validator: {os.environ.get('TOKEN_VALIDATOR_BIN', '(TOKEN_VALIDATOR_BIN unset)')}"


@pytest.fixture(scope="session")
def binary() -> str:
    path = os.environ.get("TOKEN_VALIDATOR_BIN") or str(harness.REPO / "target" / "debug" / "token-validator")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not an executable: build it (cargo build) or set TOKEN_VALIDATOR_BIN")
    return path


@pytest.fixture(scope="session")
def app():
    echo = harness.EchoApp()
    yield echo
    echo.close()


@pytest.fixture(scope="session")
def service(binary, tmp_path_factory):
    started = harness.start_service(binary, tmp_path_factory.mktemp("token-validator"))
    yield started
    started.stop()


@pytest.fixture(scope="session", params=sorted(harness.PROXIES))
def proxy(request, service, app, tmp_path_factory):
    kind = harness.PROXIES[request.param]
    running = kind(tmp_path_factory.mktemp(kind.name)).start(service, app)
    yield running
    running.stop()


class Tokens:
    """dev-user (groups admin, users) and bob (users), access tokens."""

    def __init__(self, service: harness.Service) -> None:
        self.dev_user = service.info["access_token"]
        self.bob = service.mint(username="bob", groups=["users"], expires_in=900)["access_token"]


@pytest.fixture(scope="session")
def tokens(service) -> Tokens:
    return Tokens(service)


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path
