"""The vLLM simulator's vLLM flags, as the served cluster's pod runner passes them."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx

from tests.support.procs import REPO, _env


def test_served_model_name_and_max_model_len_behave_like_vllm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gptoss_operator.simulators.vllm", "--port", "0",
         "--served-model-name", "gpt-oss-20b", "--max-model-len", "32"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        m = re.match(r"READY (\d+)", proc.stdout.readline())
        assert m, "simulator did not start"
        with httpx.Client(base_url=f"http://127.0.0.1:{m.group(1)}", trust_env=False, timeout=10) as c:
            assert [d["id"] for d in c.get("/v1/models").json()["data"]] == ["gpt-oss-20b"]
            msgs = [{"role": "user", "content": "hi"}]
            ok = c.post(
                "/v1/chat/completions", json={"model": "gpt-oss-20b", "messages": msgs, "max_tokens": 8}
            )
            assert ok.status_code == 200
            assert (
                c.post("/v1/chat/completions", json={"model": "other", "messages": msgs}).status_code == 404
            )
            long = c.post(
                "/v1/chat/completions", json={"model": "gpt-oss-20b", "messages": msgs, "max_tokens": 32}
            )
            assert long.status_code == 400
            assert "maximum context length is 32 tokens" in long.json()["error"]["message"]
            huge = [{"role": "user", "content": "word " * 40}]
            too_big = c.post("/v1/chat/completions", json={"model": "gpt-oss-20b", "messages": huge})
            assert too_big.status_code == 400
            assert "input tokens" in too_big.json()["error"]["message"]
            assert 'model_name="gpt-oss-20b"' in c.get("/metrics").text
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
