"""Run the stage against an inference server: SGLang, vLLM, OpenAI or llama-cpp-python's server.

The configs in ``examples/engines/`` say which engine compresses and which scores:

- ``sglang.yaml``: compressor and a 7-8B proxy scorer on SGLang (native ``/generate``
  scoring, prefix reuse through the radix cache);
- ``vllm.yaml``: the same on vLLM's OpenAI-compatible server (``prompt_logprobs``);
- ``openai.yaml``: an OpenAI model compresses, the embedded Gemma-3-270M scores (OpenAI chat
  models return no prompt log-probs);
- ``llamacpp_server.yaml``: SmolLM2 behind llama-cpp-python's server on this machine, which
  runs offline (start it as the file's comment says).

The example checks that each server of the config answers (a 2-second probe); when one does
not, it says what to start and exits with status 0 without running anything. When they do,
it compresses one FinanceBench page and prints the decision. Runtime: seconds on a GPU
server; 48 s on 2 shared CPU cores with ``llamacpp_server.yaml`` (server start included).

    python examples/serve_on_a_server.py examples/engines/vllm.yaml
    python examples/serve_on_a_server.py --smollm2-path     # the embedded GGUF, for the server
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from ib_middleware.build import build_stage
from ib_middleware.config import EngineConfig, StageConfig
from ib_middleware.lab.data import load_financebench


def server_urls(config: StageConfig) -> list[str]:
    """The base URL of every server-backed engine in the config."""
    engines: list[EngineConfig] = [r.compressor.engine for r in config.rungs]
    engines.append(config.estimator.scorer)
    urls = []
    for engine in engines:
        if engine.engine == "sglang":
            urls.append(str(engine.options.get("base_url", "http://127.0.0.1:30000")))
        elif engine.engine == "openai":
            urls.append(str(engine.options.get("base_url", "https://api.openai.com/v1")))
    return list(dict.fromkeys(urls))


def unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or None when it answers."""
    if url.startswith("https://api.openai.com"):
        return None if os.environ.get("OPENAI_API_KEY") else "OPENAI_API_KEY is not set"
    probe = url.rstrip("/").removesuffix("/v1") + ("/v1/models" if "/v1" in url else "/health")
    try:
        httpx.get(probe, timeout=2.0, trust_env=False)
    except httpx.HTTPError as error:
        return f"no server at {url} ({type(error).__name__})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="?")
    parser.add_argument("--smollm2-path", action="store_true", help="print the GGUF path")
    args = parser.parse_args(argv)
    if args.smollm2_path:
        from ib_integrations._embedded import smollm2_path  # noqa: PLC0415

        print(smollm2_path())
        return 0
    if args.config is None:
        parser.error("give a config, e.g. examples/engines/vllm.yaml")
    config = StageConfig.load(args.config)
    problems = [p for p in map(unreachable, server_urls(config)) if p]
    if problems:
        print(f"not run: {'; '.join(problems)}. Start the servers in {args.config}'s comments.")
        return 0
    stage = build_stage(config)
    case = load_financebench()[10]
    [result] = stage.run([case.context], case.query)
    print(f"{case.query}\n{result.decision} (rung {result.rung}): {result.reason}")
    print(f"{result.input_tokens} -> {result.output_tokens} tokens:\n{result.text[:500]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
