"""souyi's benchmarks: the scripts behind every figure in ``docs/``, run as ``python -m bench.NAME``.

Measurements are modules of this package, research (levers, ablations, variant studies) is in
:mod:`bench.experiments`, and what they share is :mod:`bench.common`.  Which script makes
which figure, and where each writes it, is the table of ``bench/README.md``.
"""
