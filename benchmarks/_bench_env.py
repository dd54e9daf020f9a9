"""Keep the benchmarks' caches out of the checkout.

Imported by every benchmark before numba or xcube: numba's compiled-function
cache and Python's bytecode go to a directory under the system's temporary
directory (kept between runs, so warm figures stay warm), unless the caller
already chose one with ``NUMBA_CACHE_DIR`` or ``PYTHONPYCACHEPREFIX``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

SCRATCH = Path(tempfile.gettempdir()) / f"xcube-bench-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
os.environ.setdefault("NUMBA_CACHE_DIR", str(SCRATCH / "numba"))
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(SCRATCH / "pycache"))
if sys.pycache_prefix is None:
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
