"""GPT-2 (Hugging Face transformers) as a model kind: base loading, token data, the adapter."""
