"""souyi (搜义): the command line that ties the indexer, the search API and the web app together.

This package holds only what needs all three: the ``souyi`` command and the
bundled sample corpus.  The engine itself lives in ``indexer`` and ``search``.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The report shipped as the sample corpus.
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
