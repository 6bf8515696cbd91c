"""plan: a question -> grounding queries (what to look for, in the order to try them).

Without a planner model, `rewrite` (deterministic, documented below) turns the question into
statements of *when*; with one (`--planner-model`), a text LLM writes them and `rewrite` is the
fallback when its output has no usable line.

The deterministic rewrite
-------------------------
1. Normalise: lower case, one line, no trailing "?"; drop "right / just / immediately /
   exactly / shortly" before "after / before" ("right after" -> "after").
2. Main query: strip the question words at the front - an optional preposition, the wh-word
   (what, which, who, where, why, how [many|much|long|often]), up to two words naming what is
   asked ("colour", "side", "circles") and the auxiliary (is, are, was, does, did, ...):
   "what colour is the shape that enters after X" -> "the shape that enters after X".
   Then, if the rest is "the/a NOUN... that|which|who VERB ...", it becomes
   "when does the NOUN... VERB(base form) ...": -> "when does the shape enter after X".
   After do/does/did the rest is already "SUBJECT VERB ...": -> "when does SUBJECT VERB ...".
   After is/are with a noun asked about, that noun is the subject: "how many circles are on
   screen when X" -> "circles on screen when X". "which shape appears before X" ->
   "when does a shape appear before X". Otherwise the stripped rest is the query
   ("what happens after X" -> "after X").
3. Anchor query: the clause after a temporal connective (after, before, when, while, during,
   until, as soon as, once), turned into "when does SUBJECT VERB(base) ...": the answer lies
   next to that event, which is often easier to find than the asked-about thing.
4. The question itself, cleaned, last.
Duplicates are dropped; `decide` tries the queries in this order across rounds.
Nothing here is keyed to one dataset: it is English question grammar only.

Follow-ups (a session's later questions, `follow_up`): a question that refers back ("and what
colour is it?", "what happens after that?": a pronoun, "that", "then") is about the earlier
turn's moment, so the earlier turn's first query goes first, then the question's own. A planner
model also sees the last turns (question, answer, top moment) in its prompt.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from grounder.errors import ModelError, one_line

_FILLERS = re.compile(r"\b(?:right|just|immediately|exactly|shortly|directly)\s+(?=after\b|before\b)")
_WH = re.compile(
    r"^(?:(?:from|in|on|at|to|through|by|with|into|for)\s+)?"
    r"(?:what|which|who|whom|whose|where|why|how(?:\s+(?:many|much|long|often))?)"
    r"((?:\s+[\w'-]+){0,2}?)\s+"
    r"(is|are|was|were|does|do|did|has|have|had|can|could|will|would)\s+(.*)$"
)
_WH_VERB = re.compile(r"^(?:which|what)\s+([\w'-]+)\s+(\w+s)\b(.*)$")
_WH_BARE = re.compile(r"^(?:what|which|who)\s+(?:happens|happened|occurs|changes)\s+(.*)$")
_RELATIVE = re.compile(r"^((?:the|a|an)\s+(?:[\w'-]+\s+){0,4}?[\w'-]+)\s+(?:that|which|who)\s+(\w+)(.*)$")
_CONNECTIVE = re.compile(r"\b(?:after|before|when|while|during|until|as soon as|once)\s+(.+)$")
_SUBJECT_VERB = re.compile(r"^((?:the|a|an|another|each)\s+(?:[\w'-]+\s+){0,4}?[\w'-]+)\s+(\w+s)\b(.*)$")
_NOT_VERBS = {"is", "was", "has", "does", "its", "this", "his", "as", "us", "yes"}


def base_verb(word: str) -> str:
    """Third-person singular -> base form, by spelling: enters -> enter, crosses -> cross,
    carries -> carry, leaves -> leave. Words not ending in s are returned unchanged."""
    w = word.lower()
    if w in ("is", "are", "was", "were"):
        return "be"
    if w == "has":
        return "have"
    if w == "does":
        return "do"
    if len(w) > 3 and w.endswith("ies"):
        return w[:-3] + "y"
    if re.search(r"(?:ss|sh|ch|x|z|o)es$", w):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 2:
        return w[:-1]
    return w


def normalise(question: str) -> str:
    text = " ".join(str(question).split()).lower().rstrip(" ?.!")
    return _FILLERS.sub("", text)


def _when(clause: str) -> str | None:
    """'the orange triangle leaves (through the top)' -> 'when does the orange triangle leave ...'."""
    m = _SUBJECT_VERB.match(clause.strip())
    if m and m.group(2) not in _NOT_VERBS:
        return f"when does {m.group(1)} {base_verb(m.group(2))}{m.group(3)}".strip()
    return None


def main_query(text: str) -> str:
    m = _WH.match(text)
    if m:
        aux, rest = m.group(2), m.group(3).strip()
        rel = _RELATIVE.match(rest)
        if rel and rel.group(2) not in _NOT_VERBS:
            return f"when does {rel.group(1)} {base_verb(rel.group(2))}{rel.group(3)}".strip()
        if aux in ("does", "do", "did"):
            return f"when does {rest}"
        noun = m.group(1).strip()
        if not re.match(r"(?:the|a|an|this|that|these|those)\b", rest):
            # "how many circles are on screen ..." -> "circles on screen ..."; "who is ..." -> "someone ..."
            subject = noun or ("someone" if text.startswith("who") else "")
            return f"{subject} {rest}".strip()
        return rest
    m = _WH_VERB.match(text)
    if m and m.group(2) not in _NOT_VERBS:
        return f"when does a {m.group(1)} {base_verb(m.group(2))}{m.group(3)}".strip()
    m = _WH_BARE.match(text)
    if m:
        return m.group(1).strip()
    return text


def anchor_query(text: str) -> str | None:
    m = _CONNECTIVE.search(text)
    if not m:
        return None
    clause = m.group(1).strip()
    return _when(clause) or clause


def rewrite(question: str, max_queries: int = 3) -> list[str]:
    """The deterministic rewrite (module docstring): main query, anchor query, the question."""
    text = normalise(question)
    out: list[str] = []
    for q in (main_query(text), anchor_query(text), text):
        q = " ".join((q or "").split())
        if q and len(q.split()) >= 2 and q not in out:
            out.append(q)
    return out[:max_queries] or [text]


_REFERS_BACK = re.compile(r"\b(?:it|its|they|them|their|he|she|him|her|his|that|this|those|these|then|there|"
                          r"same|again|also)\b")


# words after which "that" points back ("after that", "is that", "what did that ..."); after any other
# word it is a relative pronoun ("the shape that enters ...") and says nothing about earlier turns
_THAT_POINTS_AFTER = {"after", "before", "at", "of", "in", "on", "from", "during", "like", "than", "about",
                      "with", "to", "by", "for", "and", "then", "is", "was", "are", "were", "does", "did", "do",
                      "when", "what", "where", "why", "how", "who", "see", "saw", "seen", "happen", "happens"}


def refers_back(question: str) -> bool:
    """Whether a question points at something said before (a pronoun, "that", "then", ...)."""
    text = normalise(question)
    for m in _REFERS_BACK.finditer(text):
        before = text[: m.start()].split()
        if m.group(0) != "that" or not before or before[-1] in _THAT_POINTS_AFTER:
            return True
    return False


def follow_up(queries: list[str], question: str, history: Sequence[dict[str, Any]],
              max_queries: int = 3) -> tuple[list[str], bool]:
    """(queries, used): the earlier turn's first query before the question's own when the question
    refers back and there is an earlier turn (pure; module docstring)."""
    if not history or not refers_back(question):
        return queries, False
    last = history[-1]
    earlier = list(last.get("queries") or []) or rewrite(str(last.get("question", "")), max_queries)
    out: list[str] = []
    for q in earlier[:1] + list(queries):
        if q and q not in out:
            out.append(q)
    return out[: max_queries + 1], True


def history_lines(history: Sequence[dict[str, Any]], turns: int = 3) -> str:
    """The last turns as prompt lines: question, answer, top moment."""
    lines = []
    for h in list(history)[-turns:]:
        seg = (h.get("segments") or [None])[0]
        at = f" (seen at {seg['start']:.1f}-{seg['end']:.1f} s)" if seg else ""
        lines.append(f"Earlier question: {h.get('question', '')} -> answer: {h.get('answer', '')}{at}")
    return "\n".join(lines)


# -- planner models ------------------------------------------------------------------------
PLANNER_PROMPT = (
    "Rewrite the question about a video as short search queries that describe the moment in "
    "the video where the answer can be seen, most useful first, one per line, at most {n} "
    "lines, no numbering. Example: question 'what colour is the shape that enters right after "
    "the orange triangle leaves?' -> 'when does the next shape enter after the orange triangle "
    "leaves' and 'when does the orange triangle leave'.\nQuestion: {question}\nQueries:"
)


def parse_queries(text: str, max_queries: int = 3) -> list[str]:
    """Lines of a planner model's output -> queries (bullets/numbers stripped, 2..30 words)."""
    out: list[str] = []
    for line in str(text).splitlines():
        q = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)]|queries?:)\s*", "", line).strip().strip("'\"`").strip()
        q = " ".join(q.split()).rstrip(" ?.")
        if 2 <= len(q.split()) <= 30 and q.lower() not in (o.lower() for o in out):
            out.append(q)
    return out[:max_queries]


@dataclass
class Planner:
    """Queries from a text LLM: `generate(prompt) -> text`; falls back to `rewrite`.

    `generate` is any callable; `from_spec` builds one for a transformers causal LM folder
    (or hub name when online) or an OpenAI-compatible server ("openai:MODEL", base URL from
    $OPENAI_BASE_URL, key from $OPENAI_API_KEY).
    """

    generate: Callable[[str], str]
    name: str = "llm"
    max_queries: int = 3
    calls: int = field(default=0)

    def __call__(self, question: str, history: Sequence[dict[str, Any]] = ()) -> tuple[list[str], str]:
        """(queries, note): note says which planner made them and any fallback."""
        prompt = PLANNER_PROMPT.format(n=self.max_queries, question=" ".join(question.split()))
        if history:  # a follow-up's "it" / "that" means something only with the earlier turns
            prompt = history_lines(history) + "\n" + prompt
        self.calls += 1
        try:
            text = self.generate(prompt)
        except Exception as exc:  # noqa: BLE001 - a planner outage must not lose the question
            return rewrite(question, self.max_queries), f"rewrite ({self.name} failed: {exc})"
        queries = parse_queries(text, self.max_queries)
        if not queries:
            return rewrite(question, self.max_queries), f"rewrite ({self.name} gave no usable query)"
        return queries, self.name

    @classmethod
    def from_spec(cls, spec: str, device: str = "cpu", max_new_tokens: int = 48) -> Planner:
        if spec.startswith("openai:"):
            return cls(openai_generate(spec.removeprefix("openai:")), name=spec)
        return cls(transformers_generate(spec, device, max_new_tokens), name=spec)


def transformers_generate(path: str, device: str = "cpu", max_new_tokens: int = 48) -> Callable[[str], str]:
    """Greedy generation with any transformers causal LM (chat template when it has one)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    except Exception as exc:  # noqa: BLE001 - bad folder / offline name: one line
        first = one_line(exc)
        raise ModelError(f"cannot load planner model {path!r}: {first}") from None

    def generate(prompt: str) -> str:
        import torch

        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True)
        else:
            text = prompt
        ids = tok(text, return_tensors="pt").to(device)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    return generate


def openai_generate(model: str) -> Callable[[str], str]:
    """Chat completions on an OpenAI-compatible server ($OPENAI_BASE_URL, $OPENAI_API_KEY)."""
    base = os.environ.get("OPENAI_BASE_URL", "http://localhost:8000/v1").rstrip("/")
    key = os.environ.get("OPENAI_API_KEY", "none")

    def generate(prompt: str) -> str:
        body = json.dumps({"model": model, "temperature": 0, "max_tokens": 96,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        req = urllib.request.Request(f"{base}/chat/completions", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=60) as resp:  # a user-configured URL
            return json.loads(resp.read())["choices"][0]["message"]["content"]

    return generate
