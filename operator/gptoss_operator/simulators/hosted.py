"""A hosted OpenAI-compatible provider stand-in: one API key, the provider's model ids.

What the router's ``external`` backends talk to in tests and in a served local cluster: requests
without ``Authorization: Bearer <key>`` get 401, other model ids get 404, answers carry the
provider's model id. Shapes, knobs and the admin API are the vLLM simulator's
(:mod:`gptoss_operator.simulators.vllm`); this only sets up key and models.

Run: ``python -m gptoss_operator.simulators.hosted --model openai/gpt-oss-20b --api-key-file F``.
The key is read from a file, never from the command line (which every local user can read).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gptoss_operator.simulators.vllm import Simulator, serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="hosted")
    p.add_argument("--model", action="append", required=True, help="a provider model id (repeatable)")
    p.add_argument("--api-key-file", type=Path, required=True, help="file holding the one accepted key")
    p.add_argument(
        "--config", default=None, help="further behaviour as a JSON object (see the vLLM simulator)"
    )
    p.add_argument("--ssl-certfile", default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--ssl-keyfile", default=None, help="private key of --ssl-certfile (PEM)")
    args = p.parse_args(argv)
    key = args.api_key_file.read_text().strip()
    if not key:
        p.error(f"{args.api_key_file} is empty")
    sim = Simulator(args.name)
    if args.config:
        sim._configure(json.loads(args.config))
    sim._configure({"require_key": key, "served_models": args.model})
    serve(sim, args.host, args.port, args.ssl_certfile, args.ssl_keyfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
