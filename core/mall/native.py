"""The mall handlers served by the compiled kernel `ext/_mall.pyx`, or by their references.

HANDOVER_ACCEPT (`custody.accept`) and ESCROW_DELIVER (`escrow.deliver`) are
the mall's costliest txs: each builds an EPCIS event, hashes it into its id
and the item's history chain, and moves an escrow with its deadline entries;
ESCROW_CONFIRM (`escrow.confirm`) settles one, with tax and commission, and
ORDER_PLACE (`orders.place`) opens one, reserving the stock, and HANDOVER_PROPOSE
(`custody.propose`) offers an item to its next holder. TRACE_RECORD
(`trace.record`) is in C for an ObjectEvent OBSERVE that names items by id only
(an inspection), the reference taking every other shape of event.
The kernel does the same in C, with the same signature, reads, writes (in the
same order), events and bytes; whatever it does not take on (every failing
check, a packed item, a record that does not decode) it hands to the
reference before writing anything, so errors are the reference's own.

`accept`, `propose`, `deliver`, `confirm`, `place` and `record` below are what `install.py`
registers: the kernel's when it is built, else (or with `CHAINMALL_PURE=1`) the
references.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..abci.types import Event
from ..genesis import MallGenesis
from ..kernels import mall_kernel
from . import custody, escrow, orders, trace
from .codec import address_text
from .events import EVENT_ID_KEY
from .items import HISTORY_KEY, decode_item
from .keys import ITEM_KEY
from .order_record import decode_order
from .parties import decode_party
from .products import decode_product
from .vocab import (
    BIZ_STEP_RULES,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    KIND_NAMES,
    NO_STEP_RULE,
    SOURCE_TYPES,
)


def configure(kernel: ModuleType) -> None:
    """Hand the kernel the references, decoders and vocabularies it works with (done here
    at import when the kernel is in use; tests call it under CHAINMALL_PURE=1)."""
    kernel.configure(
        event_id_key=EVENT_ID_KEY, history_key=HISTORY_KEY, item_key_key=ITEM_KEY,
        event_type=Event,
        address_text=address_text, decode_item=decode_item, decode_order=decode_order,
        decode_party=decode_party, biz_steps=BIZ_STEPS, accept_steps=custody.ACCEPT_STEPS,
        dispositions=DISPOSITIONS, biz_transaction_types=BIZ_TRANSACTION_TYPES,
        source_types=SOURCE_TYPES, kind_names=KIND_NAMES, state_names=escrow.STATE_NAMES,
        close_names=escrow.CLOSE_NAMES, decode_product=decode_product,
        step_rules={0: NO_STEP_RULE, **BIZ_STEP_RULES}, accept_reference=custody.accept,
        deliver_reference=escrow.deliver, confirm_reference=escrow.confirm,
        place_reference=orders.place, record_reference=trace.record,
        propose_reference=custody.propose)


Handler = Callable[[Any, Any, MallGenesis], None]
accept: Handler = custody.accept
propose: Handler = custody.propose
deliver: Handler = escrow.deliver
confirm: Handler = escrow.confirm
place: Handler = orders.place
record: Callable[[Any, Any], None] = trace.record
if mall_kernel is not None:
    configure(mall_kernel)
    accept = mall_kernel.accept
    propose = mall_kernel.propose
    deliver = mall_kernel.deliver
    confirm = mall_kernel.confirm
    place = mall_kernel.place
    record = mall_kernel.record
