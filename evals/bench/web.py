"""The web page's start-up and a question asked through it, against the same `groundqa ask`.

    python -m evals.bench.web [--questions 4] [--no-write]

Makes a 10-minute synthetic video (seed 31), starts the real `groundqa web --json` (embedded default,
loopback, its own process) and times: start-up (process start to the URL printed); each question
asked in a real headless Chromium (click on Ask -> first step shown -> answer shown; Debian's
chromium through Playwright, skipped when absent), through `gradio_client` (the same server path
without a browser), as `groundqa ask --json` (a process per question: what a CLI user pays), and
as `Agent.ask` in this process (warm models: the work itself). Answers must agree across the four.
Writes its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from evals.bench.concurrency import stop
from evals.bench.report_md import publish


def start_page(world: Path, home: Path) -> tuple[subprocess.Popen, str, float, dict[str, Any]]:
    env = {**os.environ, "GROUNDQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "groundqa", "web", "--json", "--port", "0", "--no-examples",
                             "--allow-dir", str(world)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("groundqa web did not start")
    info = json.loads(line)
    return proc, info["url"], time.perf_counter() - t0, info["seconds"]


def ask_in_browser(url: str, rows: list[dict[str, Any]], video: Path) -> list[dict[str, Any]] | None:
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#ask")
        page.locator("#path input").fill(str(video))
        page.locator("#path input").press("Enter")
        page.wait_for_selector("#video video")
        for row in rows:
            page.locator("#question textarea").fill(row["question"])
            page.locator("#options textarea").fill("\n".join(row["options"]))
            page.evaluate("() => { const a = document.querySelector('#answer .gq-head'); if (a) a.remove(); }")
            t0 = time.perf_counter()
            page.click("#ask")
            page.wait_for_selector("#steps li[data-step]", timeout=120_000)
            first = time.perf_counter() - t0
            page.wait_for_selector("#answer .gq-head", timeout=120_000)
            data = json.loads(page.input_value("#json textarea"))
            out.append({"seconds": time.perf_counter() - t0, "first_step": first, "answer": data["answer"],
                        "work": data["cost"]["seconds"]})
        browser.close()
    return out


def ask_with_client(url: str, rows: list[dict[str, Any]], video: Path) -> list[dict[str, Any]]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    out = []
    for row in rows:
        t0 = time.perf_counter()
        outs = list(client.submit(None, str(video), row["question"], "\n".join(row["options"]), "coarse-to-fine",
                                  0, 2, 2, api_name="/ask"))
        data = json.loads(outs[-1][6])
        out.append({"seconds": time.perf_counter() - t0, "updates": len(outs), "answer": data["answer"],
                    "work": data["cost"]["seconds"]})
    return out


def ask_with_cli(rows: list[dict[str, Any]], video: Path, home: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "GROUNDQA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = []
    for row in rows:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "groundqa", "ask", str(video), row["question"],
                              *[a for o in row["options"] for a in ("--option", o)], "--json"],
                             capture_output=True, text=True, env=env, check=True)
        data = json.loads(res.stdout)
        out.append({"seconds": time.perf_counter() - t0, "answer": data["answer"], "work": data["cost"]["seconds"]})
    return out


def ask_in_process(rows: list[dict[str, Any]], video: Path) -> list[dict[str, Any]]:
    from agent.api import Agent

    agent = Agent()
    agent.ask(video, rows[0]["question"], rows[0]["options"])  # warm-up: models and the frame index
    out = []
    for row in rows:
        t0 = time.perf_counter()
        a = agent.ask(video, row["question"], row["options"])
        out.append({"seconds": time.perf_counter() - t0, "answer": a.answer, "work": a.cost["seconds"]})
    return out


def mean(xs: list[dict[str, Any]], key: str = "seconds") -> float:
    return sum(float(x[key]) for x in xs) / len(xs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args(argv)

    from evals.synthetic import generate_world

    with tempfile.TemporaryDirectory() as tmp:
        tmp_p = Path(tmp)
        rows = generate_world(tmp_p / "world", n_videos=1, minutes=(10, 10), seed=31)
        qa = [r for r in rows if r.get("kind") == "qa" and r.get("options")][: args.questions]
        video = tmp_p / "world" / qa[0]["video"]
        home = tmp_p / "home"
        proc, url, startup, parts = start_page(tmp_p / "world", home)
        try:
            ask_with_client(url, qa[:1], video)  # warm-up: the frame index, caches
            browser = ask_in_browser(url, qa, video)
            client = ask_with_client(url, qa, video)
        finally:
            stop(proc, timeout=30)
        cli = ask_with_cli(qa, video, home)
        local = ask_in_process(qa, video)
    n = len(qa)
    answers = [r["answer"] for r in local]
    agree = {name: sum(a["answer"] == b for a, b in zip(res, answers))
             for name, res in (("browser", browser or []), ("client", client), ("cli", cli))}
    results = {"startup": startup, "startup_parts": parts, "browser": browser, "client": client, "cli": cli,
               "local": local, "agree": agree}
    base = mean(local)

    def row(name: str, res: list[dict[str, Any]], note: str, same: str) -> str:
        return (f"| {name} | {mean(res):.2f} | {mean(res, 'work'):.2f} | {mean(res) / base:.2f}x | {note} | {same} |")

    rows_md = []
    if browser:
        rows_md.append(row("the page in Chromium (click -> answer shown)", browser,
                           f"first step shown after {mean(browser, 'first_step'):.2f} s", f"{agree['browser']} of {n}"))
    rows_md += [
        row("the page through gradio_client (no browser)", client, f"{mean(client, 'updates'):.0f} streamed updates",
            f"{agree['client']} of {n}"),
        row("`groundqa ask --json` (a process per question)", cli, "loads the models each time", f"{agree['cli']} of {n}"),
        row("`Agent.ask` in process (warm)", local, "the work itself", "-"),
    ]
    lines = [
        "## Web page (evals/bench/web.py)",
        "",
        (f"`python -m evals.bench.web --questions {args.questions}` on {date.today().isoformat()}, machine: "
         f"{os.cpu_count()} CPU cores, no GPU, CPython {platform.python_version()}. Embedded default model, "
         f"{n} multiple-choice questions about a 10-minute synthetic video (seed 31), the video opened by path, "
         "each question its own conversation turn on the page. "
         f"`groundqa web` is up {startup:.1f} s after the process starts (models {parts['load']:.1f} s; "
         "Python imports, Gradio and the page the rest). Means per question; the page's after one warm-up "
         "question. \"agent seconds\" is the answer's own `cost.seconds` (grounding + QA, measured inside)."),
        "",
        "| how | wall seconds / question | agent seconds | wall vs Agent.ask | note | same answer as Agent.ask |",
        "|---|---:|---:|---:|---|---:|",
        *rows_md,
        "",
        (f"Reading: in the browser a question takes {(mean(browser) if browser else float('nan')) / base:.2f}x the "
         "in-process wall time; the agent's own seconds inside the server are a little higher than in process "
         "(the server, the streamed updates and the browser share the 2 cores with the model), and the rest is "
         "the page: updates, the thumbnails of the QA model's frames, rendering. gradio_client costs more than "
         "the browser because it also downloads every thumbnail. A `groundqa ask` process pays the model load on "
         f"every question ({mean(cli):.1f} s each), which the page pays once at start-up."),
    ]
    publish("\n".join(lines) + "\n", results, write=not args.no_write)


if __name__ == "__main__":
    main()
