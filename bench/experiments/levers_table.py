"""Markdown table of one or more ``bench.experiments.lexical_variants --out`` files (docs/quality_levers.md).

One row per variant, one column per collection and query precision; each cell is MRR@10 and,
in brackets, its difference to the default rule measured in the same run:

    python -m bench.experiments.levers_table /tmp/q8/r3/levers_f_fp32.json /tmp/q8/r3/levers_f_int8.json

A ``--view-cost`` output gives one row per embedded part, one column per collection: median
seconds and, in brackets, the share of the index's own embedding time.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import parser_for

SHORT = {"xquad_zh-zh": "zh-zh", "xquad_en-zh": "en-zh", "cmrc2018_dev": "cmrc"}


def table(runs: list[dict]) -> str:
    """The Markdown table of ``runs`` (parsed ``--out`` files)."""
    columns = sorted(
        {(name, run["query_precision"]) for run in runs for name in run["mrr@10"]},
        key=lambda c: (list(SHORT).index(c[0]) if c[0] in SHORT else len(SHORT), c[0], c[1]),
    )
    cells: dict[tuple[str, tuple[str, str]], str] = {}
    rows: list[str] = []
    for run in runs:
        for name, scores in run["mrr@10"].items():
            for variant, mrr in scores.items():
                rows += [variant] if variant not in rows else []
                delta = run["delta_vs_default"][name][variant]
                cells[variant, (name, run["query_precision"])] = f"{mrr:.4f} ({delta:+.4f})"
    header = "| variant | " + " | ".join(f"{SHORT.get(n, n)} {p}" for n, p in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    lines += ["| " + v + " | " + " | ".join(cells.get((v, c), "") for c in columns) + " |" for v in rows]
    return "\n".join(lines)


def cost_table(run: dict) -> str:
    """The Markdown table of one ``--view-cost`` output."""
    sets = [name for name, value in run.items() if isinstance(value, dict) and "in_context_texts" in value]
    parts = [k for k, v in run[sets[0]].items() if isinstance(v, dict)]
    lines = ["| embedded | " + " | ".join(f"{SHORT.get(n, n)} ({run[n]['in_context_texts']} of {run[n]['passages']} "
                                          "passages need a context text)" for n in sets) + " |",
             "|---" * (len(sets) + 1) + "|"]
    lines += ["| " + part + " | " + " | ".join(
        f"{run[n][part]['seconds']:.2f} s ({run[n][part]['share_of_index_embedding']:.0%})" for n in sets) + " |"
        for part in parts]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = parser_for(__doc__)
    parser.add_argument("runs", nargs="+", type=Path,
                        help="JSON files written by bench.experiments.lexical_variants --out")
    args = parser.parse_args(argv)
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in args.runs]
    if all("mrr@10" in run for run in runs):
        print(table(runs))
    else:  # --view-cost outputs
        print("\n\n".join(cost_table(run) for run in runs))


if __name__ == "__main__":
    main()
