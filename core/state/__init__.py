"""chainmall.core.state: the ledger state, its single writer and its authenticated root."""
