"""The ground-then-answer agent (LangGraph graph, QA answerer, Python API, `ask`).

    from agent import Agent, Answer, ask

Heavy imports (torch, transformers, langgraph) happen on first use, not on `import agent`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Agent", "Answer", "ask"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from agent import api

        return getattr(api, name)
    raise AttributeError(name)
