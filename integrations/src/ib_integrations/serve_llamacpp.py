"""llama-cpp-python's OpenAI-compatible server, with CPU weight repacking off.

``python -m ib_integrations.serve_llamacpp --model m.gguf --logits_all true`` takes every
option of ``python -m llama_cpp.server``. Repacked CPU kernels make log-probabilities depend on
how requests are batched (see ``ib_integrations._embedded.without_weight_repacking``), and on
some CPUs with AMX they stop the server with an illegal instruction; this entry point loads the
model without them, as the embedded engine does.
"""

from __future__ import annotations

import runpy

from ib_integrations._embedded import without_weight_repacking

__all__ = ["main"]


def main() -> None:
    """Run ``llama_cpp.server`` with its command-line arguments, repacking off."""
    with without_weight_repacking():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
