"""Temporal grounding for long videos: video access, spans, prompts, model backends, scans.

`grounder` imports none of groundqa's other packages (see docs/architecture.md, "Layers").
"""
