"""Integrations with inference frameworks (HuggingFace transformers; vLLM to come)."""
