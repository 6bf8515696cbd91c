"""`groundqa web`: a page to try the agent in a browser (Gradio, the optional extra `groundqa[web]`).

| module | what |
|---|---|
| `page.py` | the Gradio Blocks: inputs, the streamed steps, the result panes, launching on loopback |
| `render.py` | the result panes as HTML from the agent's events and `Answer` (pure) |
| `inputs.py` | video upload / server path / examples, the options box: cheap one-line checks |
| `cli.py` | the `groundqa web` command |
"""

import os

# Before Gradio is imported anywhere: no analytics and no version check leave this machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
