"""The page shell every lab HTML report shares (telemetry report and sweep report).

One self-contained page: inline CSS, no scripts, nothing loaded from the network.
"""

from __future__ import annotations

import html

__all__ = ["PAGE_CSS", "escape", "html_page"]

PAGE_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d3557; background: #f6f7f9; }
header { background: #1d3557; color: #fff; padding: 18px 28px; }
header h1 { margin: 0; font-size: 22px; } header p { margin: 4px 0 0; opacity: .8; }
main { padding: 20px 28px; max-width: 1400px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.card { background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 3px #0002; }
.card .value { font-size: 22px; font-weight: 600; } .card .label { color: #555; font-size: 13px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr));
           gap: 16px; margin-top: 20px; }
figure { background: #fff; margin: 0; padding: 10px; border-radius: 8px;
         box-shadow: 0 1px 3px #0002; }
figure img { width: 100%; height: auto; } figcaption { font-weight: 600; margin-bottom: 6px; }
table { border-collapse: collapse; background: #fff; margin-top: 8px; min-width: 60%;
        box-shadow: 0 1px 3px #0002; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e3e6ea; text-align: left; }
th { background: #eef1f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
h2 { margin-top: 28px; font-size: 18px; } footer { color: #777; padding: 20px 28px; }
"""
"""The stylesheet every ib-middleware HTML report shares (telemetry and sweeps)."""


def escape(value: object) -> str:
    """``value`` as HTML text, quotes escaped too.

    Example:
        >>> escape('<a href="x">')
        '&lt;a href=&quot;x&quot;&gt;'
    """
    return html.escape(str(value), quote=True)


def html_page(title: str, body: str) -> str:
    """A whole page: the head with ``title`` and the shared stylesheet, ``body``, the footer.

    Example:
        >>> page = html_page("a & b", "<main></main>")
        >>> page.startswith("<!DOCTYPE html>"), "<title>a &amp; b</title>" in page
        (True, True)
    """
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{PAGE_CSS}</style>
</head>
<body>
{body}
<footer>Self-contained: every figure is embedded; this page loads nothing from the network.
</footer>
</body>
</html>
"""
