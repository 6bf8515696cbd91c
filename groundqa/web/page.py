"""The Gradio page: pick a long video, ask, watch the agent work, and see where the answer came from.

One code path with `groundqa ask`: the page holds an `agent.api.Agent` and runs `Agent.stream`;
each event updates the `steps` list as it arrives. Stable element ids (tests drive the page by
them): video, path, examples, question, options, ask, message, steps, answer, cost, timeline,
frames, json. Per browser session a `gr.State` keeps the conversation (a LangGraph session named
per page and video, as `ask --session`), so a follow-up question sees the earlier turns; nothing
is shared between two browsers. Gradio's queue takes questions one at a time (the models are
shared), so two people asking at once both get their answers, the second after the first.
"""

from __future__ import annotations

import json
import queue
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grounder.errors import GroundQAError
from grounder.scan import ScanBudget
from grounder.spans import best_iou
from grounder.video import shared_reader
from groundqa.web.inputs import (
    Example,
    parse_options,
    pick_video,
    resolve_path,
    truth_from_annotations,
)
from groundqa.web.render import StepLog, answer_html, cost_html, esc, frame_captions, timeline_html

FRAMES_SHOWN = 48  # thumbnails of the QA model's frames at most (evenly spread when it saw more)
THUMB_PIXELS = 128 * 96

# Clicking a final segment (in the timeline lanes or its list) plays the player from its start.
# One listener on the document: it keeps working when Gradio re-renders the timeline's HTML.
SEEK_SCRIPT = """<script>
document.addEventListener('click', function (e) {
  var seg = e.target.closest && e.target.closest('#timeline .segment[data-start]');
  if (!seg) return;
  var v = document.querySelector('#video video');
  if (!v) return;
  v.currentTime = parseFloat(seg.getAttribute('data-start'));
  var p = v.play();
  if (p && p.catch) p.catch(function () {});
});
</script>"""

CSS = """
#message:empty {display: none}
#message .gq-error {color: #b42318; font-weight: 600; padding: 4px 0}
.gq-steps {margin: 0; padding-left: 1.4em} .gq-steps li {margin: 2px 0}
.gq-secs {color: #667085; font-variant-numeric: tabular-nums} .gq-running {color: #667085}
.gq-head {font-size: 1.4em; font-weight: 700} .gq-unsure {color: #b54708; font-weight: 700}
.gq-options td, .gq-options th {padding: 1px 8px} .gq-chosen {font-weight: 700; background: #ecfdf3}
.gq-warning {color: #b54708} .gq-truth {color: #344054}
.gq-cost-item {margin-right: 1.2em}
.gq-timeline {position: relative; padding: 4px 0}
.gq-lane {position: relative; height: 22px; background: #f2f4f7; margin: 3px 0 3px 64px; border-radius: 3px}
.gq-lane-name {position: absolute; left: -64px; width: 60px; font-size: 12px; color: #475467}
.gq-lane .coarse {position: absolute; top: 5px; height: 12px; background: #98a2b3; opacity: .6}
.gq-lane .segment {position: absolute; top: 1px; height: 20px; background: #1570ef; cursor: pointer;
                   border-radius: 2px; border: 1px solid #0b4a9e}
.gq-lane .truth {position: absolute; top: 5px; height: 12px; background: #d92d20}
.gq-axis {position: relative; height: 16px; margin-left: 64px; font-size: 11px; color: #667085}
.gq-axis span {position: absolute; transform: translateX(-50%)}
.gq-legend {margin: 4px 0 0 64px; font-size: 12px; color: #667085}
.gq-seglist {margin: 6px 0 0 64px} .gq-seg-button {margin: 2px 6px 2px 0; cursor: pointer}
"""


def _error(msg: str) -> str:
    return f'<div class="gq-error">{esc(msg)}</div>'


def model_note(agent: Any) -> str:
    """One line under the title: which model answers, and what it does not know."""
    domain = getattr(getattr(agent, "grounder", None), "domain", None)
    if domain is None:
        return ""
    return (f"The model here knows only {domain.description}: on any other video it says "
            "“not sure” (start the page with `--model` and a real Qwen-VL model for real video).")


class Page:
    """The handlers, with what they share: the agent, the folders the page may read, the examples."""

    def __init__(self, agent: Any, allow_dirs: list[Path], examples: list[Example]) -> None:
        self.agent = agent
        self.examples = examples
        # typed paths may name files in --allow-dir folders and the examples' own folders
        self.read_dirs = list(allow_dirs) + sorted({e.video.parent for e in examples})
        # The agent runs on one long-lived thread. Gradio advances a generator handler from whichever
        # worker thread is free, and each new thread that calls torch starts its own OpenMP team,
        # whose idle spinning competes with the model on a small machine; one thread keeps one team.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="groundqa-agent")

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """`Agent.stream` run on the page's agent thread; its events (and its error) arrive here."""
        events: queue.Queue[Any] = queue.Queue()
        done = object()

        def run() -> None:
            try:
                for ev in self.agent.stream(*args, **kwargs):
                    events.put(ev)
            except BaseException as exc:  # noqa: BLE001 - handed to the page's thread, raised there
                events.put(exc)
            finally:
                events.put(done)

        self.worker.submit(run)
        while (ev := events.get()) is not done:
            if isinstance(ev, BaseException):
                raise ev
            yield ev

    # -- small handlers ---------------------------------------------------------------------------
    def show_path(self, path_text: str) -> tuple[Any, str]:
        """A typed path -> the player shows that file (or the message says why not)."""
        import gradio as gr

        if not (path_text or "").strip():
            return gr.skip(), ""
        try:
            return str(resolve_path(path_text, self.read_dirs)), ""
        except GroundQAError as exc:
            return gr.skip(), _error(str(exc))

    def pick_example(self, label: str) -> tuple[Any, ...]:
        import gradio as gr

        ex = next((e for e in self.examples if e.label == label), None)
        if ex is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
        return str(ex.video), str(ex.video), ex.question, ex.options_text(), ""

    # -- ask --------------------------------------------------------------------------------------
    def ask(self, upload: str | None, path_text: str, question: str, options_text: str, strategy: str,
            max_calls: float | None, max_rounds: float | None, qa_segments: float | None,
            state: dict[str, Any] | None) -> Any:
        """Stream the agent's steps, then the answer, cost, timeline, frames and JSON (a generator:
        Gradio sends each yield to the browser)."""
        state = dict(state or {})
        t0 = time.perf_counter()
        log = StepLog()
        out: dict[str, Any] = {"message": "", "steps": log.html(), "answer": "", "cost": "", "timeline": "",
                               "frames": [], "json": "", "state": state}
        try:
            options = parse_options(options_text)
            video = pick_video(upload, path_text, self.read_dirs)
            overrides: dict[str, Any] = {"strategy": strategy or "coarse-to-fine"}
            if max_calls:
                overrides["budget"] = ScanBudget(max_calls=int(max_calls))
            if max_rounds:
                overrides["max_rounds"] = int(max_rounds)
            if qa_segments:
                overrides["qa_segments"] = int(qa_segments)
            key = str(video.resolve())
            if state.get("video") != key:  # a new video: a new conversation
                state = {"video": key, "session": f"web-{uuid.uuid4().hex[:16]}"}
            yield out  # clear the previous answer; the steps start
            answer = None
            for ev in self.stream(video, question, options, session=state["session"], **overrides):
                if ev["type"] == "result":
                    answer = ev["answer"]
                elif log.add(ev):
                    yield {**out, "steps": log.html()}
            assert answer is not None
        except GroundQAError as exc:
            yield {**out, "message": _error(str(exc)), "steps": log.html(running=False)}
            return
        except Exception as exc:  # noqa: BLE001 - the page stays up and says what happened in one line
            traceback.print_exc(file=sys.stderr)
            yield {**out, "message": _error(f"internal error: {type(exc).__name__}: {exc}"),
                   "steps": log.html(running=False)}
            return
        yield {**out, **self.results(video, question, options, answer, log, time.perf_counter() - t0,
                                     len(answer.history) + 1), "state": state}

    def results(self, video: Path, question: str, options: list[str] | None, answer: Any, log: StepLog,
                wall: float, turn: int) -> dict[str, Any]:
        reader = shared_reader(video)
        truth = truth_from_annotations(video, question)  # synthetic examples and dataset videos
        if truth is not None:
            top = answer.segments[0] if answer.segments else None
            truth = {**truth, "iou": best_iou((top.start, top.end), truth["spans"]) if top else 0.0}
        segs = [s.to_dict() for s in answer.segments]
        times = frame_captions(list(answer.frame_times), FRAMES_SHOWN)
        frames = []
        if times:
            pics, _ = reader.sample(times, max_pixels=THUMB_PIXELS)  # captions: the times the QA model was given
            frames = [(pic, f"{float(t):.1f} s") for pic, t in zip(pics, times)]
        contract = {"question": " ".join(question.split()), **answer.to_dict()}  # what `ask --json` prints
        return {
            "steps": log.html(running=False),
            "answer": answer_html(answer, options, truth, turn),
            "cost": cost_html(answer.cost, wall),
            "timeline": timeline_html(float(reader.duration), segs, log.coarse_windows,
                                      truth["spans"] if truth else None),
            "frames": frames,
            "json": json.dumps(contract, indent=2),
        }


def build(agent: Any, allow_dirs: list[Path] = (), examples: list[Example] = (),
          title: str = "groundqa") -> Any:
    """The page (a `gr.Blocks`); `serve` launches it."""
    import gradio as gr

    page = Page(agent, list(allow_dirs), list(examples))
    with gr.Blocks(title=title, analytics_enabled=False) as blocks:
        gr.Markdown("## groundqa — ask a long video\nIt finds *when* first (a coarse pass over the whole "
                    "video, then closer looks), then answers from those moments only.")
        note = model_note(agent)
        if note:
            gr.Markdown(note, elem_id="model-note")
        state = gr.State({})
        with gr.Row():
            with gr.Column(scale=3):
                video = gr.Video(label="the video", sources=["upload"], elem_id="video", height=360)
                path = gr.Textbox(label="…or a video file on the server (path, Enter to load)",
                                  elem_id="path", max_lines=1)
                example = gr.Dropdown([e.label for e in examples], value=None, label="…or an example",
                                      elem_id="examples", interactive=True)
            with gr.Column(scale=2):
                question = gr.Textbox(label="question", elem_id="question", lines=2)
                options = gr.Textbox(label="options (one per line; leave empty for an open question)",
                                     elem_id="options", lines=4)
                with gr.Accordion("advanced", open=False):
                    strategy = gr.Dropdown(["coarse-to-fine", "uniform", "sliding"], value="coarse-to-fine",
                                           label="strategy (uniform = no grounding, the baseline)",
                                           elem_id="strategy")
                    max_calls = gr.Number(0, label="grounder model calls per round (0 = the model's default)",
                                          precision=0, minimum=0, elem_id="max-calls")
                    max_rounds = gr.Number(2, label="grounding rounds at most", precision=0, minimum=1,
                                           elem_id="max-rounds")
                    qa_segments = gr.Number(2, label="segments handed to the QA model", precision=0, minimum=1,
                                            elem_id="qa-segments")
                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                message = gr.HTML("", label="message", elem_id="message")
        steps = gr.HTML("", label="steps", elem_id="steps")
        answer = gr.HTML("", label="answer", elem_id="answer")
        cost = gr.HTML("", label="cost", elem_id="cost")
        timeline = gr.HTML("", label="timeline", elem_id="timeline", js_on_load=None)  # clicks: SEEK_SCRIPT
        frames = gr.Gallery(label="frames the QA model saw", elem_id="frames", columns=8, height="auto",
                            preview=False, allow_preview=True)
        as_json = gr.Textbox("", label="JSON (what groundqa ask --json prints; copy button on the right)",
                             elem_id="json", lines=4, max_lines=12, buttons=["copy"], interactive=False,
                             autoscroll=False)

        names = {"message": message, "steps": steps, "answer": answer, "cost": cost, "timeline": timeline,
                 "frames": frames, "json": as_json, "state": state}

        def ask_fn(*args: Any) -> Any:
            for upd in page.ask(*args):
                yield {names[k]: v for k, v in upd.items()}

        gr.on([ask.click, question.submit], ask_fn,
              [video, path, question, options, strategy, max_calls, max_rounds, qa_segments, state],
              list(names.values()), api_name="ask", concurrency_id="agent", concurrency_limit=1,
              show_progress="minimal")
        gr.on([path.submit, path.blur], page.show_path, [path], [video, message], api_name="load_path")
        example.input(page.pick_example, [example], [video, path, question, options, message],
                      api_name="pick_example")
        video.upload(lambda: "", None, [path], api_visibility="private")  # an upload replaces a typed path
    blocks.page = page
    return blocks


def serve(blocks: Any, host: str = "127.0.0.1", port: int | None = 7860, quiet: bool = True,
          block: bool = False) -> str:
    """Launch on `host:port` (loopback by default; port None: a free one); returns the page's URL.
    Gradio's analytics and version check stay off: the page makes no request off this machine."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    page: Page = blocks.page
    # videos opened by path are served from where they lie, not copied into Gradio's cache (an hour
    # of video is gigabytes)
    gr.set_static_paths([str(d) for d in page.read_dirs])
    blocks.queue(default_concurrency_limit=1)
    _, url, _ = blocks.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=quiet,
                              share=False, show_error=False, allowed_paths=[str(d) for d in page.read_dirs],
                              head=SEEK_SCRIPT, css=CSS, footer_links=[], ssr_mode=False, mcp_server=False,
                              inbrowser=False)
    if block:
        blocks.block_thread()
    return url
