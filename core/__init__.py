"""chainmall.core: the protocol as typed Python (formats, references, ledger)."""
