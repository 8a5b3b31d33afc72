"""Research behind the ranking and analyzer choices: ablations, levers and variant studies.

Run as ``python -m bench.experiments.NAME``; their figures are in docs/quality.md,
docs/quality_levers.md and docs/traditional_chinese.md (table in ``bench/README.md``).
"""
