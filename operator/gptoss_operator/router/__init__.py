"""The OpenAI-compatible hybrid router: in-cluster vLLM plus hosted gpt-oss providers.

Layout: ``config`` (file model) -> ``runtime`` (live backends of one configuration) ->
``selection`` / ``load`` / ``providers`` / ``sse`` (pure decisions) -> ``state`` (the configuration in
use, swapped on reload) -> ``pool`` / ``upstream`` / ``scrape`` / ``endpointslices`` / ``keys`` / ``reload``
(I/O) -> ``proxy`` / ``exchange`` / ``app`` (ASGI); the command is ``commands/router.py``. It never imports kopf or the
operator's controller (an import-linter contract enforces this).
"""
