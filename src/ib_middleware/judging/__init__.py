"""How a compression is judged: the accept rule and its parts, in one room.

- ``support``: the support check, by table cell: every figure and name of a compression is
  stated by its context (or derived from stated cells), in the right row, column, unit and sign.
- ``online``: per-compression information estimates (CXMI, contrastive PMI) and their result.
- ``relevance``: the relevant-information estimate, the default signal.
- ``routing``: the rule itself: validity, support, then accept, prune or escalate on the signal.

The compressors (``compressors``, ``selection``, ``segments``, ``prompts``) and the stage that
drives the ladder (``ladder``, ``stage``) live beside this folder, not in it.
"""
