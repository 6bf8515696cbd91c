"""`groundqa web`: start the page on loopback and keep it up until Ctrl-C."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from agent.sessions import home
from grounder.errors import InputError


def examples_home() -> Path:
    return home() / "web" / "examples"


def start(host: str = "127.0.0.1", port: int | None = 7860, model: str | None = None, qa_model: str | None = None,
          backend: str = "transformers", retriever: str | None = None, planner_model: str | None = None,
          device: str = "cpu", allow_dir: list[str] = (), examples: bool = True) -> tuple[object, str, dict[str, float]]:
    """Check the settings, make the examples, load the agent, launch: (blocks, url, seconds)."""
    try:
        import gradio  # noqa: F401 - optional: the `web` extra
    except ImportError:
        raise InputError("groundqa web needs Gradio: pip install 'groundqa[web]'") from None
    from groundqa.web.inputs import clip_examples, shipped_clips_dir, synthetic_examples
    from groundqa.web.page import build, serve

    t0 = time.perf_counter()
    if port is not None and not 0 <= port <= 65535:
        raise InputError(f"--port must be 0..65535, got {port}")
    dirs = []
    for d in allow_dir or []:
        p = Path(d).expanduser().resolve()
        if not p.is_dir():
            raise InputError(f"--allow-dir {d}: not a folder")
        dirs.append(p)
    found = []
    if examples:
        found = synthetic_examples(examples_home()) + clip_examples(shipped_clips_dir())
    t_examples = time.perf_counter() - t0
    from agent.api import Agent

    agent = Agent(model, qa_model, planner_model, device=device, retriever=retriever, backend=backend)
    t_agent = time.perf_counter() - t0 - t_examples
    blocks = build(agent, dirs, found)
    try:
        url = serve(blocks, host=host, port=port or None)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc}") from None
    seconds = {"examples": round(t_examples, 2), "load": round(t_agent, 2),
               "total": round(time.perf_counter() - t0, 2)}
    return blocks, url, seconds


def register(app: typer.Typer) -> None:
    @app.command("web")
    def web(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
        port: int = typer.Option(7860, "--port", help="Port (0: any free one)."),
        model: str = typer.Option(None, "--model", help="Grounder model folder or name (default: embedded)."),
        backend: str = typer.Option("transformers", "--backend", help="The grounder's backend: transformers | openai "
                                    "(an OpenAI-compatible server at $OPENAI_BASE_URL serving --model)."),
        qa_model: str = typer.Option(None, "--qa-model", help="QA model folder or openai:MODEL (default: embedded)."),
        retriever: str = typer.Option(None, "--retriever", help="Frame-text retriever folder or name, or 'none'."),
        planner_model: str = typer.Option(None, "--planner-model", help="Text LLM folder or openai:MODEL."),
        allow_dir: list[str] = typer.Option(None, "--allow-dir", help="A folder whose videos the page may open "  # noqa: B008
                                            "by path (repeat); none by default, uploads always work."),
        examples: bool = typer.Option(True, "--examples/--no-examples",
                                      help="Offer examples (a 10-minute synthetic video, made once, and the "
                                           "real test clips of a checkout)."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        as_json: bool = typer.Option(False, "--json", help="Print {url, seconds} as one JSON line once it is up."),
    ) -> None:
        """A web page to ask questions about a video and see where the answer came from."""
        from grounder.cliutil import emit

        blocks, url, seconds = start(host, port, model, qa_model, backend, retriever, planner_model, device,
                                     allow_dir or [], examples)
        emit({"url": url, "seconds": seconds}, as_json,
             f"groundqa web: {url}  (up in {seconds['total']:.1f} s; Ctrl-C stops it)")
        try:
            while True:
                time.sleep(3600)
        finally:
            blocks.close()
