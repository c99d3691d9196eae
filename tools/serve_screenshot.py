"""Take docs/images/serve.png: `novic serve` on a model, its page in headless Chromium, a few
Fashion-MNIST test images uploaded through the page's file input.

    python tools/serve_screenshot.py [--model results/models/minilm_ft12/decoder.pt]

Needs what tests/test_serve.py's browser test needs (selenium, Debian's chromium and
chromium-driver) and the model.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.serve import free_port, start_server
from novic.datasets import FASHION_MNIST_ROOT, read_idx

# The first Fashion-MNIST test image of six classes: ankle boot, pullover, trouser, shirt, sandal,
# bag (the page shows them 4x, pixelated).
LABELS = [9, 2, 1, 6, 5, 8]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="results/models/minilm_ft12/decoder.pt")
    parser.add_argument("--out", default="docs/images/serve.png")
    args = parser.parse_args()
    root = Path(FASHION_MNIST_ROOT)
    images = read_idx(root / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(root / "t10k-labels-idx1-ubyte.gz").tolist()
    port = free_port()
    server = start_server(args.model, port)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=900,1180", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    browser = webdriver.Chrome(options, service)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i in (labels.index(label) for label in LABELS):
                path = Path(tmp) / f"fashion_mnist_test_{i}.png"
                Image.fromarray(images[i]).save(path)
                paths.append(str(path))
            browser.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(browser, 60)
            wait.until(lambda b: "nouns" in b.find_element(By.ID, "model").text)
            browser.find_element(By.ID, "files").send_keys("\n".join(paths))
            wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card")) == len(paths))
            time.sleep(0.5)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(args.out)
    finally:
        browser.quit()
        server.terminate()
        server.wait(30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
