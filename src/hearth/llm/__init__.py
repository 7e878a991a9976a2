"""LLM connections behind one interface (``adapter.py``): Ollama and OpenAI-compatible
servers over HTTP, chosen from the runtime values (``provider.py``)."""
