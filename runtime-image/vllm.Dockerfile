# syntax=docker/dockerfile:1.7
# vLLM for gpt-oss: the pinned upstream image (the operator's default NVIDIA image,
# operator/gptoss_operator/planning/settings.py, docs/vllm-versions.md) plus the tiktoken
# encodings gpt-oss needs, so pods start in clusters without internet access.
#
#   docker buildx build -f runtime-image/vllm.Dockerfile -t IMAGE runtime-image   (docs/images.md)
#
# Model weights are never baked in: they come from the ModelDeployment's cache PVC or the Hub.
FROM vllm/vllm-openai:v0.33.0

# openai_harmony (gpt-oss's chat format) loads o200k_base at start, from the internet unless
# TIKTOKEN_ENCODINGS_BASE names a directory holding it; air-gapped pods otherwise fail with
# "HarmonyError: error downloading or loading vocab file" (openai/harmony PR #41; vLLM's gpt-oss
# recipe, docs.vllm.ai/projects/recipes/en/latest/OpenAI/GPT-OSS.html). cl100k_base too, for
# tools that count tokens with it. The checksums are tiktoken's own (tiktoken_ext/openai_public.py).
ADD --checksum=sha256:446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d \
    https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken /etc/tiktoken/o200k_base.tiktoken
ADD --checksum=sha256:223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7 \
    https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken /etc/tiktoken/cl100k_base.tiktoken

# A non-root user with a writable home: vLLM, Triton, FlashInfer and torch.compile write their
# caches under $HOME/.cache. Group 0 owns it and may write (OpenShift's arbitrary-uid rule), so
# a pod's runAsUser may differ. The Hugging Face cache is the operator's volume (HF_HOME).
RUN useradd --uid 2000 --gid 0 --create-home --home-dir /home/vllm vllm \
 && chmod 0644 /etc/tiktoken/*.tiktoken \
 && chmod -R g=u /home/vllm

ENV TIKTOKEN_ENCODINGS_BASE=/etc/tiktoken \
    HOME=/home/vllm

ARG VERSION=v0.33.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="gptoss-vllm" \
      org.opencontainers.image.description="vLLM for OpenAI's gpt-oss models, with tiktoken encodings for air-gapped clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="vllm/vllm-openai:v0.33.0"

USER 2000:0
# The upstream ENTRYPOINT (`vllm serve`) is kept: the operator passes the model and flags as args.
