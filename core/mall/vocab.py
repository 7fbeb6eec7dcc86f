"""Roles, and the GS1 CBV 2.0 vocabularies the trace events use, with their role gates.

The vocabularies are encoded as 1-based indexes into the tuples below (0 =
absent), in the order of the EPCIS 2.0 JSON Schema's enumerations, so an
index never changes meaning; new words may only be appended. Which roles may
record an event with a given bizStep, and whether the recorder must hold the
items, is `BIZ_STEP_RULES` (docs/mall.md section 6).
"""

from __future__ import annotations

from typing import NamedTuple

# --- roles (a party's u16 bit set) -------------------------------------------------
ROLE_MERCHANT = 1 << 0
ROLE_PRODUCER = 1 << 1
ROLE_PROCESSOR = 1 << 2
ROLE_INSPECTOR = 1 << 3
ROLE_CARRIER = 1 << 4
ROLE_ARBITRATOR = 1 << 5
ROLE_NAMES = {ROLE_MERCHANT: "merchant", ROLE_PRODUCER: "producer",
              ROLE_PROCESSOR: "processor", ROLE_INSPECTOR: "inspector",
              ROLE_CARRIER: "carrier", ROLE_ARBITRATOR: "arbitrator"}
ROLES_ALL = sum(ROLE_NAMES)
TRACE_ROLES = ROLE_MERCHANT | ROLE_PRODUCER | ROLE_PROCESSOR | ROLE_INSPECTOR | ROLE_CARRIER


def role_bits(roles: int) -> list[int]:
    """The single-bit roles in `roles`, lowest first."""
    return [role for role in ROLE_NAMES if roles & role]


def role_bit_index(role: int) -> int:
    """0 for merchant, 1 for producer, ...: the byte in a role index key."""
    assert role in ROLE_NAMES
    return role.bit_length() - 1


def role_names(roles: int) -> list[str]:
    return [ROLE_NAMES[role] for role in role_bits(roles)]


def parse_roles(names: list[str] | tuple[str, ...]) -> int:
    """The bit set of role names (ValueError for an unknown one)."""
    by_name = {name: role for role, name in ROLE_NAMES.items()}
    roles = 0
    for name in names:
        if name not in by_name:
            raise ValueError(f"unknown role {name!r} (known: {', '.join(by_name)})")
        roles |= by_name[name]
    return roles


# --- event kinds and actions ------------------------------------------------------
KIND_OBJECT = 1
KIND_AGGREGATION = 2
KIND_TRANSFORMATION = 3
KIND_TRANSACTION = 4
KIND_ERROR_DECLARATION = 5  # not an EPCIS event type: our record of an error declaration
KIND_NAMES = {KIND_OBJECT: "ObjectEvent", KIND_AGGREGATION: "AggregationEvent",
              KIND_TRANSFORMATION: "TransformationEvent", KIND_TRANSACTION: "TransactionEvent"}

ACTION_NONE = 0  # TransformationEvent has no action
ACTION_ADD = 1
ACTION_OBSERVE = 2
ACTION_DELETE = 3
ACTION_NAMES = {ACTION_ADD: "ADD", ACTION_OBSERVE: "OBSERVE", ACTION_DELETE: "DELETE"}

# --- CBV 2.0 vocabularies (order = the EPCIS 2.0 JSON Schema's enums) ---------------
BIZ_STEPS = (
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
    "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
    "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
    "installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
    "repackaging", "repairing", "replacing", "reserving", "retail_selling", "shipping",
    "staging_outbound", "stock_taking", "stocking", "storing", "transporting", "unloading",
    "unpacking", "void_shipping", "sensor_reporting", "sampling",
)
DISPOSITIONS = (
    "active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded",
    "expired", "in_progress", "in_transit", "inactive", "no_pedigree_match",
    "non_sellable_other", "partially_dispensed", "recalled", "reserved", "retail_sold",
    "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unknown",
    "available", "completeness_verified", "completeness_inferred", "conformant",
    "container_open", "mismatch_instance", "mismatch_class", "mismatch_quantity",
    "needs_replacement", "non_conformant", "unavailable",
)
BIZ_TRANSACTION_TYPES = ("bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder",
                         "recadv", "rma", "testprd", "testres", "upevt")
SOURCE_TYPES = ("owning_party", "possessing_party", "location")
ERROR_REASONS = ("did_not_occur", "incorrect_data")
# Instance/lot master data (ILMD) fields an event may carry, by their EPCIS names.
ILMD_FIELDS = ("cbvmda:lotNumber", "cbvmda:countryOfOrigin", "cbvmda:bestBeforeDate",
               "cbvmda:itemExpirationDate", "chainmall:productionDate", "chainmall:material",
               "chainmall:fineness", "chainmall:origin")

# The prefixes CBV words may carry in EPCIS documents (bare words are canonical in 2.0).
CBV_PREFIXES = {
    "bizstep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    "disp": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    "btt": ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    "sdt": ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    "er": ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
}


def index_of(words: tuple[str, ...], word: str) -> int:
    """1-based index of `word` (ValueError if it is not in the vocabulary)."""
    try:
        return words.index(word) + 1
    except ValueError:
        raise ValueError(f"{word!r} is not in the vocabulary") from None


def word_at(words: tuple[str, ...], index: int) -> str:
    """The word of a 1-based index (ValueError out of range; 0 means absent)."""
    if not 1 <= index <= len(words):
        raise ValueError(f"vocabulary index {index} is out of range 1..{len(words)}")
    return words[index - 1]


class StepRule(NamedTuple):
    """Who may record a bizStep, and whether the recorder must hold the items it names."""

    roles: int
    custody: bool


_MAKERS = ROLE_PRODUCER | ROLE_PROCESSOR
_LOGISTICS = ROLE_CARRIER | ROLE_MERCHANT | ROLE_PRODUCER | ROLE_PROCESSOR
_STEP_GROUPS: tuple[tuple[tuple[str, ...], StepRule], ...] = (
    (("commissioning", "creating_class_instance", "encoding", "decommissioning", "destroying",
      "killing"), StepRule(_MAKERS | ROLE_MERCHANT, True)),
    (("assembling", "disassembling", "repackaging", "repairing", "replacing", "installing",
      "removing"), StepRule(ROLE_PROCESSOR, True)),
    (("inspecting", "sampling"), StepRule(ROLE_INSPECTOR, False)),
    (("sensor_reporting",), StepRule(TRACE_ROLES, False)),
    (("shipping", "departing", "arriving", "receiving", "accepting", "loading", "unloading",
      "transporting", "staging_outbound", "consigning", "void_shipping"),
     StepRule(_LOGISTICS, True)),
    (("packing", "unpacking", "picking", "storing", "stocking", "stock_taking",
      "cycle_counting", "holding", "reserving", "collecting", "entering_exiting", "dispensing",
      "other"), StepRule(TRACE_ROLES, True)),
    (("retail_selling",), StepRule(ROLE_MERCHANT, True)),
)
BIZ_STEP_RULES: dict[int, StepRule] = {
    index_of(BIZ_STEPS, step): rule for steps, rule in _STEP_GROUPS for step in steps}
# An event without a bizStep: any trace role, custody required.
NO_STEP_RULE = StepRule(TRACE_ROLES, True)

assert sorted(BIZ_STEP_RULES) == list(range(1, len(BIZ_STEPS) + 1)), "every bizStep has a rule"
assert len(BIZ_STEPS) < 256 and len(DISPOSITIONS) < 256 and len(ILMD_FIELDS) < 256
