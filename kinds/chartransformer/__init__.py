"""A small character-level transformer (nanoGPT's shape) as a model kind."""
