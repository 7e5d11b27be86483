"""Rules for the Dockerfiles in runtime-image/ that no build here can check.

The vLLM image cannot be built on these machines (its upstream base lives in a registry we
cannot reach), so its rules are read from the Dockerfile: the pinned base is the operator's
default image, the tiktoken encodings are baked and found through TIKTOKEN_ENCODINGS_BASE,
no secret and no model weights go into a layer, and it runs as a non-root user. The operator
image is also built and run for real (tests/cluster/test_operator_image.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from devtools.images import OPERATOR_DOCKERFILE, VLLM_DOCKERFILE
from gptoss_operator.planning.settings import DEFAULT_NVIDIA_IMAGE

Instruction = tuple[str, str]  # (INSTRUCTION, rest of the line, continuations joined)

# Variable names whose words say "secret" (HF_TOKEN, OPENAI_API_KEY; TIKTOKEN_... is fine).
SECRET_WORDS = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIALS", "APIKEY"}
# Hugging Face and OpenAI-style key shapes, in case one is pasted into a RUN line.
KEY_SHAPES = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,})\b")
WEIGHTS = re.compile(r"(\.safetensors|\.bin\b|\.gguf|snapshot_download|huggingface-cli download|hf download)")


def parse(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, backslash continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path}: a continuation line runs off the end"
    return instructions


def env_names(instructions: list[Instruction]) -> dict[str, str]:
    names: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for word in shlex.split(rest):
                name, _, value = word.partition("=")
                names[name] = value
    return names


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def test_the_parser_joins_continuations_and_drops_comments(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text("# c\nFROM a:b\nENV A=1 \\\n    # inner\n    B=2\nUSER 1:1\n")
    assert parse(f) == [("FROM", "a:b"), ("ENV", "A=1  B=2"), ("USER", "1:1")]


def test_vllm_image_is_the_planners_default_pinned_tag() -> None:
    froms = [rest for keyword, rest in parse(VLLM_DOCKERFILE) if keyword == "FROM"]
    assert froms == [DEFAULT_NVIDIA_IMAGE], "the vLLM image must build FROM the planner's default image"
    assert re.search(r":v\d+\.\d+\.\d+$", DEFAULT_NVIDIA_IMAGE), "a pinned release tag, not latest/nightly"
    labels = " ".join(rest for keyword, rest in parse(VLLM_DOCKERFILE) if keyword == "LABEL")
    assert f'org.opencontainers.image.base.name="{DEFAULT_NVIDIA_IMAGE}"' in labels


def test_vllm_image_bakes_tiktoken_encodings_with_checksums() -> None:
    instructions = parse(VLLM_DOCKERFILE)
    base = env_names(instructions).get("TIKTOKEN_ENCODINGS_BASE")
    assert base, "TIKTOKEN_ENCODINGS_BASE is not set"
    adds = [rest for keyword, rest in instructions if keyword in ("ADD", "COPY")]
    for encoding in ("o200k_base", "cl100k_base"):  # gpt-oss's harmony format needs o200k_base
        matching = [a for a in adds if a.endswith(f"{base}/{encoding}.tiktoken")]
        assert matching, f"{encoding}.tiktoken is not baked into {base}"
        assert re.search(r"--checksum=sha256:[0-9a-f]{64}", matching[0]), f"{encoding}: no checksum"


def test_secret_names_are_recognised() -> None:
    def words(name: str) -> set[str]:
        return set(name.split("_"))

    assert SECRET_WORDS & words("HF_TOKEN")
    assert SECRET_WORDS & words("OPENAI_API_KEY")
    assert not SECRET_WORDS & words("TIKTOKEN_ENCODINGS_BASE")


def test_vllm_image_has_no_secrets_and_no_weights() -> None:
    instructions = parse(VLLM_DOCKERFILE)
    for keyword, rest in instructions:
        if keyword in ("ENV", "ARG"):
            names = [w.partition("=")[0] for w in shlex.split(rest)]
            secret = [n for n in names if SECRET_WORDS & set(n.upper().split("_"))]
            assert not secret, f"{keyword} {rest}: a secret in a layer"
        assert not KEY_SHAPES.search(rest), f"{keyword}: a key in the Dockerfile"
        assert not WEIGHTS.search(rest), f"{keyword} {rest}: model weights are never baked"


def test_images_run_as_non_root() -> None:
    for path, expected in ((VLLM_DOCKERFILE, None), (OPERATOR_DOCKERFILE, "65532:65532")):
        users = [rest for keyword, rest in final_stage(parse(path)) if keyword == "USER"]
        assert users, f"{path.name}: no USER"
        user = users[-1].split(":")[0]
        assert user not in ("0", "root"), f"{path.name}: runs as root"
        assert user.isdigit(), f"{path.name}: a numeric uid, so runAsNonRoot can check it"
        if expected:
            assert users[-1] == expected


def test_operator_image_rules() -> None:
    instructions = parse(OPERATOR_DOCKERFILE)
    args = [rest for keyword, rest in instructions if keyword == "ARG"]
    assert any(a.startswith("BASE=") for a in args), "the base image is a build argument"
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) == 2, "a builder and a final stage"
    assert all(f.startswith("${BASE}") for f in froms), "both stages on BASE"
    final = final_stage(instructions)
    env = env_names(final)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PIP_NO_CACHE_DIR") == "1"
    assert ("ENTRYPOINT", '["gptoss-operator"]') in final
    assert not [rest for keyword, rest in final if keyword == "RUN"], "the final stage only copies the venv"
    labels = " ".join(rest for keyword, rest in final if keyword == "LABEL")
    for key in ("title", "description", "licenses", "version", "revision", "created", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
