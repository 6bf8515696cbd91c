"""`groundqa ask`: answer a question about a video (or a JSONL file of questions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from grounder.errors import InputError


def skip_command(n: int) -> str:
    """This `groundqa ask --questions` command with `--skip n` in place of any earlier --skip."""
    import shlex

    from grounder.cliutil import ARGV

    args, i = [], 0
    while i < len(ARGV):
        if ARGV[i] == "--skip":
            i += 2
            continue
        if not ARGV[i].startswith("--skip="):
            args.append(ARGV[i])
        i += 1
    return "groundqa " + shlex.join([*args, "--skip", str(n)])


def read_questions(path: str) -> list[dict[str, Any]]:
    """Rows {"question", "options"?} of a JSONL file; a one-line InputError naming the bad line."""
    from agent.api import check_question

    p = Path(path)
    if not p.is_file():
        raise InputError(f"questions file not found: {path}")
    rows = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path} line {n}: expected an object with \"question\"")
        try:
            question, options = check_question(row.get("question"), row.get("options"))
        except InputError as exc:
            raise InputError(f"{path} line {n}: {exc}") from None
        rows.append({"question": question, "options": options})
    if not rows:
        raise InputError(f"{path} has no questions")
    return rows


class Display:
    """Streamed events -> a progress bar on stderr (a terminal, or GROUNDQA_PROGRESS=1)."""

    def __init__(self, enabled: bool) -> None:
        from grounder.cliutil import _force_progress, stderr

        self.enabled = enabled and (stderr.is_terminal or _force_progress())
        self.bar = None
        self.task = None
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.completed:.0f} calls"), TimeElapsedColumn(),
                                console=stderr, transient=True)

    def __enter__(self) -> Display:  # noqa: PYI034
        if self.bar is not None:
            self.bar.__enter__()
            self.task = self.bar.add_task("planning", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def __call__(self, ev: dict[str, Any]) -> None:
        if self.bar is None:
            return
        t = ev.get("type")
        if t == "round":
            self.bar.update(self.task, description=f"round {ev['round'] + 1}: {ev.get('query') or 'uniform'}"[:70])
        elif t == "window":
            self.bar.advance(self.task, 1)
        elif t == "decide" and ev["decision"] == "ground":
            self.bar.update(self.task, description="re-grounding (low confidence)")
        elif t == "qa":
            self.bar.update(self.task, description="answering")


def _human(answer: Any) -> str:
    head = f"answer: ({answer.choice}) {answer.answer}" if answer.choice else f"answer: {answer.answer}"
    lines = [f"{head}   confidence {answer.confidence:.3f}"]
    for i, s in enumerate(answer.segments[:5], 1):
        lines.append(f"  #{i} {s.start:.1f}-{s.end:.1f} s  score {s.score:.3f}")
    if not answer.segments:
        lines.append("  no segments")
    c = answer.cost
    lines.append(f"cost: {c['model_calls']} model calls, {c['frames']} frames, "
                 f"{c['visual_tokens']} visual tokens, {c['seconds']:.1f} s")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("ask")
    def ask(
        video: str = typer.Argument(..., help="Video file."),
        question: str = typer.Argument(None, help="The question."),
        option: list[str] = typer.Option(None, "--option", help="A multiple-choice option (repeat)."),  # noqa: B008
        questions: str = typer.Option(None, "--questions", help="JSONL file of {question, options?}."),
        skip: int = typer.Option(0, "--skip", help="With --questions: skip the file's first N questions "
                                 "(to go on after an interruption)."),
        model: str = typer.Option(None, "--model", help="Grounder model folder or name (default: embedded)."),
        backend: str = typer.Option("transformers", "--backend", help="The grounder's backend: transformers | openai "
                                    "(an OpenAI-compatible server at $OPENAI_BASE_URL serving --model)."),
        qa_model: str = typer.Option(None, "--qa-model", help="QA model folder or openai:MODEL (default: embedded)."),
        retriever: str = typer.Option(None, "--retriever", help="Frame-text retriever for the grounder's coarse "
                                      "pass: a CLIP / SigLIP folder or name, or 'none' (default: the model "
                                      "folder's own retriever/; the embedded default has one)."),
        planner_model: str = typer.Option(None, "--planner-model",
                                          help="Text LLM folder or openai:MODEL for the queries (default: rewrite)."),
        strategy: str = typer.Option("coarse-to-fine", "--strategy", help="coarse-to-fine | uniform | sliding"),
        session: str = typer.Option(
            None, "--session",
            help="Keep a conversation under this name ($GROUNDQA_HOME/sessions.sqlite, "
                 "GROUNDQA_HOME defaulting to ~/.cache/groundqa)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        trace: bool = typer.Option(False, "--trace", help="Include frame times and the trace in the JSON."),
        plot: str = typer.Option(None, "--plot", help="Write a timeline PNG of the segments here."),
        device: str = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda."),
        max_rounds: int = typer.Option(None, "--max-rounds", help="Grounding rounds at most."),
        max_calls: int = typer.Option(None, "--max-calls", help="Grounder model calls per round."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Grounder generation budget per call."),
        qa_max_new_tokens: int = typer.Option(None, "--qa-max-new-tokens", help="QA generation budget."),
    ) -> None:
        """Answer QUESTION about VIDEO from the moments where the answer happens."""
        from agent.api import Agent, check_question
        from agent.sessions import check_session
        from grounder.cliutil import command, emit, resumable, stderr
        from grounder.grounder import as_reader, check_strategy
        from grounder.scan import ScanBudget

        # Cheap checks first: bad input fails before any model loads.
        if questions is not None:
            if question is not None or option:
                raise InputError("give either QUESTION [--option ...] or --questions FILE, not both")
            rows = read_questions(questions)
            if not 0 <= skip < len(rows):
                raise InputError(f"--skip {skip}: {questions} has {len(rows)} question(s)")
            rows = rows[skip:]
        else:
            if skip:
                raise InputError("--skip goes with --questions FILE")
            q, opts = check_question(question, option or None)
            rows = [{"question": q, "options": opts}]
        if session is not None:
            check_session(session)
        strategy = check_strategy(strategy)
        reader = as_reader(video)
        if plot is not None and not Path(plot).resolve().parent.is_dir():
            raise InputError(f"cannot write the plot: folder of {plot!r} does not exist")
        overrides = {"max_calls": max_calls, "max_new_tokens": max_new_tokens}
        context: dict[str, Any] = {"strategy": strategy,
                                   "budget": ScanBudget(**{k: v for k, v in overrides.items() if v is not None})}
        if max_rounds is not None:
            context["max_rounds"] = max_rounds
        if qa_max_new_tokens is not None:
            context["qa_max_new_tokens"] = qa_max_new_tokens
        agent = Agent(model, qa_model, planner_model, device=device, retriever=retriever, backend=backend, **context)
        shown: set[str] = set()
        answered = 0

        def hint() -> str:
            kept = f"; session {session!r} keeps the answered turns" if session else ""
            if questions is None:
                return f"no answer{kept}; ask again: {command()}"
            return (f"{skip + answered} of {skip + len(rows)} questions answered (printed above){kept}; "
                    f"the rest: {skip_command(skip + answered)}")

        with resumable(hint):
            for row in rows:
                answer = None
                with Display(enabled=True) as display:
                    for ev in agent.stream(reader, row["question"], row["options"], session=session):
                        display(ev)
                        if ev["type"] == "result":
                            answer = ev["answer"]
                for w in answer.warnings:
                    if w not in shown:
                        shown.add(w)
                        stderr.print(f"groundqa: warning: {w}", markup=False, highlight=False, soft_wrap=True)
                if plot is not None and questions is None:
                    from grounder.plot import plot_timeline
                    from grounder.scan import GroundingResult

                    plot_timeline(GroundingResult(row["question"], strategy, float(reader.duration),
                                                  answer.segments), reader, plot)
                # each JSON line names its question: a file's answers can be read without the file
                emit({"question": row["question"], **answer.to_dict(trace=trace)}, as_json or questions is not None,
                     _human(answer))
                answered += 1
