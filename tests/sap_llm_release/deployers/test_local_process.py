"""Blue and green as real local processes of the reference server."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from sap_llm_release.deployers.local_process import LocalProcessDeployer
from sap_llm_release.rehearsal.processes import alive

SERVER_SCRIPT = Path(__file__).resolve().parents[3] / "inference_images" / "sap_llm_server" / "server.py"


def find_free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def deployer(tmp_path):
    deployer = LocalProcessDeployer(
        state_dir=tmp_path,
        ports={"blue": find_free_port(), "green": find_free_port()},
        server_command=[sys.executable, str(SERVER_SCRIPT)],
    )
    try:
        yield deployer
    finally:
        for colour in ("blue", "green"):
            deployer.remove(colour)


def test_deploy_is_idempotent_and_removable(deployer, tmp_path):
    assert deployer.running_version("blue") is None
    assert deployer.deploy("blue", "1.0.0") is True
    ready, seen = deployer.wait_ready("blue", 20)
    assert ready, seen
    assert seen == f"GET http://127.0.0.1:{deployer.ports['blue']}/health/ready -> 200"
    assert httpx.get(deployer.url("blue") + "/health").json() == {"status": "ok", "colour": "blue", "version": "1.0.0"}

    state = json.loads((tmp_path / "blue.json").read_text())
    assert (state["version"], state["port"]) == ("1.0.0", deployer.ports["blue"])
    assert alive(state["pid"])

    assert deployer.deploy("blue", "1.0.0") is False  # same version: nothing changes
    assert json.loads((tmp_path / "blue.json").read_text())["pid"] == state["pid"]
    assert deployer.running_version("blue") == "1.0.0"
    assert deployer.running_version("green") is None

    assert "INFO colour=blue version=1.0.0 model=deterministic-fallback ready" in deployer.logs("blue")
    assert deployer.logs("green") == ""

    assert deployer.remove("blue") is True
    assert not alive(state["pid"])
    assert not (tmp_path / "blue.json").exists()
    assert deployer.running_version("blue") is None
    assert deployer.remove("blue") is False

    started = time.monotonic()
    ready, seen = deployer.wait_ready("blue", 20)
    assert ready is False
    assert seen.startswith("local blue deployment is not running (")
    assert time.monotonic() - started < 1


def test_new_version_replaces_the_process(deployer):
    assert deployer.deploy("green", "2.0.0") is True
    assert deployer.wait_ready("green", 20)[0]
    first_pid = json.loads((deployer.state_dir / "green.json").read_text())["pid"]
    assert deployer.deploy("green", "2.0.1") is True
    assert not alive(first_pid)
    ready, seen = deployer.wait_ready("green", 20)
    assert ready, seen
    assert deployer.running_version("green") == "2.0.1"
    assert httpx.get(deployer.url("green") + "/health").json()["version"] == "2.0.1"
    # logs() shows the running deployment only; the earlier one's log is archived beside it
    assert "INFO colour=green version=2.0.1 model=deterministic-fallback ready" in deployer.logs("green")
    assert "version=2.0.0" not in deployer.logs("green")
    archived = list(deployer.state_dir.glob("green.*.log"))
    assert len(archived) == 1
    assert "INFO colour=green version=2.0.0 model=deterministic-fallback ready" in archived[0].read_text()


def test_process_that_dies_is_not_ready(deployer, tmp_path):
    deployer.server_command = [sys.executable, "-c", "import sys; print('boom: cannot load model'); sys.exit(3)"]
    assert deployer.deploy("green", "2.0.0") is True
    started = time.monotonic()
    ready, seen = deployer.wait_ready("green", 20)
    assert ready is False
    assert "local green deployment is not running" in seen
    assert "boom: cannot load model" in seen
    assert time.monotonic() - started < 5
    assert deployer.running_version("green") is None


def test_stale_state_file_is_not_running(deployer, tmp_path):
    (tmp_path / "blue.json").write_text(json.dumps({"pid": 2**22 + 12345, "version": "0.9.0", "port": 1}))
    assert deployer.running_version("blue") is None
    assert deployer.remove("blue") is False
    assert not (tmp_path / "blue.json").exists()
