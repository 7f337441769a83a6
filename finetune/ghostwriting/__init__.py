"""What a checkpoint writes, measured: copying, style, prompt-following, diversity."""
