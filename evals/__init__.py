"""Metrics, benchmark loaders, the synthetic long-video world, the runner, reports, benches."""
