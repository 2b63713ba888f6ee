"""Start a policy pack directory the way the Pulumi CLI does, talk to it over the Analyzer gRPC protocol, stop it.

Launch, by the language host's ``RunPlugin`` for ``kind=analyzer``, with cwd = the pack dir:
- Python (``sdk/python/cmd/pulumi-language-python``): ``<python> -u -m pulumi.policy <engine address> <ABS_PACK_DIR>``;
  the interpreter is the pack's ``runtime.options.virtualenv`` (relative to the pack) when set, else
  ``$PULUMI_PYTHON_CMD``, else ours.
- Node.js (``sdk/nodejs/cmd/pulumi-language-nodejs``): ``node <@pulumi/pulumi/cmd/run-policy-pack> <engine address>
  <ABS_PACK_DIR>``, the runner resolved from the pack directory as Node resolves modules.
The pack prints its port on stdout. Shutdown is the engine's: SIGINT to the process tree, SIGKILL after a grace period.
"""

from __future__ import annotations

import atexit
import collections
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import grpc
import structlog
import yaml
from pulumi.runtime.proto import analyzer_pb2_grpc

from ps019.errors import PackError

log = structlog.get_logger(__name__)

# The engine passes its own gRPC address; pulumi.policy parses it and never connects back (research §1.3).
ENGINE_ADDRESS = "127.0.0.1:0"
MAX_MESSAGE = 400 * 1024 * 1024  # the Python pack's own receive limit
SHUTDOWN_GRACE = 5.0  # seconds between SIGINT and SIGKILL, as the engine's ReleaseContext


@dataclass(frozen=True)
class PackProject:
    """The parts of ``PulumiPolicy.yaml`` the engine uses."""

    directory: Path
    runtime: str  # "python" | "nodejs"
    version: str | None
    description: str | None
    virtualenv: str | None
    toolchain: str | None = None


def read_pack_project(pack_dir: str | Path) -> PackProject:
    directory = Path(pack_dir).resolve()
    if not directory.is_dir():
        raise PackError(f"policy pack directory {pack_dir} does not exist")
    project_file = directory / "PulumiPolicy.yaml"
    if not project_file.is_file():
        raise PackError(f"{pack_dir} is not a policy pack: it has no PulumiPolicy.yaml")
    try:
        document = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PackError(f"{project_file} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise PackError(f"{project_file} is not a YAML mapping")
    runtime = document.get("runtime")
    options: dict = {}
    if isinstance(runtime, dict):
        options = runtime.get("options") or {}
        runtime = runtime.get("name")
    if runtime not in ("python", "nodejs"):
        raise PackError(f"{project_file}: runtime is {runtime!r}; the stand-in engine runs python and nodejs packs")
    version = document.get("version")
    return PackProject(directory, runtime, str(version) if version is not None else None,
                       document.get("description"), options.get("virtualenv"), options.get("toolchain"))


NODE_RUNNER = ("@pulumi", "pulumi", "cmd", "run-policy-pack")


def node_runner(project: PackProject) -> Path:
    """``@pulumi/pulumi/cmd/run-policy-pack`` as Node resolves it from the pack: node_modules here or above."""
    for directory in (project.directory, *project.directory.parents):
        candidate = directory.joinpath("node_modules", *NODE_RUNNER)
        if candidate.is_dir() or candidate.with_suffix(".js").is_file():
            return candidate
    raise PackError(f"Node policy pack {project.directory} has no node_modules/@pulumi/pulumi (run `npm install` "
                    "in the pack directory)")


def launch_command(project: PackProject, interpreter: str) -> list[str]:
    """The language host's command line for the pack (the engine's own address comes first, the pack dir last)."""
    if project.runtime == "nodejs":
        return [interpreter, str(node_runner(project)), ENGINE_ADDRESS, str(project.directory)]
    return [interpreter, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, str(project.directory)]


def choose_interpreter(project: PackProject, environ: dict[str, str] | None = None,
                       fallback: str | None = sys.executable) -> str:
    """The executable the language host would run. ``fallback`` (default: ours): the interpreter to use when the pack
    declares a virtualenv that was never created (``pulumi install`` not run). The Pulumi CLI refuses such a pack; pass
    ``fallback=None`` to refuse too. The stand-in's result says when it fell back."""
    environ = os.environ if environ is None else environ
    if project.runtime == "nodejs":
        found = shutil.which(environ.get("PULUMI_NODEJS_CMD") or "node")
        if not found:
            raise PackError(f"Node policy pack {project.directory} needs `node` on PATH")
        return found
    if project.virtualenv:
        venv = Path(project.virtualenv)
        venv = venv if venv.is_absolute() else project.directory / venv
        python = venv / "bin" / "python"
        if python.exists():
            return str(python)
        if fallback:
            return fallback
        raise PackError(f"the pack's virtualenv {venv} has no bin/python: run `pulumi install` in {project.directory} "
                        "(or python -m venv venv && venv/bin/pip install -r requirements.txt there)")
    command = environ.get("PULUMI_PYTHON_CMD")
    if command:
        found = shutil.which(command)
        if not found:
            raise PackError(f"PULUMI_PYTHON_CMD={command} is not an executable on PATH")
        return found
    return sys.executable


_LIVE: "weakref.WeakSet[PackProcess]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:  # no orphans, even if a caller forgot to close a pool
    processes = list(_LIVE)
    for process in processes:
        process.interrupt()
    deadline = time.monotonic() + 1.0
    for process in processes:
        process.reap(deadline)


class PackProcess:
    """One running pack. Not thread-safe: one pass at a time."""

    def __init__(self, project: PackProject, interpreter: str, env: dict[str, str], start_timeout: float,
                 scrub: Callable[[str], str] = lambda s: s) -> None:
        self.project = project
        self.interpreter = interpreter
        self.label = str(project.directory)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.stdout_lines: collections.deque[str] = collections.deque(maxlen=200)
        self.started_at = time.monotonic()
        self.analyzer_info: Any = None  # GetAnalyzerInfo is cached per process, as the engine does
        self.plugin_info: Any = None
        self._port_queue: queue.Queue[str | None] = queue.Queue()
        self._channel: grpc.Channel | None = None
        command = launch_command(project, interpreter)
        self.command = command
        try:
            self._proc = subprocess.Popen(command, cwd=project.directory, env=env, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise PackError(f"cannot start policy pack {self.label} with {interpreter}: {exc.strerror}") from None
        _LIVE.add(self)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        try:
            port = self._wait_for_port(start_timeout, scrub)
            self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)])
            remaining = max(0.5, start_timeout - (time.monotonic() - self.started_at))
            grpc.channel_ready_future(self._channel).result(timeout=remaining)
        except grpc.FutureTimeoutError:
            self.close(grace=0.5)
            raise PackError(f"policy pack {self.label} printed port {port} but did not accept a connection") from None
        except BaseException:
            self.close(grace=0.5)
            raise
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self.start_seconds = time.monotonic() - self.started_at
        log.debug("policy pack started", pack=self.label, pid=self._proc.pid, port=port,
                  seconds=round(self.start_seconds, 3))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        first = True
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if first:
                self._port_queue.put(line)
                first = False
            else:
                self.stdout_lines.append(line)  # the engine shows these as info diagnostics
        if first:
            self._port_queue.put(None)

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.strip():
                self.stderr_tail.append(line)

    def last_stderr(self, scrub: Callable[[str], str]) -> str:
        self._stderr_thread.join(timeout=0.5)
        for line in reversed(self.stderr_tail):
            text = scrub(line.strip())
            if text:
                return text[:300]
        return ""

    def _wait_for_port(self, timeout: float, scrub: Callable[[str], str]) -> int:
        deadline = self.started_at + timeout
        while True:
            try:
                line = self._port_queue.get(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
                break
            except queue.Empty:
                if time.monotonic() >= deadline:
                    self.close(grace=0.5)
                    raise PackError(f"policy pack {self.label} did not print its port within {timeout:g}s") from None
        if line is None:
            try:
                status = self._proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                status = None
            reason = self.last_stderr(scrub) or "no output on stderr"
            self.close(grace=0.5)
            raise PackError(f"policy pack {self.label} exited (status {status}) before printing its port: {reason}")
        try:
            port = int(line.strip())
            if not 0 < port < 65536:
                raise ValueError
            return port
        except ValueError:
            self.close(grace=0.5)
            raise PackError(f"policy pack {self.label} printed {scrub(line)[:80]!r} instead of its port "
                            "(a pack must not write to stdout before serving)") from None

    def call(self, method: str, request: Any, *, timeout: float, what: str = "",
             scrub: Callable[[str], str] = lambda s: s, tolerate_unimplemented: bool = False) -> Any:
        """One RPC, turning every failure into a one-line :class:`PackError`."""
        target = f" for {what}" if what else ""
        try:
            return getattr(self.stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.UNIMPLEMENTED and tolerate_unimplemented:
                return None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise PackError(f"policy pack {self.label} did not answer {method}{target} within {timeout:g}s") \
                    from None
            if not self.alive or code == grpc.StatusCode.UNAVAILABLE:
                try:
                    status = self._proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    status = None
                reason = self.last_stderr(scrub) or (exc.details() if hasattr(exc, "details") else "")
                raise PackError(f"policy pack {self.label} stopped during {method}{target} (status {status}): "
                                f"{scrub(reason or '')[:300]}") from None
            details = (exc.details() if hasattr(exc, "details") else str(exc)) or ""
            first = scrub(details.strip().splitlines()[-1] if details.strip() else str(code))
            raise PackError(f"policy pack {self.label} failed in {method}{target}: {first[:300]}") from None

    def close(self, grace: float = SHUTDOWN_GRACE) -> int | None:
        """SIGINT to the pack's process group, SIGKILL after ``grace`` seconds. Returns the exit status."""
        self.interrupt()
        return self.reap(time.monotonic() + grace)

    def interrupt(self) -> None:
        """First half of :meth:`close` (lets a pool interrupt all its packs at once)."""
        _LIVE.discard(self)
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._proc.poll() is None:
            self._signal(signal.SIGINT)

    def reap(self, deadline: float) -> int | None:
        try:
            self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait()
        self._signal(signal.SIGKILL)  # the leader exited; make sure nothing it started lingers
        return self._proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
