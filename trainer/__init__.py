"""Training the grounder: datasets, rewards, token-aware KL, SFT, GRPO, difficulty, recipes."""
