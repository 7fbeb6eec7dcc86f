/**
 * The mall's vocabularies and limits as the page decodes trace records
 * (core/mall/vocab.py, core/constants.py; docs/mall.md section 6). Words are
 * stored as 1-based indexes into these lists, so their order is part of the
 * format: the vectors (tests/web/generate_vectors.py) hold Python's lists and
 * web/test/vectors.test.ts checks these equal them.
 */

export const MALL_VERSION = 1;
export const TABLE_ITEMS = 0x17;
export const TABLE_ITEM_EVENTS = 0x18;
export const TABLE_EVENTS = 0x19;
export const TABLE_DECLARATIONS = 0x1a;

export const URI_BYTES_MAX = 128;
export const UOM_BYTES_MAX = 3;
export const ILMD_VALUE_BYTES_MAX = 64;
export const EVENT_IDS_MAX = 32;
export const BIZ_TRANSACTIONS_MAX = 8;
export const SOURCES_MAX = 4;
export const ILMD_FIELDS_MAX = 8;
export const CORRECTIVE_EVENTS_MAX = 8;
export const TZ_OFFSET_MINUTES_MAX = 14 * 60;
export const TIME_MS_MAX = 253_402_250_399_999n;
export const PAYLOAD_BYTES_MAX = 896;
export const AGGREGATION_DEPTH_MAX = 8;

export const KIND_OBJECT = 1;
export const KIND_AGGREGATION = 2;
export const KIND_TRANSFORMATION = 3;
export const KIND_TRANSACTION = 4;
export const KIND_DECLARATION = 5;
export const KIND_NAMES: Record<number, string> = {
  1: 'ObjectEvent', 2: 'AggregationEvent', 3: 'TransformationEvent', 4: 'TransactionEvent', 5: 'ErrorDeclaration',
};

export const ACTION_NONE = 0;
export const ACTION_ADD = 1;
export const ACTION_OBSERVE = 2;
export const ACTION_DELETE = 3;

export const ITEM_INSTANCE = 1;
export const ITEM_CLASS = 2;

export const BIZ_STEPS = [
  'accepting', 'arriving', 'assembling', 'collecting', 'commissioning', 'consigning',
  'creating_class_instance', 'cycle_counting', 'decommissioning', 'departing', 'destroying',
  'disassembling', 'dispensing', 'encoding', 'entering_exiting', 'holding', 'inspecting',
  'installing', 'killing', 'loading', 'other', 'packing', 'picking', 'receiving', 'removing',
  'repackaging', 'repairing', 'replacing', 'reserving', 'retail_selling', 'shipping',
  'staging_outbound', 'stock_taking', 'stocking', 'storing', 'transporting', 'unloading',
  'unpacking', 'void_shipping', 'sensor_reporting', 'sampling',
] as const;

export const DISPOSITIONS = [
  'active', 'container_closed', 'damaged', 'destroyed', 'dispensed', 'disposed', 'encoded',
  'expired', 'in_progress', 'in_transit', 'inactive', 'no_pedigree_match',
  'non_sellable_other', 'partially_dispensed', 'recalled', 'reserved', 'retail_sold',
  'returned', 'sellable_accessible', 'sellable_not_accessible', 'stolen', 'unknown',
  'available', 'completeness_verified', 'completeness_inferred', 'conformant',
  'container_open', 'mismatch_instance', 'mismatch_class', 'mismatch_quantity',
  'needs_replacement', 'non_conformant', 'unavailable',
] as const;

export const BIZ_TRANSACTION_TYPES = [
  'bol', 'cert', 'desadv', 'inv', 'pedigree', 'po', 'poc', 'prodorder', 'recadv', 'rma', 'testprd', 'testres', 'upevt',
] as const;

export const SOURCE_TYPES = ['owning_party', 'possessing_party', 'location'] as const;
export const ERROR_REASONS = ['did_not_occur', 'incorrect_data'] as const;
export const ILMD_FIELDS = [
  'cbvmda:lotNumber', 'cbvmda:countryOfOrigin', 'cbvmda:bestBeforeDate', 'cbvmda:itemExpirationDate',
  'chainmall:productionDate', 'chainmall:material', 'chainmall:fineness', 'chainmall:origin',
] as const;

/** The BLAKE3 derive_key contexts of core/mall (items.py, events.py). */
export const MALL_CONTEXTS = {
  itemKey: 'chainmall 2026-11 mall item id v1',
  eventId: 'chainmall 2026-11 mall event id v1',
  history: 'chainmall 2026-11 mall item history v1',
} as const;

/** How an accepted hand-over names the parties: urn:chainmall:party:<cm1 address>. */
export const PARTY_URI_PREFIX = 'urn:chainmall:party:';
