"""The demo Space (space/app.py) as people use it: started with `python space/app.py --port N` from another folder,
then driven through gradio_client (the page's API) and in headless Chromium (the page itself).

The two example barcodes are real fixture barcodes against the fixture's `train` split: Aedes aegypti (its species is
in the reference: a species call) and Aedes vexans (it is not: the species abstains, the genus Aedes is called).
`SPACE_SCREENSHOT=docs/space_screenshot.png python -m pytest tests/test_space.py -k browser` keeps a screenshot.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from barcodemae.data import FIXTURE

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
START_TIMEOUT_S = 240  # importing gradio and torch on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_url(process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if "Running on local URL:" in line:
                return line.split("URL:")[1].strip()
        if process.poll() is not None:
            pytest.fail(f"space/app.py exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.5)
    pytest.fail(f"space/app.py did not start in {START_TIMEOUT_S} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The app on a free local port, offline, started from a folder outside the repository."""
    pytest.importorskip("gradio", reason="the demo needs gradio: pip install -e '.[demo]'")
    folder = tmp_path_factory.mktemp("space")
    log = folder / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, str(REPO / "space" / "app.py"), "--port", str(_free_port())],
                                   cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield _wait_for_url(process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client  # installed with gradio

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def examples(client) -> str:
    return client.predict(api_name="/example")


@pytest.mark.slow
def test_example_button_gives_two_fixture_barcodes(examples):
    fixture = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False).set_index("processid")
    names = [line[1:] for line in examples.splitlines() if line.startswith(">")]
    assert [fixture.loc[name, "species"] for name in names] == ["Aedes aegypti", "Aedes vexans"]


@pytest.mark.slow
def test_client_identifies_pasted_barcodes_with_abstention_and_downloads(client, examples):
    message, shown, calls_tsv, embeddings, plot = client.predict(examples, None, api_name="/identify")
    assert message.startswith("2 barcodes identified against 455 reference barcodes")
    rows = {row[0]: dict(zip(shown["headers"], row)) for row in shown["data"]}
    assert rows["AGIRI262-17"]["species"].startswith("Aedes aegypti (")
    assert rows["BBDCP593-10"]["species"].startswith("no call: best hit Aedes aegypti")
    assert [rows[name]["genus"].split(" (")[0] for name in rows] == ["Aedes", "Aedes"]
    calls = pd.read_csv(calls_tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(calls["query"]) == ["AGIRI262-17", "BBDCP593-10"] and list(calls["species"]) == ["Aedes aegypti", ""]
    vectors = pd.read_parquet(embeddings)
    assert list(vectors["id"]) == ["AGIRI262-17", "BBDCP593-10"] and len(vectors["embedding"][0]) == 256
    assert plot["type"] == "matplotlib"


@pytest.mark.slow
def test_client_reads_an_uploaded_file(client, fixture_metadata, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "mine.tsv"
    fixture_metadata[fixture_metadata.split == "test_unseen"].head(3)[["processid", "dna_barcode"]].to_csv(
        path, sep="\t", index=False)  # fmt: skip
    message, shown, *_ = client.predict("", handle_file(str(path)), api_name="/identify")
    assert message.startswith("3 barcodes identified")
    assert [row[0] for row in shown["data"]] == list(fixture_metadata[fixture_metadata.split == "test_unseen"].processid[:3])


@pytest.mark.slow
@pytest.mark.parametrize(
    "text, upload, expected",
    [
        ("  \n", None, "**error:** no barcode: paste one or more"),
        ("ACGTTAGCTAGG7ACGTACGTTTAGGCATCGA", None, "**error:** pasted barcodes: row 1, column 'sequence': the character '7'"),
        ("\n>a\nACGTAC\n", None, "**error:** pasted barcodes: record 1 (>a, line 2): the barcode 'ACGTAC' (6 nt once "
         "cleaned) has no 11"),
        ("AACATTATATTTTATTTTTGGAATTTGAGC\n" * 10_000, None, "**error:** pasted barcodes: 10,000 barcodes; this demo "
         "identifies at most 1,000 per run"),
        ("", "empty.fasta", "**error:** empty.fasta: the file is empty"),
    ],
)
def test_client_bad_input_gets_a_message(client, tmp_path, text, upload, expected):
    from gradio_client import handle_file

    if upload:
        (tmp_path / upload).write_text("")
        upload = handle_file(str(tmp_path / upload))
    message, shown, calls_tsv, embeddings, plot = client.predict(text, upload, api_name="/identify")
    assert message.startswith(expected), message
    assert (calls_tsv, embeddings, plot) == (None, None, None)


@pytest.mark.slow
def test_client_bad_barcodes_name_the_page_control_that_skips_them(client, examples):
    """The page speaks of its own controls, not of command-line flags; its box skips the bad barcodes and says so."""
    pasted = examples.replace(">BBDCP593-10", ">BAD-1\nACGT7ACGT\n>BBDCP593-10")
    message, *_ = client.predict(pasted, None, api_name="/identify")
    assert message.startswith("**error:** pasted barcodes: record 2 (>BAD-1, line 3), column 'sequence': the character")
    assert message.endswith("; fix the file or skip them with the 'Skip bad barcodes' box") and "--" not in message
    message, shown, *_ = client.predict(pasted, None, True, api_name="/identify")
    assert message.startswith("2 barcodes identified") and message.endswith(" 1 bad barcode skipped.")
    assert [row[0] for row in shown["data"]] == ["AGIRI262-17", "BBDCP593-10"]


@pytest.mark.slow
def test_browser_pastes_two_barcodes_and_reads_the_table(app_url, examples, monkeypatch):
    """Headless Debian Chromium through selenium, with the system's chromedriver (nothing downloaded)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium: pip install -e '.[test]'")
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"no {CHROMIUM} / {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager never looks anything up
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,2100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.get(app_url)
        wait = WebDriverWait(driver, 120)
        box = wait.until(expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, "#barcodes textarea")))
        box.send_keys(examples)
        driver.find_element(By.ID, "identify").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "message"), "2 barcodes identified"))
        table = driver.find_element(By.ID, "calls").text
        assert "Aedes aegypti (" in table and "no call: best hit Aedes aegypti" in table and "Culicidae" in table
        if os.environ.get("SPACE_SCREENSHOT"):
            wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "img, svg, canvas")))
            driver.save_screenshot(os.environ["SPACE_SCREENSHOT"])
    finally:
        driver.quit()


def test_push_uploads_the_app_with_its_toolkit_in_the_repository_layout():
    sys.path.insert(0, str(REPO / "space"))
    from push_to_hub import space_files

    files = space_files()
    assert {"space/app.py", "barcodemae/identify.py", "barcodemae/search/references.py",
            "barcodemae/bioscan_fixture.csv.gz", "modeling_barcodemae.py",
            "checkpoints/barcodemae-4x256-bold/model.safetensors"} <= set(files)  # fmt: skip
    assert files["README.md"] == REPO / "space" / "README.md" and "app_file: space/app.py" in files["README.md"].read_text()
    assert all(path.is_file() for path in files.values()) and not any(name.startswith("tests/") for name in files)
    from barcodemae.model_card import MODEL_ID, SPACE_ID

    assert MODEL_ID in files["README.md"].read_text() and SPACE_ID in files["README.md"].read_text()


def test_space_requirements_cover_the_package():
    """The Space installs from space/requirements.txt, not pyproject.toml: it must ask for every dependency."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {Requirement(line).name.lower() for line in project["dependencies"] + project["optional-dependencies"]["demo"]}
    lines = (REPO / "space" / "requirements.txt").read_text().splitlines()
    listed = {Requirement(line).name.lower() for line in lines if line.strip() and not line.startswith(("#", "-"))}
    assert wanted <= listed, f"missing from space/requirements.txt: {sorted(wanted - listed)}"
