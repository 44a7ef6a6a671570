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
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CONFIG", "XLA_FLAGS")}
    return {**env, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **extra}


def start(mode, out, env, log_name=None):
    """Starts `programs.py MODE OUT`; its output goes to `OUT/<log_name or mode>.log` (a pipe could fill up)."""
    log = out / f"{log_name or mode}.log"
    with open(log, "w") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.distribute.programs", mode, str(out)],
            cwd=ROOT,
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    process.log = log
    return process


def finish(processes, mode, timeout=TIMEOUT_S):
    """Waits for `processes`; if one fails or hangs, stops the others and fails with its output."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{mode} ran past {timeout} s:\n{process.log.read_text()[-3000:]}")
            if process.returncode != 0:
                pytest.fail(f"{mode} exited with {process.returncode}:\n{process.log.read_text()[-3000:]}")
    finally:
        stop(processes)


def stop(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


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
def jax_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax")
    env = program_env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    finish([start("jax", out, env)], "jax")
    return out


def run_workers(mode, out, timeout=TIMEOUT_S):
    """Runs `mode` as the two workers of a cluster on the loopback address."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(start(mode, out, program_env("tensorflow", TF_CONFIG=config), log_name=f"{mode}_worker{index}"))
    finish(workers, mode, timeout)


@pytest.fixture(scope="session")
def multi_worker_runs(mirrored_runs):
    """Two workers starting from the single-device run's weights."""
    run_workers("multi_worker", mirrored_runs)
    return mirrored_runs
