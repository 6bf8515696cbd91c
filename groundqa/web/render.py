"""The page's result panes as HTML, from the agent's events and its `Answer`. Pure: no Gradio here.

Element contract (tests and users drive the page by it): in `timeline`, every final segment is
an element with class `segment` and `data-start` / `data-end` in seconds (clicking one seeks the
`video` player there, `page.SEEK_JS`); candidate windows of the coarse pass have class `coarse`
and the true span of a known item class `truth`, neither with `data-start`.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any

from grounder.qa_inputs import LETTERS

NOT_SURE = 0.25  # below this overall confidence the page says "not sure" beside the answer


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def span_text(start: float, end: float) -> str:
    return f"{start:.1f}–{end:.1f} s"


# -- steps ---------------------------------------------------------------------------------------
@dataclass
class Step:
    kind: str  # plan | coarse | zoom | found | decide | qa | answer
    title: str
    text: str
    seconds: float  # how long the step took (events arrive when the work they report is done)
    round: int | None = None


@dataclass
class StepLog:
    """The agent's events folded into the steps a person follows: plan -> (per round: coarse pass
    -> zoom -> found -> decide) -> QA -> answer. Window events of one round and level are one step
    that grows ("3 model calls ..."), so the list stays short."""

    t0: float = field(default_factory=time.perf_counter)
    steps: list[Step] = field(default_factory=list)
    last: float = 0.0  # the time of the previous event, relative to t0
    coarse_windows: list[dict[str, float]] = field(default_factory=list)  # all rounds' windows
    calls: dict[tuple[int, str], int] = field(default_factory=dict)

    def _took(self, now: float | None) -> float:
        t = (time.perf_counter() - self.t0) if now is None else now
        took, self.last = max(0.0, t - self.last), t
        return took

    def add(self, ev: dict[str, Any], now: float | None = None) -> bool:
        """Fold one event in; True when the visible steps changed. `now`: seconds since t0 (tests)."""
        t = ev.get("type")
        r = ev.get("round")
        if t == "plan":
            qs = " · ".join(f"“{q}”" for q in ev.get("queries", []))
            self.steps.append(Step("plan", "Plan", f"{len(ev.get('queries', []))} grounding queries "
                            f"({ev.get('planner', '')}): {qs}", self._took(now)))
        elif t == "round":
            if ev.get("strategy") == "uniform":
                self.steps.append(Step("coarse", f"Round {r + 1}", "no grounding: the uniform baseline reads frames "
                                "spread over the whole video", self._took(now), r))
            else:
                self._took(now)  # a round starts: nothing done yet
        elif t == "coarse":
            wins = ev.get("windows", [])
            self.coarse_windows.extend(wins)
            where = ", ".join(span_text(w["start"], w["end"]) for w in wins[:5])
            more = f" (+{len(wins) - 5})" if len(wins) > 5 else ""
            cached = "index from the cache" if ev.get("from_cache") else f"{ev.get('frames_embedded', 0)} frames embedded"
            self.steps.append(Step("coarse", f"Round {r + 1} · coarse pass",
                            f"retrieval kept {len(wins)} candidate windows ({cached}): {where}{more}",
                            self._took(now), r))
        elif t == "window":
            kind = "zoom" if int(ev.get("level", 1)) >= 1 else "coarse"
            key = (r, kind)
            self.calls[key] = self.calls.get(key, 0) + 1
            n = self.calls[key]
            conf = ev.get("confidence")
            last = f"last {span_text(ev['start'], ev['end'])}" + (f", confidence {conf:.2f}" if conf is not None else "")
            title = f"Round {r + 1} · " + ("zoom" if kind == "zoom" else "coarse pass (model)")
            text = f"{n} model call{'s' if n != 1 else ''} ({last})"
            prev = self.steps[-1] if self.steps else None
            if prev is not None and prev.kind == kind and prev.round == r and prev.title == title:
                prev.text, prev.seconds = text, prev.seconds + self._took(now)
            else:
                self.steps.append(Step(kind, title, text, self._took(now), r))
        elif t == "candidates":
            segs = ev.get("segments", [])
            best = (f"; best {span_text(segs[0]['start'], segs[0]['end'])} (score {segs[0]['score']:.2f})"
                    if segs else "")
            self.steps.append(Step("found", f"Round {r + 1} · found", f"{len(segs)} segments{best}", self._took(now), r))
        elif t == "decide":
            verb = "answer" if ev.get("decision") == "answer" else "look again"
            self.steps.append(Step("decide", "Decide", f"{verb}: {ev.get('reason', '')}", self._took(now), r))
        elif t == "qa":
            segs = ev.get("segments", [])
            where = ", ".join(span_text(s["start"], s["end"]) for s in segs) or "frames spread over the video"
            self.steps.append(Step("qa", "QA", f"reading {where}", self._took(now)))
        elif t == "answer":
            qa = self.steps[-1] if self.steps and self.steps[-1].kind == "qa" else None
            took = self._took(now)
            if qa is not None:
                qa.seconds += took
            head = f"({ev['choice']}) {ev['answer']}" if ev.get("choice") else str(ev.get("answer", ""))
            self.steps.append(Step("answer", "Answer", head, 0.0))
        else:
            return False
        return True

    def html(self, running: bool = True) -> str:
        items = "".join(
            f'<li data-step="{esc(s.kind)}"><b>{esc(s.title)}</b> <span class="gq-text">{esc(s.text)}</span>'
            f' <span class="gq-secs">{s.seconds:.2f} s</span></li>' for s in self.steps)
        tail = '<li class="gq-running">working…</li>' if running else ""
        return f'<ol class="gq-steps">{items}{tail}</ol>'


# -- answer, cost ---------------------------------------------------------------------------------
def answer_html(answer: Any, options: list[str] | None, truth: dict[str, Any] | None = None,
                turn: int = 1) -> str:
    """The answer, its choice and each option's score (when the QA model gives them), confidence with
    a plain "not sure" when it is low, warnings, and for a known item the true answer and span."""
    d = answer.to_dict(trace=True)
    qa = (d.get("trace") or {}).get("qa") or {}
    scores = qa.get("option_scores")
    head = f"({d['choice']}) {d['answer']}" if d.get("choice") else d["answer"]
    conf = float(d.get("confidence") or 0.0)
    sure = "" if conf >= NOT_SURE else ' <span class="gq-unsure">not sure</span>'
    parts = [f'<div class="gq-head">{esc(head)}</div>',
             f'<div class="gq-conf">confidence {conf:.2f}{sure}</div>']
    if options:
        rows = []
        for i, o in enumerate(options):
            mark = " gq-chosen" if d.get("choice") == LETTERS[i] else ""
            sc = f"{float(scores[i]):.2f}" if scores and i < len(scores) else "—"
            rows.append(f'<tr class="gq-option{mark}"><td>({LETTERS[i]})</td><td>{esc(o)}</td>'
                        f'<td class="gq-score">{sc}</td></tr>')
        parts.append(f'<table class="gq-options"><tr><th></th><th>option</th><th>score</th></tr>{"".join(rows)}</table>')
    if truth:
        ok = ""
        if truth.get("choice") is not None:
            right = d.get("choice") == truth["choice"]
            ok = (f'<div class="gq-truth">true answer: ({truth["choice"]}) {esc(truth["answer"])} — '
                  f'{"right" if right else "wrong"}</div>')
        spans = ", ".join(span_text(a, b) for a, b in truth.get("spans", []))
        iou = truth.get("iou")
        ok += (f'<div class="gq-truth">true span: {spans}'
               + (f"; top segment IoU {iou:.2f}" if iou is not None else "") + "</div>")
        parts.append(ok)
    for w in d.get("warnings", []):
        parts.append(f'<div class="gq-warning">⚠ {esc(w)}</div>')
    if turn > 1:
        parts.append(f'<div class="gq-turn">follow-up #{turn - 1} in this conversation</div>')
    return f'<div class="gq-answer">{"".join(parts)}</div>'


def cost_html(cost: dict[str, Any], wall: float | None = None) -> str:
    secs = f"{float(cost.get('seconds', 0.0)):.2f} s"
    if wall is not None:
        secs += f" ({wall:.2f} s on the page)"
    cells = [("frames decoded", cost.get("frames", 0)), ("model calls", cost.get("model_calls", 0)),
             ("visual tokens", cost.get("visual_tokens", 0)), ("seconds", secs)]
    if cost.get("embedder_frames"):
        cells.append(("frames embedded (retrieval)", cost["embedder_frames"]))
    body = "".join(f'<span class="gq-cost-item"><b>{esc(v)}</b> {esc(k)}</span>' for k, v in cells)
    return f'<div class="gq-cost">{body}</div>'


# -- timeline -------------------------------------------------------------------------------------
def _pct(x: float, duration: float) -> float:
    return round(100.0 * min(max(x, 0.0), duration) / duration, 4)


def _block(cls: str, start: float, end: float, duration: float, label: str, attrs: str = "") -> str:
    left = _pct(start, duration)
    width = max(_pct(end, duration) - left, 0.4)  # a short segment stays visible and clickable
    return (f'<div class="{cls}" {attrs} style="left:{left}%;width:{width}%" '
            f'title="{esc(label)}"></div>')


def timeline_html(duration: float, segments: list[dict[str, float]], coarse: list[dict[str, float]] = (),
                  truth: list[list[float]] | None = None, max_segments: int = 5) -> str:
    """Whole-video lanes (candidate windows, final segments, the truth when known) and a list of the
    final segments; every final segment element carries data-start / data-end and seeks the player."""
    duration = max(float(duration), 1e-6)
    lanes = []
    lanes.append('<div class="gq-lane" data-lane="coarse"><span class="gq-lane-name">coarse</span>'
                 + "".join(_block("coarse", w["start"], w["end"], duration,
                                  f"candidate window {span_text(w['start'], w['end'])} (retrieval {w.get('score', 0):.2f})")
                           for w in coarse) + "</div>")
    shown = segments[:max_segments]
    seg_blocks = []
    for i, s in enumerate(shown, 1):
        attrs = f'data-start="{s["start"]:.3f}" data-end="{s["end"]:.3f}" data-rank="{i}"'
        seg_blocks.append(_block("segment", s["start"], s["end"], duration,
                                 f"#{i} {span_text(s['start'], s['end'])} score {s['score']:.2f} — click to play", attrs))
    lanes.append('<div class="gq-lane" data-lane="segments"><span class="gq-lane-name">found</span>'
                 + "".join(seg_blocks) + "</div>")
    if truth:
        lanes.append('<div class="gq-lane" data-lane="truth"><span class="gq-lane-name">truth</span>'
                     + "".join(_block("truth", a, b, duration, f"true span {span_text(a, b)}") for a, b in truth)
                     + "</div>")
    axis = "".join(f'<span style="left:{_pct(duration * k / 4, duration)}%">{duration * k / 4:.0f} s</span>'
                   for k in range(5))
    buttons = "".join(
        f'<button type="button" class="segment gq-seg-button" data-start="{s["start"]:.3f}" '
        f'data-end="{s["end"]:.3f}" data-rank="{i}">#{i} {span_text(s["start"], s["end"])} · '
        f'{s["score"]:.2f} ▶</button>' for i, s in enumerate(shown, 1))
    if not shown:
        buttons = '<span class="gq-none">no segment found</span>'
    legend = ('<div class="gq-legend">coarse: the candidate windows the coarse pass kept · found: the final '
              'segments, best first (click one to play it)' + (" · truth: the true span" if truth else "") + "</div>")
    return (f'<div class="gq-timeline" data-duration="{duration:.3f}">{"".join(lanes)}'
            f'<div class="gq-axis">{axis}</div><div class="gq-seglist">{buttons}</div>{legend}</div>')


def frame_captions(times: list[float], limit: int) -> list[float]:
    """At most `limit` of the QA model's frame times, evenly spread (all of them when they fit)."""
    if len(times) <= limit:
        return list(times)
    step = (len(times) - 1) / (limit - 1)
    return [times[round(i * step)] for i in range(limit)]
