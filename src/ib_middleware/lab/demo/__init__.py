"""The main demo: a research agent's search calls, then filing questions, compressed.

First a research agent (``_research``): a ReAct loop (``agent -> tools -> agent``) whose
``search`` tool returns ten results per call (the bundled HotpotQA sample, CC BY-SA 4.0) as a
search tool's JSON, with ``add_compression`` on its tool node; per call it reports the tokens
in and out, each result's decision, and whether every supporting fact survived.

Then a LangGraph graph in the paper's compression-prediction shape:
``retrieve -> compress -> answer`` over the bundled FinanceBench sample. ``retrieve`` returns
filing pages: each question's evidence pages plus seeded distractor pages from other
companies; ``compress`` is ``compression_node`` (every page is its own context item, so each
gets its own decision); ``answer`` asks the answering model with whatever the stage forwarded.
Fully offline by default: the stage is the library default (the graded extractive ladder,
judged by Gemma-3-270M) and the answering model is the embedded SmolLM2. Give a model name
(``--model`` or ``IB_DEMO_MODEL``) with ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` to answer with
an OpenAI-compatible endpoint instead.

Next to the tokens saved the report gives evidence containment: per question, whether the
forwarded pages still hold the gold answer (the ``facts`` judge), over the questions whose raw
pages hold it; per evidence page, whether its forwarded text does.
"""

from ib_middleware.lab.demo._graph import (
    ANSWER_TOKENS,
    DemoState,
    FilingPages,
    build_demo_graph,
    resolve_answerer,
)
from ib_middleware.lab.demo._report import DemoQuestion, DemoReport, PageRow, render_question
from ib_middleware.lab.demo._research import (
    ResearchCall,
    ResearchReport,
    ScriptedToolCaller,
    build_research_agent,
    research_call,
    search_tool,
)
from ib_middleware.lab.demo._run import (
    COMPRESSION_TOKENS,
    demo_app,
    demo_command,
    demo_config,
    run_demo,
)

__all__ = [
    "ANSWER_TOKENS",
    "COMPRESSION_TOKENS",
    "DemoQuestion",
    "DemoReport",
    "DemoState",
    "FilingPages",
    "PageRow",
    "ResearchCall",
    "ResearchReport",
    "ScriptedToolCaller",
    "build_demo_graph",
    "build_research_agent",
    "demo_app",
    "demo_command",
    "demo_config",
    "render_question",
    "research_call",
    "resolve_answerer",
    "run_demo",
    "search_tool",
]
