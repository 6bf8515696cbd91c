"""The ground-then-answer agent (LangGraph graph, QA answerer, Python API, `ask`)."""
