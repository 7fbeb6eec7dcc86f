"""chainmall.cli: the `chainmall` command (click)."""
