"""The OpenAI-compatible hybrid router: in-cluster vLLM plus hosted gpt-oss providers.

Layout: ``config`` (file model) -> ``selection`` / ``load`` / ``providers`` / ``sse`` (pure
decisions) -> ``pool`` / ``upstream`` / ``scrape`` / ``endpointslices`` / ``keys`` / ``reload``
(I/O) -> ``proxy`` / ``exchange`` / ``app`` (ASGI) -> ``cli``. It never imports kopf or the
operator's controller (an import-linter contract enforces this).
"""
