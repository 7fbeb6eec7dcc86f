"""The node: a long-running process that runs the ledger as a single validator (docs/node.md)."""
