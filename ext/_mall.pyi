"""Type stubs of chainmall.ext._mall: the mall's orders, escrow steps and trace events in C."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

MALL_VERSION: int
ADDRESS_BYTES: int
HASH_BYTES: int
EPCIS_URI_BYTES_MAX: int
TX_PAYLOAD_BYTES_MAX: int
TZ_OFFSET_BIAS: int
TABLE_MALL_PARTIES: int
TABLE_MALL_ITEMS: int
TABLE_MALL_ITEM_EVENTS: int
TABLE_MALL_EVENTS: int
TABLE_MALL_HANDOVERS: int
TABLE_MALL_ORDERS: int
TABLE_MALL_ESCROWS: int
TABLE_MALL_DEADLINES: int
DEADLINE_ESCROW: int
ROLE_CARRIER: int
ITEM_INSTANCE: int
ITEM_CLASS: int
KIND_OBJECT: int
ACTION_OBSERVE: int
ESCROW_FUNDED: int
ESCROW_SHIPPED: int
ESCROW_DELIVERED: int
ESCROW_STATES: int
CLOSE_REASONS: int
OPEN_STATES: tuple[int, ...]
HANDOVER_BYTES: int
ESCROW_BYTES: int
ITEM_HEAD_BYTES: int
RECORD_HEAD_BYTES: int
TX_URI_PREFIX: str
ORDER_URI_PREFIX: str
PARTY_URI_PREFIX: str
URI_CHARS: bytes
SCHEME_FIRST: bytes
SCHEME_REST: bytes
ESCROW_RELEASED: int
CLOSE_CONFIRMED: int
BPS_DENOMINATOR: int
TABLE_ACCOUNTS: int
TABLE_MALL_TAX_RECORDS: int
TABLE_MALL_CLOSED: int
ACCOUNT_VERSION: int
ACCOUNT_BYTES: int
FEE_POOL_KEY: bytes
FEE_POOL_VERSION: int
PARTY_OPEN_ORDERS_OFFSET: int
JURISDICTION_BYTES_MAX: int
TABLE_MALL_PRODUCTS: int
TABLE_MALL_PARTY_ORDERS: int
TABLE_MALL_TAX_RATES: int
ROLE_MERCHANT: int
PRODUCT_ACTIVE: int
PRODUCT_HEAD_BYTES: int
ORDER_QUANTITY_MAX: int
SEALED_BOX_OVERHEAD_BYTES: int
SEALED_ADDRESS_BYTES_MAX: int
SIDE_BUYER: int
SIDE_MERCHANT: int
TAX_RATE_BYTES: int
EPCIS_TIME_MS_MAX: int
EPCIS_EVENT_IDS_MAX: int

Handler = Callable[[Any, Any, Any], None]

def configure(*, event_id_key: bytes, history_key: bytes, item_key_key: bytes,
              event_type: type, address_text: Callable[[bytes], str],
              decode_item: Callable[[bytes], Any], decode_order: Callable[[bytes], Any],
              decode_party: Callable[[bytes], Any], biz_steps: Sequence[str],
              accept_steps: Sequence[str], dispositions: Sequence[str],
              biz_transaction_types: Sequence[str], source_types: Sequence[str],
              kind_names: Mapping[int, str], state_names: Mapping[int, str],
              close_names: Mapping[int, str], decode_product: Callable[[bytes], Any],
              step_rules: Mapping[int, tuple[int, bool]], accept_reference: Handler,
              deliver_reference: Handler, confirm_reference: Handler,
              place_reference: Handler,
              record_reference: Callable[[Any, Any], None]) -> None:
    """Hand the kernel what it takes from core/ (core/mall/native.py does, once)."""

def describe() -> str:
    """What this kernel is, for `chainmall doctor`."""

def configured() -> bool:
    """Whether `configure` has run."""

def counts() -> tuple[int, int]:
    """(txs done in C, txs handed to the reference) since the module loaded."""

def accept(state: Any, ctx: Any, mall: Any) -> None:
    """HANDOVER_ACCEPT: `core.mall.custody.accept`, same signature and results."""

def deliver(state: Any, ctx: Any, mall: Any) -> None:
    """ESCROW_DELIVER: `core.mall.escrow.deliver`, same signature and results."""

def confirm(state: Any, ctx: Any, mall: Any) -> None:
    """ESCROW_CONFIRM: `core.mall.escrow.confirm`, same signature and results."""

def place(state: Any, ctx: Any, mall: Any) -> None:
    """ORDER_PLACE: `core.mall.orders.place`, same signature and results."""

def record(state: Any, ctx: Any) -> None:
    """TRACE_RECORD: `core.mall.trace.record`, same signature and results."""
