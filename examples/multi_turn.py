"""Multi-turn compression: the predictor questions the compressor for up to 3 rounds.

As in He et al. (2025), appendix E.1.8: the compressor holds the document, the predictor
does not. Each round the predictor asks a question, the compressor stage answers it with a
compression of the document for that question, and its mutual information is estimated
(CXMI bits per token, and the routing decision). The predictor then either answers
(a reply starting ``ANSWER:``) or asks a follow-up (anything else: the text after ``ASK:``,
or the first question in the reply); after the last round it must answer.

Models, all offline: the predictor is the embedded SmolLM2-135M-Instruct, a real model; its
first question is the user's question, its follow-ups are its own (when it offers none a
generic follow-up is used and marked ``(template)``). The stage is the library default
(SmolLM2-135M, then Gemma-3-270M, CXMI scored by Gemma-3-270M, then the full document).

Runtime, measured on 2 CPU cores shared with other model jobs: 4 min 40 s with
``IB_EXAMPLES_QUICK=1``
(2 rounds); 3 rounds add one compression and one predictor call.

    python examples/multi_turn.py [--rounds 3] [--case 10]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ib_middleware.engines import ChatMessage, GenerationSettings
from ib_middleware.lab.data import load_financebench

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import example_models, quick, timed

FOLLOW_UP = "Which exact figures does the document give for this, with their units and years?"
SYSTEM = (
    "You cannot see the document. A reader who can see it answers your questions. "
    "Ask the reader one follow-up question at a time: reply 'ASK: ' and the question. "
    "Only when the notes already answer the question, reply 'ANSWER: ' and the answer."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=quick(3, 2))
    parser.add_argument("--case", type=int, default=10, help="FinanceBench case index")
    args = parser.parse_args(argv)

    stage, predictor = example_models()
    case = load_financebench()[args.case]
    print(f"{case.company}: {case.query}\ngold answer: {case.answer}\n")
    question, notes, answer = case.query, [], ""
    settings = GenerationSettings(max_tokens=48, temperature=0.0, stop=("\n\n",))
    for round_number in range(1, args.rounds + 1):
        with timed(f"round {round_number}: compressor"):
            [result] = stage.run([case.context], question.removesuffix(" (template)"))
        estimate = next(
            (a.estimate for a in reversed(result.attempts) if a.estimate is not None), None
        )
        mi = (
            "no estimate"
            if estimate is None
            else f"{estimate.bits:.2f} bits, {estimate.bits_per_token:.3f} bits/token"
        )
        print(
            f"  asked: {question}\n  decision: {result.decision} (rung {result.rung}), "
            f"{result.input_tokens} -> {result.output_tokens} tokens; MI {mi}"
        )
        notes.append(f"Q: {question}\nA: {result.text}")
        last = round_number == args.rounds
        prompt = (
            f"Question: {case.query}\n\nReader's notes:\n"
            + "\n\n".join(notes)
            + "\n\n"
            + (
                "Reply 'ANSWER: ' and the answer."
                if last
                else "Reply 'ASK: ' and a follow-up question, or 'ANSWER: ' if the notes answer it."
            )
        )
        with timed(f"round {round_number}: predictor"):
            reply = predictor.generate(
                [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)], settings
            ).text.strip()
        answered = re.match(r"\s*ANSWER:\s*(.*)", reply, flags=re.S)
        if last or answered:
            answer = answered.group(1) if answered else reply
            break
        # Anything else is the follow-up: the text after ASK:, else its first question.
        asked = re.search(r"ASK:\s*(.+)", reply) or re.search(r"([^.!?\n]*\?)", reply)
        follow_up = asked.group(1).strip() if asked else ""
        if not follow_up or follow_up.lower() == question.lower():
            follow_up = f"{FOLLOW_UP} (template)"
        question = follow_up
        print("  the predictor asks a follow-up\n")
    print(f"\nanswer after {round_number} round(s) (SmolLM2-135M): {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
