"""`groundqa web`: the real page (Gradio, started by the real CLI on loopback), driven by a real headless
Chromium through Playwright, and by `gradio_client` without a browser.

The browser is Debian's `chromium` (Playwright's own download cannot work offline). Where it is not
installed these tests skip, except with GROUNDQA_REQUIRE_BROWSER=1 (CI sets it: there they fail).
GROUNDQA_SCREENSHOT=docs/web.png makes the first browser test write the README's screenshot there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from evals.bench.concurrency import stop
from groundqa.cli import main
from tests.media import audio_only

gradio_client = pytest.importorskip("gradio_client")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUESTION_TIMEOUT_MS = 120_000


# -- the server, the world, the browser -------------------------------------------------------------
@pytest.fixture(scope="module")
def world(synth_world) -> dict:
    """A synthetic 10-minute video with its multiple-choice questions (exact truth)."""
    ann = synth_world(1, 10.0, 4243)
    rows = [json.loads(line) for line in ann.read_text().splitlines() if line.strip()]
    qa = [r for r in rows if r.get("kind") == "qa" and r.get("options")]
    return {"dir": ann.parent, "video": ann.parent / qa[0]["video"], "qa": qa}


class Outside:
    """A loopback listener standing in for "off this machine": the server process gets it as its
    HTTP(S) proxy (loopback excepted), so any request it makes elsewhere arrives here and is counted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def outside():
    o = Outside()
    yield o
    o.close()


@pytest.fixture(scope="module")
def server(world, tmp_path_factory, outside):
    """`groundqa web --json --port 0 --allow-dir WORLD` in its own process: (url, startup JSON)."""
    home = tmp_path_factory.mktemp("web_home")
    env = {**os.environ, "GROUNDQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HTTP_PROXY": outside.url, "HTTPS_PROXY": outside.url, "http_proxy": outside.url,
           "https_proxy": outside.url, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    proc = subprocess.Popen([sys.executable, "-m", "groundqa", "web", "--json", "--port", "0",
                             "--allow-dir", str(world["dir"])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # one JSON line once the page is up
        if not line:
            pytest.fail(f"groundqa web did not start: {proc.stderr.read()[-2000:]}")
        info = json.loads(line)
        yield info["url"], info
    finally:
        stop(proc, timeout=20)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("GROUNDQA_REQUIRE_BROWSER") == "1":
            pytest.fail("GROUNDQA_REQUIRE_BROWSER=1 but Debian's chromium is not installed")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def request_host(url: str) -> str:
    """The host a request goes to; a blob: URL is an object of the page (its origin's host), a data:
    URL goes nowhere."""
    if url.startswith("data:"):
        return "127.0.0.1"
    url = url.removeprefix("blob:")
    return urlparse(url).hostname or url


def open_page(browser, url: str, hosts: list[str] | None = None):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    if hosts is not None:  # every request the page makes, to check that none leaves 127.0.0.1
        ctx.on("request", lambda r: hosts.append(request_host(r.url)))
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#ask")
    return ctx, page


def fill(page, question: str, options: list[str] | None = None) -> None:
    page.locator("#question textarea").fill(question)
    page.locator("#options textarea").fill("\n".join(options or []))


def load_path(page, path: str) -> None:
    page.locator("#path input, #path textarea").first.fill(path)
    page.locator("#path input, #path textarea").first.press("Enter")


def wait_message(page, text: str) -> str:
    page.wait_for_function("t => (document.querySelector('#message') || {}).innerText?.includes(t)", arg=text,
                           timeout=QUESTION_TIMEOUT_MS)
    return page.inner_text("#message")


def wait_answer(page) -> str:
    page.wait_for_selector("#answer .gq-head", timeout=QUESTION_TIMEOUT_MS)
    return page.inner_text("#answer .gq-head")


def page_json(page) -> dict:
    """The answer's JSON as the page shows it (the `json` pane's text box)."""
    return json.loads(page.input_value("#json textarea"))


# -- the browser -------------------------------------------------------------------------------------
def test_upload_ask_watch_the_steps_then_play_the_moment(server, world, browser, tmp_path):
    url, info = server
    assert urlparse(url).hostname == "127.0.0.1" and info["seconds"]["total"] > 0
    hosts: list[str] = []
    ctx, page = open_page(browser, url, hosts)
    page.locator("#video input[type=file]").set_input_files(str(world["video"]))
    page.wait_for_selector("#video video")
    row = world["qa"][0]
    fill(page, row["question"], row["options"])
    # what #steps shows at each change, and whether an answer was there yet
    page.evaluate("""() => { window.snaps = [];
      new MutationObserver(() => window.snaps.push([
          document.querySelectorAll('#steps li[data-step]').length,
          !!document.querySelector('#answer .gq-head')]))
        .observe(document.querySelector('#steps'), {subtree: true, childList: true, characterData: true}); }""")
    page.click("#ask")
    head = wait_answer(page)
    assert re.match(r"\([A-D]\) ", head) or head.startswith("not sure")
    snaps = page.evaluate("window.snaps")
    assert max(n for n, answered in snaps if not answered) >= 2  # steps streamed before the answer
    steps = page.locator("#steps li[data-step]")
    assert [steps.nth(i).get_attribute("data-step") for i in range(steps.count())][:2] == ["plan", "coarse"]
    assert re.search(r"\d+\.\d\d s", page.inner_text("#steps"))  # each step with its seconds
    cost = page.inner_text("#cost")
    for word in ("frames decoded", "model calls", "visual tokens", "seconds"):
        assert word in cost
    data = page_json(page)
    assert data["question"] == row["question"] and data["cost"]["model_calls"] >= 1
    duration = float(page.get_attribute("#timeline .gq-timeline", "data-duration"))
    assert duration == pytest.approx(600.0, abs=1)
    buttons = page.locator("#timeline .gq-seg-button[data-start]")
    assert buttons.count() >= 1
    spans = [(float(buttons.nth(i).get_attribute("data-start")), float(buttons.nth(i).get_attribute("data-end")))
             for i in range(buttons.count())]
    for s, e in spans:
        assert 0 <= s < e <= duration
    assert spans[0] == (pytest.approx(data["segments"][0]["start"], abs=1e-3),
                        pytest.approx(data["segments"][0]["end"], abs=1e-3))
    # the frames the QA model saw, captioned with their times
    assert page.locator("#frames img").count() >= 1
    # click the top segment in the whole-video lane: the player plays from its start
    k = max(range(len(spans)), key=lambda i: spans[i][1] - spans[i][0])  # the longest: room to play
    s, e = spans[k]
    page.locator(f'#timeline .gq-lane .segment[data-rank="{k + 1}"]').click()
    page.wait_for_function("([s, e]) => { const v = document.querySelector('#video video'); "
                           "return v && v.currentTime >= s - 0.05 && v.currentTime <= e; }", arg=[s, e],
                           timeout=10_000)
    shot = tmp_path / "web.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("GROUNDQA_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["GROUNDQA_SCREENSHOT"])
    ctx.close()
    assert hosts and set(hosts) == {"127.0.0.1"}, sorted(set(hosts))


def test_bad_input_gets_one_visible_line_and_the_page_keeps_answering(server, world, browser, tmp_path):
    url, _ = server
    ctx, page = open_page(browser, url)
    video = str(world["video"])
    row = world["qa"][1]
    load_path(page, video)
    page.wait_for_selector("#video video")
    cases = [("", None, "the question is empty"),
             (row["question"], ["only one"], "give 2 to 26 options, got 1")]
    for question, options, msg in cases:
        fill(page, question, options)
        page.click("#ask")
        assert "\n" not in wait_message(page, msg).strip()
    load_path(page, str(world["dir"] / "videos" / "nope.mp4"))
    wait_message(page, "no such file")
    load_path(page, "/etc/hostname")
    wait_message(page, "outside the folders")
    # uploads: a file that is not a video, an audio-only file
    not_video = tmp_path / "not_a_video.mp4"
    not_video.write_text("hello, not a video\n")
    for f, msg in [(not_video, "cannot read video"), (audio_only(tmp_path / "voice.mp4"), "no video stream")]:
        page.locator("#path input, #path textarea").first.fill("")
        page.locator("#question textarea").click()  # the path box's blur event runs before the clear
        page.wait_for_timeout(500)
        clear = page.locator("#video button[aria-label='Clear']")
        if clear.count():  # a loaded video hides the upload input until it is cleared
            clear.first.click()
        page.locator("#video input[type=file]").set_input_files(str(f))
        page.wait_for_timeout(1000)
        fill(page, "when does it happen?")
        page.click("#ask")
        assert "\n" not in wait_message(page, msg).strip()
    # the same server, the same page: a good question is answered
    load_path(page, video)
    fill(page, row["question"], row["options"])
    page.click("#ask")
    wait_answer(page)
    assert page.inner_text("#message").strip() == ""
    ctx.close()


def test_two_browsers_asking_at_once_both_get_their_own_answer(server, world, browser):
    url, _ = server
    pages = []
    for row in world["qa"][2:4]:
        ctx, page = open_page(browser, url)
        load_path(page, str(world["video"]))
        fill(page, row["question"], row["options"])
        pages.append((ctx, page, row))
    for _, page, _ in pages:
        page.click("#ask")  # both queued before either is answered
    for ctx, page, row in pages:
        wait_answer(page)
        assert page_json(page)["question"] == row["question"]
        assert "follow-up" not in page.inner_text("#answer")  # each browser: its own first turn
        ctx.close()


# -- gradio_client: the same flows without a browser ------------------------------------------------
ASK_ARGS = ("coarse-to-fine", 0, 2, 2)


def _ask(client, path: str, question: str, options: list[str] | None):
    job = client.submit(None, path, question, "\n".join(options or []), *ASK_ARGS, api_name="/ask")
    outs = list(job)
    return outs


def test_client_streams_steps_then_the_same_answer_as_groundqa_ask(server, world):
    url, _ = server
    client = gradio_client.Client(url, verbose=False)
    row = world["qa"][0]
    outs = _ask(client, str(world["video"]), row["question"], row["options"])
    message, _steps, answer, cost, _timeline, frames, as_json = outs[-1]
    assert message == "" and "gq-head" in answer and "model calls" in cost
    # a video of a dataset folder (annotations.jsonl beside its videos/): the truth and the IoU are shown
    assert "true answer" in answer and "true span" in answer and "IoU" in answer
    streamed = [o for o in outs[:-1] if "gq-head" not in o[2]]
    assert max(o[1].count("<li data-step=") for o in streamed) >= 2
    data = json.loads(as_json)
    cli = subprocess.run([sys.executable, "-m", "groundqa", "ask", str(world["video"]), row["question"],
                          *[a for o in row["options"] for a in ("--option", o)], "--json"],
                         capture_output=True, text=True, timeout=300, check=False)
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    # one code path: the same contract, the same answer and moments (cost seconds aside)
    assert set(data) - {"session"} == set(expected)
    for key in ("question", "answer", "choice", "segments", "confidence", "warnings"):
        assert data[key] == expected[key], key
    # (the retriever's frame index is cached per video: how much it embedded depends on what ran before)
    same = ("model_calls", "frames", "visual_tokens")
    assert {k: data["cost"][k] for k in same} == {k: expected["cost"][k] for k in same}
    assert len(frames) >= 1 and all(re.fullmatch(r"\d+\.\d s", f["caption"]) for f in frames)


def test_client_follow_up_reuses_the_session_and_sessions_are_not_shared(server, world):
    url, _ = server
    row = world["qa"][1]
    one, two = gradio_client.Client(url, verbose=False), gradio_client.Client(url, verbose=False)
    first = json.loads(_ask(one, str(world["video"]), row["question"], row["options"])[-1][6])
    assert first["session"]["history"] == []
    follow = _ask(one, str(world["video"]), "and what comes after that?", None)[-1]
    history = json.loads(follow[6])["session"]["history"]
    assert [h["question"] for h in history] == [row["question"]] and "follow-up #1" in follow[2]
    other = json.loads(_ask(two, str(world["video"]), row["question"], row["options"])[-1][6])
    assert other["session"]["history"] == [] and other["session"]["name"] != first["session"]["name"]


def test_client_examples_carry_their_truth_and_bad_input_is_one_line(server):
    url, _ = server
    client = gradio_client.Client(url, verbose=False)
    labels = client.view_api(return_format="dict")["named_endpoints"]["/pick_example"]["parameters"][0]
    choices = re.findall(r"'([^']+)'", labels["python_type"]["type"])
    synthetic = [c for c in choices if c.startswith("synthetic")]
    assert len(synthetic) >= 2
    _video, path, question, options, message = client.predict(synthetic[0], api_name="/pick_example")
    assert Path(path).is_file() and question and len(options.splitlines()) >= 2 and message == ""
    out = _ask(client, path, question, options.splitlines())[-1]
    assert "true answer" in out[2] and "true span" in out[2] and "IoU" in out[2]
    assert 'class="truth"' in out[4]
    for video_path, q, msg in [(path, "  ", "the question is empty"), ("/etc/hostname", "when?", "outside the folders"),
                               (path + ".missing", "when?", "no such file"), ("", "when?", "no video")]:
        bad = _ask(client, video_path, q, None)[-1]
        assert msg in bad[0] and "gq-head" not in bad[2], (video_path, q, bad[0])
    # and the server still answers
    assert "gq-head" in _ask(client, path, question, options.splitlines())[-1][2]


def test_the_server_made_no_request_off_the_machine(server, world, outside):
    # after this file's other tests (file order) and, so that it also holds when run alone, one question here
    url, _ = server
    row = world["qa"][0]
    assert "gq-head" in _ask(gradio_client.Client(url, verbose=False), str(world["video"]), row["question"],
                             row["options"])[-1][2]
    assert outside.connections == 0


def test_cli_bad_settings_fail_in_one_line(tmp_path, capsys):
    assert main(["web", "--allow-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "--allow-dir" in err and "not a folder" in err and err.count("\n") == 1
    assert main(["web", "--port", "70000"]) == 2
    assert "--port must be" in capsys.readouterr().err
