"""`python -m idp.cli`: the `idp` command (the mail loop beside `idp serve` starts this way)."""

from . import main

main()
