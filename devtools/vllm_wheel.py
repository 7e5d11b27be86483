"""Read a vLLM release's CLI flags, env var names and parser names from its wheel, without importing it.

The wheel comes from PyPI through pip (``pip download vllm==X --no-deps --only-binary=:all:``) and is
cached outside the repository, one directory per version. Importing vLLM would need torch and CUDA;
reading the source with :mod:`zipfile` and :mod:`ast` needs neither and takes about a second.

Where vLLM defines what (checked against 0.14 .. 0.33):

* CLI flags: literal ``add_argument("--flag", "-f", ...)`` calls in ``vllm/engine/arg_utils.py``
  (every EngineArgs field is registered there by name), ``vllm/entrypoints/cli/serve.py`` and the
  serve command's ``cli_args.py`` (``entrypoints/openai``, ``launchers`` or ``common``); the
  frontend dataclasses in ``cli_args.py`` are registered by a loop as ``--{field.replace('_', '-')}``,
  so their annotated fields become flags too. Boolean flags use ``argparse.BooleanOptionalAction``,
  which adds ``--no-<flag>``.
* Env vars: the keys of the ``environment_variables`` dict in ``vllm/envs.py``.
* ``--moe-backend`` values: the ``MoEBackend`` Literal in ``vllm/config/kernel.py``.
* Parsers: ``vllm/reasoning`` and ``vllm/tool_parsers`` (``vllm/entrypoints/openai/tool_parsers``
  before 0.13) register names either with ``@...register_module("name")`` decorators or in a
  lazily imported ``{"name": (module, class)}`` table.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Outside the repository, one directory per version; GPTOSS_VLLM_WHEEL_CACHE moves it (CI caches).
DEFAULT_CACHE = Path(os.environ.get("GPTOSS_VLLM_WHEEL_CACHE", Path.home() / ".cache" / "gptoss-vllm-wheels"))

_CLI_FILES = ("vllm/engine/arg_utils.py", "vllm/entrypoints/cli/serve.py")
# The serve command's own arguments moved: entrypoints/openai (<= 0.29), launchers (0.30-0.32),
# common (0.33). The file that defines the frontend dataclass or make_arg_parser is the one.
_FRONTEND_MARKERS = ("FrontendArgs", "def make_arg_parser")
_REASONING_DIRS = ("vllm/reasoning/",)
_TOOL_PARSER_DIRS = ("vllm/tool_parsers/", "vllm/entrypoints/openai/tool_parsers/")


@dataclass(frozen=True)
class VLLMRelease:
    """What one vLLM release accepts on its OpenAI server's command line and in its environment."""

    version: str
    flags: frozenset[str]
    env_vars: frozenset[str]
    reasoning_parsers: frozenset[str]
    tool_parsers: frozenset[str]
    moe_backends: frozenset[str]  # --moe-backend's choices; empty before the flag existed (0.17)


def download_wheel(version: str, cache: Path = DEFAULT_CACHE) -> Path:
    """The cached ``vllm-<version>-*.whl``, downloaded with pip on first use."""
    directory = cache / version
    wheels = sorted(directory.glob(f"vllm-{version}-*.whl"))
    if not wheels:
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"vllm=={version}", "--no-deps",
             "--only-binary=:all:", "--quiet", "-d", str(directory)],
            check=True,
        )  # fmt: skip
        wheels = sorted(directory.glob(f"vllm-{version}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip did not leave a vllm {version} wheel in {directory}")
    return wheels[0]


def _is_bool(annotation: ast.expr) -> bool:
    # `bool`, `bool | None`, `Optional[bool]`: get_kwargs gives these BooleanOptionalAction.
    text = ast.unparse(annotation).replace(" ", "")
    return text in ("bool", "bool|None", "None|bool", "Optional[bool]")


def _bool_fields(tree: ast.Module, class_suffix: str) -> set[str]:
    return {
        item.target.id
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name.endswith(class_suffix)
        for item in node.body
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and _is_bool(item.annotation)
    }


def _add_argument_names(tree: ast.Module) -> set[str]:
    """Literal option strings of add_argument calls, plus --no-<flag> for EngineArgs booleans."""
    booleans = _bool_fields(tree, "EngineArgs")
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
        ):
            explicit = any(
                k.arg == "action" and "BooleanOptionalAction" in ast.unparse(k.value) for k in node.keywords
            )
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
                    names.add(arg.value)
                    long_bool = explicit or arg.value[2:].replace("-", "_") in booleans
                    if long_bool and arg.value.startswith("--"):
                        names.add("--no-" + arg.value[2:])
    return names


def _frontend_fields(tree: ast.Module) -> set[str]:
    """Flags from the frontend dataclasses, which cli_args.py registers by field name."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.endswith("FrontendArgs"):
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    field = item.target.id
                    if field.startswith("_") or "ClassVar" in ast.unparse(item.annotation):
                        continue
                    names.add("--" + field.replace("_", "-"))
                    if _is_bool(item.annotation):
                        names.add("--no-" + field.replace("_", "-"))
    return names


def _env_var_names(tree: ast.Module) -> set[str]:
    for node in tree.body:
        target: ast.expr | None = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if (
            isinstance(target, ast.Name)
            and target.id == "environment_variables"
            and isinstance(value, ast.Dict)
        ):
            return {k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    raise ValueError("vllm/envs.py has no environment_variables dict")


def _registered_names(trees: list[ast.Module]) -> set[str]:
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            # @XParserManager.register_module("name") / register_module(["a", "b"]) / name="..."
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("register_module", "register_lazy_module")
            ):
                values = list(node.args[:1]) + [k.value for k in node.keywords if k.arg == "name"]
                for value in values:
                    elts = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
                    names |= {
                        e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    }
            # {"name": ("module_file", "ClassName"), ...}: the lazy registration table
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(k, ast.Constant)
                        and isinstance(k.value, str)
                        and isinstance(v, ast.Tuple)
                        and len(v.elts) == 2
                        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in v.elts)
                    ):
                        names.add(k.value)
    return names


def _literal_values(tree: ast.Module, name: str) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                return {
                    c.value
                    for c in ast.walk(node.value)
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                } - {"Literal"}
    return set()


def read_release(wheel: Path, version: str) -> VLLMRelease:
    with zipfile.ZipFile(wheel) as z:
        members = set(z.namelist())

        def parse(name: str) -> ast.Module:
            return ast.parse(z.read(name).decode(), filename=name)

        flags: set[str] = set()
        for name in sorted(members):
            if name in _CLI_FILES:
                flags |= _add_argument_names(parse(name))
            elif name.startswith("vllm/entrypoints/") and name.endswith("cli_args.py"):
                source = z.read(name).decode()
                if any(marker in source for marker in _FRONTEND_MARKERS):
                    tree = ast.parse(source, filename=name)
                    flags |= _add_argument_names(tree) | _frontend_fields(tree)

        def under(prefixes: tuple[str, ...]) -> list[ast.Module]:
            return [parse(m) for m in sorted(members) if m.startswith(prefixes) and m.endswith(".py")]

        return VLLMRelease(
            version=version,
            flags=frozenset(flags),
            env_vars=frozenset(_env_var_names(parse("vllm/envs.py"))),
            reasoning_parsers=frozenset(_registered_names(under(_REASONING_DIRS))),
            tool_parsers=frozenset(_registered_names(under(_TOOL_PARSER_DIRS))),
            moe_backends=frozenset(
                _literal_values(parse("vllm/config/kernel.py"), "MoEBackend")
                if "vllm/config/kernel.py" in members
                else set()
            ),
        )


def release(version: str, cache: Path = DEFAULT_CACHE) -> VLLMRelease:
    """Download (once) and read the vLLM ``version`` wheel."""
    return read_release(download_wheel(version, cache), version)
