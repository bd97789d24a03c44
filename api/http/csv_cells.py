"""CSV exports that a spreadsheet cannot run: OWASP's defence against CSV (formula) injection.

A unit id or a channel name such as ``=1+1`` or ``=HYPERLINK(...)`` is text to this API, but a spreadsheet
opening the export would evaluate it. As OWASP recommends (CSV Injection), a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading ``'``, which spreadsheets
read as "this is text" and do not show. Numbers are written as numbers (a negative lift stays ``-0.03``):
only text is prefixed. A program reading the CSV sees the ``'``: strip one leading ``'`` before any of
those characters to get the stored value back.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value``, with a ``'`` before it when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
