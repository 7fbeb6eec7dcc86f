"""Validators in state: bonds, the signing sets by height, governance txs, slashing.

The validator set CometBFT runs is kept in state (docs/cometbft.md section 7):
a record per bonded validator (`records.py`), the set that signs each height
and its hash (`schedule.py`), the txs that bond, unbond and change power by a
genesis authority or by more than 2/3 of the signing power (`governance.py`),
and the rule that slashes a validator CometBFT reports for a duplicate vote
(`slashing.py`). `install.py` plugs it into the application as a `Module`.
"""
