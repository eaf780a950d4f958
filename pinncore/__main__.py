"""``python -m pinncore`` runs the ``pinncore`` command (see pinncore.cli)."""
import sys

from .cli import main

sys.exit(main())
