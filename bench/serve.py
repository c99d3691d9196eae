"""`novic serve` under load: requests per second and p50/p95 latency of single-image requests.

The server: `novic serve` on the quickstart model (results/models/minilm_ft12/decoder.pt, or the
decoder file in NOVIC_BENCH_SERVE_MODEL) in its own process on 127.0.0.1, default limits but a
queue of 64. The load: closed-loop clients (1, then 4 at once), each with one keep-alive
connection, posting one Fashion-MNIST test image (PNG) per request and waiting for the answer;
at most REQUESTS requests or SECONDS seconds per level. The load generator runs on the same
cores as the server. The raw operation: `Classifier.classify` on one image in a thread of this
process (no HTTP, no queue), so the difference is what the server adds.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from novic.serve import multipart_body

MODEL = os.environ.get("NOVIC_BENCH_SERVE_MODEL", "results/models/minilm_ft12/decoder.pt")
CLIENTS = (1, 4)
REQUESTS = 300  # per concurrency level
SECONDS = 20.0  # per concurrency level
IMAGES = 64
LOCK = threading.Lock()


def fashion_pngs(n: int) -> list[bytes]:
    """The first n Fashion-MNIST test images as PNG files."""
    from PIL import Image

    from novic.datasets import FASHION_MNIST_ROOT, read_idx

    pngs = []
    for array in read_idx(Path(FASHION_MNIST_ROOT) / "t10k-images-idx3-ubyte.gz")[:n]:
        out = io.BytesIO()
        Image.fromarray(array).save(out, "PNG")
        pngs.append(out.getvalue())
    return pngs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str, port: int) -> subprocess.Popen[bytes]:
    """`novic serve` in a child process, once its /info answers."""
    cmd = [sys.executable, "-m", "novic.cli", "serve", "--model", model, "--port", str(port),
           "--queue", "64"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"novic serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/info")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("novic serve did not answer within 120 s")


def client(port: int, pngs: list[bytes], until: float, budget: list[int], out: list[Any]) -> None:
    """Post single-image requests on one connection until the budget or the time runs out."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.monotonic() < until:
        with LOCK:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body, kind = multipart_body(files=[("image", f"{i}.png", pngs[i % len(pngs)])])
        start = time.perf_counter()
        conn.request("POST", "/classify", body, {"Content-Type": kind})
        response = conn.getresponse()
        data = response.read()
        ok = response.status == 200 and "predictions" in json.loads(data)["results"][0]
        out.append((time.perf_counter() - start, ok))
        i += 1
    conn.close()


def load(port: int, pngs: list[bytes], clients: int, requests: int = REQUESTS) -> dict[str, Any]:
    """`clients` closed-loop clients sharing a budget of `requests`: throughput and latency."""
    budget, out = [requests], []
    start = time.perf_counter()
    until = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=client, args=(port, pngs[c:] + pngs[:c], until, budget, out))
        for c in range(clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latency = np.array([s for s, _ in out]) * 1000
    return {
        f"c{clients}_requests": len(out),
        f"c{clients}_failed": sum(not ok for _, ok in out),
        f"c{clients}_requests_per_s": round(len(out) / wall, 1),
        f"c{clients}_p50_ms": round(float(np.percentile(latency, 50)), 1),
        f"c{clients}_p95_ms": round(float(np.percentile(latency, 95)), 1),
    }


def direct_ms(model: str, pngs: list[bytes]) -> float:
    """Median ms of Classifier.classify on one image in this process (the raw operation)."""
    from PIL import Image

    from novic.classify import Classifier

    clf = Classifier(model, device="cpu", batch_size=32)
    images = [Image.open(io.BytesIO(p)) for p in pngs[:32]]
    for image in images[:8]:  # warm-up: the first calls of each shape are slow
        clf.classify([image])
    times = []
    for image in images:
        start = time.perf_counter()
        clf.classify([image])
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def run() -> dict[str, Any]:
    if not Path(MODEL).is_file():
        raise FileNotFoundError(
            f"{MODEL}: no quickstart model (make demo builds it; or set NOVIC_BENCH_SERVE_MODEL)"
        )
    pngs = fashion_pngs(IMAGES)
    out: dict[str, Any] = {"model": MODEL, "cpu_cores": os.cpu_count()}
    direct: list[float] = []  # in a thread of its own, as the server's worker calls it (torch
    worker = threading.Thread(target=lambda: direct.append(direct_ms(MODEL, pngs)))
    worker.start()  # in the main thread on 2 busy cores was 4x slower than in another thread)
    worker.join()
    out["direct_classify_p50_ms"] = direct[0]
    port = free_port()
    server = start_server(MODEL, port)
    try:
        load(port, pngs, 1, requests=20)  # warm-up
        for clients in CLIENTS:
            out |= load(port, pngs, clients)
    finally:
        server.terminate()
        server.wait(30)
    return out
