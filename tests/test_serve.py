"""`novic serve` (novic.serve): the JSON API against a server running on 127.0.0.1 with a random
decoder on the tiny CLIP, its limits, and the page in a headless Chromium (skipped without one)."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image
from tiny_decoder import NOUNS, write_tiny_decoder

from novic.classify import Classifier
from novic.cli import main
from novic.serve import Limits, Service, create_app, multipart_body

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parent.parent
PHOTOS = sorted((REPO / "resources" / "sample_images").glob("*.jpg"))
LIMITS = Limits(queue=1, max_items=6, max_request_bytes=600_000, max_image_bytes=300_000,
                max_pixels=1_000_000)  # fmt: skip


@contextmanager
def running(service: Service) -> Iterator[str]:
    """The service's app served by uvicorn on 127.0.0.1 (a free port) in a thread: its URL."""
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post(
    url: str,
    fields: Sequence[tuple[str, str]] = (),
    files: Sequence[tuple[str, str, bytes]] = (),
    json_body: Any = None,
) -> tuple[int, Any, Any]:
    """POST /classify: status, headers and the decoded JSON answer."""
    if json_body is not None:
        body, kind = json.dumps(json_body).encode(), "application/json"
    else:
        body, kind = multipart_body(fields, files)
    request = urllib.request.Request(f"{url}/classify", body, {"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)


def png(size: tuple[int, int], color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_decoder(tmp_path_factory.mktemp("model") / "decoder.pt")


@pytest.fixture(scope="module")
def classifier(checkpoint: Path) -> Classifier:
    return Classifier(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder a server may read files from (--files-root)."""
    folder = tmp_path_factory.mktemp("shared")
    shutil.copy(PHOTOS[0], folder / "photo.jpg")
    return folder


@pytest.fixture(scope="module")
def server(classifier: Classifier, checkpoint: Path, shared: Path) -> Iterator[str]:
    with running(Service(classifier, str(checkpoint), LIMITS, files_root=shared)) as url:
        yield url


def test_images_and_texts_give_what_novic_classify_json_gives(
    server: str, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [("image", p.name, p.read_bytes()) for p in PHOTOS[:2]]
    status, _, got = post(server, [("text", "a cat on a sofa"), ("top_k", "3")], files)
    assert status == 200
    args = ["--model", str(checkpoint), "--json", "--top-k", "3", "--device", "cpu"]
    assert main(["classify", *args, *map(str, PHOTOS[:2]), "--text", "a cat on a sofa"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert got.keys() == want.keys() and got["gencfg"] == want["gencfg"]
    assert [r.get("image", r.get("text")) for r in got["results"]] == [
        PHOTOS[0].name, PHOTOS[1].name, "a cat on a sofa"
    ]  # fmt: skip
    for mine, theirs in zip(got["results"], want["results"], strict=True):
        assert [p["noun"] for p in mine["predictions"]] == [
            p["noun"] for p in theirs["predictions"]
        ]
        for p, q in zip(mine["predictions"], theirs["predictions"], strict=True):
            assert p["prob"] == pytest.approx(q["prob"], rel=1e-4, abs=1e-6)
    # texts alone, as JSON, with a class list and a beam width
    guide = {"texts": ["a dog"], "gencfg": "beam_k2_vnone_gp_t1_a0", "guide": "Cat, dog"}
    status, _, got = post(server, json_body=guide)
    assert status == 200 and got["gencfg"] == "beam_k2_vnone_gp_t1_a0"
    assert sorted(p["noun"] for p in got["results"][0]["predictions"]) == ["cat", "dog"]
    status, _, got = post(server, [("text", "a dog"), ("gencfg", "greedy_k1_vnone_gn_t1_a0")])
    assert status == 200 and len(got["results"][0]["predictions"]) == 1


def test_a_bad_image_gets_its_own_error_and_the_others_are_classified(server: str) -> None:
    files = [
        ("image", "good.jpg", PHOTOS[0].read_bytes()),
        ("image", "broken.jpg", b"\xff\xd8 this is not a jpeg"),
        ("image", "huge.png", png((1200, 1000))),  # 1.2 million pixels, over max_pixels
        ("image", "heavy.bin", b"\0" * 300_001),  # over max_image_bytes
        ("image", "small.png", png((20, 30), "blue")),
    ]
    status, _, got = post(server, files=files)
    assert status == 200
    results = got["results"]
    assert ["error" not in r for r in results] == [True, False, False, False, True]
    assert "broken.jpg: cannot read image" in results[1]["error"]
    assert "1200x1000 pixels" in results[2]["error"] and "--max-pixels" in results[2]["error"]
    assert "heavy.bin" in results[3]["error"] and "--max-image-mb" in results[3]["error"]
    assert all(p["noun"] in NOUNS for p in results[4]["predictions"])


def test_an_oversize_upload_is_refused_with_413(server: str) -> None:
    files = [("image", f"{i}.bin", b"\0" * 250_000) for i in range(3)]  # 750 kB > 600 kB
    status, _, got = post(server, files=files)
    assert status == 413 and "--max-request-mb" in got["error"]


@pytest.mark.parametrize(
    ("fields", "json_body", "message"),
    [
        ([("text", "x"), ("gencfg", "beam_k10")], None, "gencfg: generation config 'beam_k10'"),
        ([("text", "x"), ("gencfg", "beam_k51_vnone_gp_t1_a0")], None, "--max-beam"),
        ([("text", "x"), ("guide", "cat, unicorn")], None, "not target nouns of the model"),
        ([("text", "x"), ("top_k", "0")], None, "top_k must be 1..50"),
        ([("text", str(i)) for i in range(7)], None, "limit of 6 per request (novic serve"),
        ([("top_k", "3")], None, "nothing to classify"),
        ([("text", "x" * 1001)], None, "limit of 1,000"),
        (None, {"images": ["a.jpg"]}, "unknown JSON keys ['images']"),
        (None, {"texts": "a cat"}, "texts must be a list of strings"),
    ],
)  # fmt: skip
def test_bad_requests_get_400_naming_the_problem(
    server: str, fields: Any, json_body: Any, message: str
) -> None:
    status, _, got = post(server, fields or (), json_body=json_body)
    assert status == 400 and message in got["error"]


def test_local_files_are_read_only_below_the_files_root(
    server: str, classifier: Classifier, checkpoint: Path, shared: Path
) -> None:
    inside = [str(shared / "photo.jpg"), "photo.jpg", (shared / "photo.jpg").as_uri()]
    status, _, got = post(server, json_body={"files": inside})
    assert status == 200 and [r["image"] for r in got["results"]] == inside
    assert all(len(r["predictions"]) == 5 for r in got["results"])
    outside = [str(PHOTOS[1]), "../photo.jpg", "http://example.com/a.jpg", "missing.jpg"]
    status, _, got = post(server, json_body={"files": outside})
    assert status == 200
    errors = [r["error"] for r in got["results"]]
    assert "not inside the served folder" in errors[0]
    assert "not inside the served folder" in errors[1]
    assert "only local files" in errors[2]
    assert "missing.jpg: no such file" in errors[3]
    with running(Service(classifier, str(checkpoint), LIMITS)) as url:  # no files root
        status, _, got = post(url, [("file", str(shared / "photo.jpg"))])
    assert status == 400 and "--files-root" in got["error"]


def test_a_full_queue_answers_503_with_retry_after(
    classifier: Classifier, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(classifier, str(checkpoint), LIMITS)  # queue=1
    busy, release = threading.Event(), threading.Event()
    real = service.process

    def slow(jobs: Any) -> None:
        busy.set()
        assert release.wait(30)
        real(jobs)

    monkeypatch.setattr(service, "process", slow)
    answers: list[int] = []
    text = [("text", "a cat")]
    with running(service) as url:
        first = threading.Thread(target=lambda: answers.append(post(url, text)[0]))
        first.start()
        assert busy.wait(30)  # the worker holds the first request
        second = threading.Thread(target=lambda: answers.append(post(url, text)[0]))
        second.start()
        deadline = time.monotonic() + 30
        while service.queue.qsize() < 1:  # the second waits in the queue
            assert time.monotonic() < deadline
            time.sleep(0.01)
        status, headers, got = post(url, text)
        release.set()
        first.join(30)
        second.join(30)
    assert status == 503 and "busy" in got["error"] and int(headers["Retry-After"]) >= 1
    assert answers == [200, 200]


def test_cli_listens_on_loopback_unless_told(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import novic.serve

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(novic.serve, "serve_command", lambda *a, **k: calls.append(a) or 0)
    assert main(["serve", "--model", str(checkpoint)]) == 0
    assert main(["serve", "--model", str(checkpoint), "--host", "0.0.0.0", "--queue", "3"]) == 0
    (_, host, port, limits, *_), (_, other, _, other_limits, *_) = calls
    assert (host, port, limits.queue) == ("127.0.0.1", 8000, 16)
    assert (other, other_limits.queue) == ("0.0.0.0", 3)


def fashion_mnist_png(folder: Path) -> Path:
    """The first Fashion-MNIST test image as a PNG file (skips if the dataset is missing)."""
    from novic.datasets import FASHION_MNIST_ROOT, read_idx

    idx = Path(FASHION_MNIST_ROOT) / "t10k-images-idx3-ubyte.gz"
    if not idx.is_file():
        pytest.skip(f"Fashion-MNIST is not installed ({idx}; Debian: dataset-fashion-mnist)")
    path = folder / "fashion_mnist_test_0.png"
    Image.fromarray(read_idx(idx)[0]).save(path)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through selenium, or a skip saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make test does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1100,900")
    try:
        browser = webdriver.Chrome(options, webdriver.ChromeService(executable_path=driver))
    except WebDriverException as error:
        pytest.skip(f"headless Chromium does not start here: {error.msg}")
    yield browser
    browser.quit()


def test_the_page_classifies_an_uploaded_image_in_a_browser(
    server: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    image = fashion_mnist_png(tmp_path)
    browser.get(server)
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: "nouns" in b.find_element(By.ID, "model").text)
    assert "tiny CLIP" in browser.find_element(By.ID, "model").text
    browser.find_element(By.ID, "files").send_keys(str(image))
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".card .noun"))
    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".card .noun")]
    probs = [float(e.text) for e in browser.find_elements(By.CSS_SELECTOR, ".card .prob")]
    status, _, got = post(server, files=[("image", image.name, image.read_bytes())])
    assert status == 200
    want = got["results"][0]["predictions"]
    assert shown == [p["noun"] for p in want] and len(shown) == 5
    assert probs == pytest.approx([p["prob"] for p in want], abs=1e-3)
    assert image.name in browser.find_element(By.CSS_SELECTOR, ".card .source").text
    # a class list from the page's box
    browser.find_element(By.CSS_SELECTOR, "input[name=guide][value=list]").click()
    browser.find_element(By.ID, "classes").send_keys("sandal\nshirt")
    browser.find_element(By.ID, "rerun").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card .noun")) == 2)
    shown = sorted(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".card .noun"))
    assert shown == ["sandal", "shirt"]
