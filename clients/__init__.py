"""Demo relying parties for the identity provider (not part of the `idp` package)."""
