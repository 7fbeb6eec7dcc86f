"""Protobuf classes generated from CometBFT v0.38.26's own `.proto` files (see README.md).

Regenerate with `python core/abci/proto/generate.py`; never edit the `_pb2`
files by hand.
"""
