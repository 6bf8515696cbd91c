"""`groundqa ground`: find when a query happens in a video."""

from __future__ import annotations

import typer

from grounder.errors import GroundQAError


def register(app: typer.Typer) -> None:
    @app.command("ground")
    def ground(
        video: str = typer.Argument(..., help="Video file."),
        query: str = typer.Argument(..., help="What to find, e.g. 'the red circle enters'."),
        model: str = typer.Option(None, "--model", help="Model folder or name (default: embedded)."),
        strategy: str = typer.Option("coarse-to-fine", "--strategy", help="coarse-to-fine | uniform | sliding"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Find the time segments of VIDEO that match QUERY."""
        raise GroundQAError("`groundqa ground` is not built yet (issue #3: the grounder)")

    @app.command("info")
    def info(
        video: str = typer.Argument(..., help="Video file."),
        backend: str = typer.Option(None, "--backend", help="pyav (default) | decord | torchcodec"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Show a video's duration, frame rate, size and streams (reads the header only)."""
        from grounder.cliutil import emit
        from grounder.video import open_video

        with open_video(video, backend=backend) as reader:
            out = {
                "path": str(reader.path), "duration": reader.duration, "fps": reader.fps,
                "num_frames": reader.num_frames, "width": reader.width, "height": reader.height,
                "has_audio": reader.has_audio, "backend": reader.backend,
            }
        human = (f"{out['path']}: {out['duration']:.2f} s, {out['fps']:.3f} fps, {out['num_frames']} frames, "
                 f"{out['width']}x{out['height']}, audio: {'yes' if out['has_audio'] else 'no'}")
        emit(out, as_json, human)
