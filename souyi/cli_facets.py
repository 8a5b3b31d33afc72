"""What ``souyi search`` adds for the query syntax and facets: its help text and the facet listing."""

from __future__ import annotations

from search import Results

#: The epilog of ``souyi search --help``: the syntax in brief (docs/query-syntax.md has it whole).
SYNTAX_HELP = (
    'query syntax: "exact phrase" (also “…” 「…」), -word, -"phrase", doc:NAME, title:"…", FIELD:VALUE for a '
    "metadata field the index holds (repeat a field for any of its values), FIELD:A..B, FIELD:A.., FIELD:..B, "
    "FIELD>=X, FIELD>X, FIELD<=X, FIELD<X over numbers or ISO dates (YYYY-MM-DD); everything else is free text. "
    "Example: souyi search '\"数字经济\" -电子商务 year:2008..2010' --facet year"
)


def facet_lines(results: Results) -> list[str]:
    """The facet counts of ``results`` as text, one block per field, printed after the hits."""
    lines = [f"{results.total} results in all" + (" (the most a result list holds)" if results.total >= 1000 else "")]
    for name, pairs in results.facets.items():
        lines.append(f"{name}:")
        lines += [f"  {count:>5}  {value}" for value, count in pairs] or ["  (none)"]
    return lines
