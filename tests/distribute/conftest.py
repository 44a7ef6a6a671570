"""Runs the programs of `programs.py` in fresh interpreters, once per session."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


def program_env(backend, **extra):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), **extra)
    env.pop("TF_CONFIG", None)
    return env


def start(mode, out, env):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.distribute.programs", mode, str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(processes, mode, timeout=TIMEOUT_S):
    """Waits for `processes`; if one fails or hangs, stops the others and fails with its output."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            try:
                output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                pytest.fail(f"{mode} ran past {timeout} s:\n{output[-3000:]}")
            if process.returncode != 0:
                pytest.fail(f"{mode} exited with {process.returncode}:\n{output[-3000:]}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="session")
def mirrored_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored")
    finish([start("mirrored", out, program_env("tensorflow"))], "mirrored")
    return out


@pytest.fixture(scope="session")
def multi_worker_runs(mirrored_runs):
    """Two workers on the loopback address, starting from the single-device run's weights."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = program_env("tensorflow")
        env["TF_CONFIG"] = config
        workers.append(start("multi_worker", mirrored_runs, env))
    finish(workers, "multi_worker")
    return mirrored_runs


@pytest.fixture(scope="session")
def jax_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax")
    env = program_env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    finish([start("jax", out, env)], "jax")
    return out
