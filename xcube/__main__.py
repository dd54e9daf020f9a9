"""``python -m xcube ...``: the ``xcube`` command line."""
import sys

from .cli import main

sys.exit(main())
