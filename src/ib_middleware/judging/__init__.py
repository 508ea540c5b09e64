"""How a compression is judged: the accept rule and its parts, in one room.

- ``support``: the support check, by table cell. The page is read into cells (``cells``:
  row, column period, scale, sign); each figure of the compression (``figures``) must be
  stated by a cell of the row and column its words name (``placement``) or derived from
  stated cells (``derive``), and each name must be the page's or the query's (``names``,
  ``lexicon``); ``verdicts`` judges one sentence and names every rejection's kind.
- ``online``: per-compression information estimates (CXMI, contrastive PMI) and their result.
- ``relevance``: the relevant-information estimate, the default signal: what the compression
  keeps of what the whole page tells about the query.
- ``routing``: the rule itself: validity, support, then accept, prune or escalate on the signal.

The compressors (``compressors``, ``selection``, ``segments``, ``prompts``) and the stage that
drives the ladder (``ladder``, ``stage``) live beside this folder, not in it.
"""
