"""Run the bank connector once: ``python -m clients.bank_connector [--json] [--show-token]``."""

import sys

from .connector import main

if __name__ == "__main__":
    sys.exit(main())
