"""Every protocol constant and limit, in one place; relations checked at import.

Names carry their unit last (`TX_BYTES_MAX`, `SIGNATURE_BYTES`). Changing a
consensus constant is a protocol change: bump the matching version.
"""

from __future__ import annotations

# --- protocol version ----------------------------------------------------------
# The rules a ledger was made under; a store records it at genesis and a build
# opens only a store of its own version (core/store.py).
#   1: Ed25519 verified by libsodium's strict, cofactorless rule
#   2: Ed25519 verified under ZIP 215 on every path (docs/verification.md)
PROTOCOL_VERSION = 2

# --- versions (first byte of every canonical encoding) ---------------------
TX_VERSION = 1
BLOCK_VERSION = 1
COMMIT_VERSION = 1

# --- sizes of primitives ----------------------------------------------------
HASH_BYTES = 32
PUBLIC_KEY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
ADDRESS_BYTES = 20

# --- chain id ----------------------------------------------------------------
CHAIN_ID_BYTES_MIN = 1
CHAIN_ID_BYTES_MAX = 32
CHAIN_ID_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789-"

# --- integer ranges ------------------------------------------------------------
U8_MAX = 2**8 - 1
U16_MAX = 2**16 - 1
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1

# --- transaction limits (enforced on decode) --------------------------------
# A signed tx is body || signature. The body is capped at one BLAKE3 chunk
# (1024 bytes) so every tx id is one single-chunk hash, the case the SIMD
# kernel is built for.
TX_BODY_BYTES_MAX = 1024
TX_BYTES_MAX = TX_BODY_BYTES_MAX + SIGNATURE_BYTES
TX_PAYLOAD_BYTES_MAX = 896
# Fixed part of a body: version(1) chain_id_len(1) type(2) sender(32) nonce(8)
# fee(8) expiry_height(8) payload_len(4); chain id and payload vary.
TX_BODY_FIXED_BYTES = 1 + 1 + 2 + PUBLIC_KEY_BYTES + 8 + 8 + 8 + 4
TX_BYTES_MIN = TX_BODY_FIXED_BYTES + CHAIN_ID_BYTES_MIN + SIGNATURE_BYTES

# --- block limits --------------------------------------------------------------
BLOCK_TXS_MAX = 20_000
BLOCK_BYTES_MAX = 32 * 1024 * 1024
COMMIT_SIGNATURES_MAX = 256

# Admitted txs remembered so their block does not verify them again (core/state/machine.py).
SIGNATURE_CACHE_ENTRIES_MAX = 200_000

# --- batch kernels -------------------------------------------------------------
BATCH_ITEMS_MAX = 1_000_000          # messages or txs per kernel call
MERKLE_LEAVES_MAX = 1 << 24          # leaves per tree
VERIFY_THREADS_MAX = 256             # OpenMP threads one batch verify may use
# Signatures per Ed25519 batch equation in the kernel (docs/verification.md 1.3).
# Not consensus: under ZIP 215 any batch size gives the same verdicts.
ED25519_BATCH_ITEMS = 128
BLAKE3_KERNEL_INPUT_BYTES_MAX = 1024  # one BLAKE3 chunk; larger inputs use the blake3 package

# --- domain separation -------------------------------------------------------
# Ed25519 signs DOMAIN || chain_id_len || chain_id || BLAKE3(body): a tx signature
# can never be replayed on another chain nor taken for a vote or a header.
TX_SIGN_DOMAIN = b"chainmall/tx/sign/v1\x00"
# A validator signs COMMIT_SIGN_DOMAIN || chain_id_len || chain_id || height u64 || round u32
# || block hash: a commit signature is never valid for another chain, height or tx.
COMMIT_SIGN_DOMAIN = b"chainmall/commit/sign/v1\x00"
# BLAKE3 derive_key contexts: each gives a 32-byte key for keyed hashing.
MERKLE_LEAF_CONTEXT = "chainmall 2026-11 merkle leaf v1"
MERKLE_NODE_CONTEXT = "chainmall 2026-11 merkle node v1"
ADDRESS_CONTEXT = "chainmall 2026-11 address v1"
BLOCK_HASH_CONTEXT = "chainmall 2026-11 block header v1"

# --- addresses -------------------------------------------------------------------
ADDRESS_HRP = "cm"

# --- state tree ------------------------------------------------------------
STATE_KEY_BYTES_MAX = 128
STATE_VALUE_BYTES_MAX = 64 * 1024
STATE_CHANGES_MAX = 1 << 20  # changes per `apply` call (a block, or a bulk load)
STATE_PATH_BITS = 256
STATE_NODE_VERSION = 1
STATE_PROOF_VERSION = 1
STATE_PATH_CONTEXT = "chainmall 2026-11 state path v1"
STATE_VALUE_CONTEXT = "chainmall 2026-11 state value v1"
STATE_LEAF_CONTEXT = "chainmall 2026-11 state leaf v1"
STATE_NODE_CONTEXT = "chainmall 2026-11 state node v1"

# --- storage ---------------------------------------------------------------
# 2: staged tx_index and tree tables; 3: a second staging level, tree nodes stamped with
# the height that wrote them, the stale-node index (core/store.py)
STORE_FORMAT_VERSION = 4  # 4: the recent staging level is one database per slice
STORE_MERGE_BLOCKS = 16  # a staged entry moves into the middle level within this many blocks
# Every block moves one key slice of the recent level (a hash's first 4 bits: height mod
# 16) into the middle level, and one of the middle level (a hash's first byte: height
# mod 256) into the main tables, so each entry reaches the main table within 16 + 256
# blocks and no commit carries more than its share of the merge (core/store.py).
STORE_FLUSH_SLICES = 16
STORE_MID_SLICES = 256
STORE_NODE_ORDER_CALLS_MAX = 256  # get_nodes calls per snapshot with a level-order hint (per depth)
MAP_SIZE_BYTES_DEFAULT = 1 << 30  # 1 GiB; doubled on MapFullError
MAP_SIZE_BYTES_MAX = 1 << 40  # 1 TiB: growth stops here
STORE_DBS_MAX = 128  # named LMDB databases: the chain tables plus one per state table (all ranges)
STORE_READERS_MAX = 126  # LMDB reader slots (its default); sizes the lock file
# An EIO from a write with at most this much space left is reported as a full disk:
# LMDB reports a short write (the disk filled part-way through a page run) as EIO.
DISK_FULL_FREE_BYTES_MAX = 1 << 20
DATA_DIR_LOCK_ATTEMPTS_MAX = 8  # tries to lock a data dir that is being replaced meanwhile

# --- genesis ---------------------------------------------------------------
# 2: the mall section (docs/mall.md section 2) and the governance section (docs/cometbft.md
# section 7); 3: the trust section (docs/trust.md section 2)
GENESIS_VERSION = 3
GENESIS_FILE_BYTES_MAX = 256 * 1024 * 1024
GENESIS_BALANCES_MAX = 1_000_000
GENESIS_VALIDATORS_MAX = 256  # == COMMIT_SIGNATURES_MAX
VALIDATOR_SET_CONTEXT = "chainmall 2026-11 validator set v1"

# --- accounts and transfers ------------------------------------------------
ACCOUNT_VERSION = 1
FEE_POOL_VERSION = 1
CREATOR_VERSION = 1
TABLE_ACCOUNTS = 0x01
TABLE_FEE_POOL = 0x02
TABLE_CREATORS = 0x03  # who funded an account into existence (docs/state.md section 2)
# --- validators and governance (core/validators/, docs/cometbft.md section 7) ---
VALIDATOR_VERSION = 1
VALIDATOR_SET_VERSION = 1
PROPOSAL_VERSION = 1
TABLE_VALIDATORS = 0x40  # public key -> power, bond, operator (every bonded validator)
TABLE_VALIDATOR_SETS = 0x41  # the signing sets by height, their index, addresses, pending
TABLE_GOVERNANCE = 0x42  # open validator-set proposals and their votes
TX_TYPE_VALIDATOR_BOND = 0x0300
TX_TYPE_VALIDATOR_UNBOND = 0x0301
TX_TYPE_VALIDATOR_SET_POWER = 0x0302
TX_TYPE_VALIDATOR_VOTE = 0x0303
GOVERNANCE_TX_TYPE_MIN = 0x0300
GOVERNANCE_TX_TYPE_MAX = 0x03FF
# CometBFT refuses a validator set whose total power exceeds MaxInt64 / 8.
VALIDATOR_TOTAL_POWER_MAX = (2**63 - 1) // 8
VALIDATORS_MAX = 256  # active validators (== COMMIT_SIGNATURES_MAX)
GOVERNANCE_AUTHORITIES_MAX = 64
VALIDATOR_SETS_KEPT = 3  # signing sets the index keeps: heights h, h + 1, h + 2
VALIDATOR_PENDING_MAX = VALIDATORS_MAX  # validators changed in one block

# --- light client (core/light.py): CometBFT's light package defaults ------------------
LIGHT_TRUST_NUMERATOR = 1  # a non-adjacent header needs > 1/3 of the trusted set's power
LIGHT_TRUST_DENOMINATOR = 3
LIGHT_TRUSTING_PERIOD_MS_DEFAULT = 7 * 24 * 3600 * 1000  # a verified header stays trusted
LIGHT_CLOCK_DRIFT_MS_DEFAULT = 10_000  # how far in the future a header's time may be
LIGHT_BLOCKS_MAX = 64  # headers one verification may fetch (bisection steps included)

TX_TYPE_TRANSFER = 1

# --- the mall (docs/mall.md) ---------------------------------------------------
# State tables 0x10-0x2F; a key's first byte is its table id.
TABLE_MALL_PARTIES = 0x10
TABLE_MALL_ROLES = 0x11
TABLE_MALL_POOL = 0x12
TABLE_MALL_META = 0x13
TABLE_MALL_CERTS = 0x14
TABLE_MALL_PRODUCTS = 0x15
TABLE_MALL_MERCHANT_PRODUCTS = 0x16
TABLE_MALL_ITEMS = 0x17
TABLE_MALL_ITEM_EVENTS = 0x18
TABLE_MALL_EVENTS = 0x19
TABLE_MALL_DECLARATIONS = 0x1A
TABLE_MALL_HANDOVERS = 0x1B
TABLE_MALL_ORDERS = 0x1C
TABLE_MALL_ESCROWS = 0x1D
TABLE_MALL_PARTY_ORDERS = 0x1E
TABLE_MALL_DISPUTES = 0x1F
TABLE_MALL_SEATS = 0x20
TABLE_MALL_DEADLINES = 0x21
TABLE_MALL_DRAWS = 0x22
TABLE_MALL_TAX_RATES = 0x23
TABLE_MALL_TAX_RECORDS = 0x24
TABLE_MALL_CLOSED = 0x25
MALL_TABLES = {
    TABLE_MALL_PARTIES: "mall_parties",
    TABLE_MALL_ROLES: "mall_roles",
    TABLE_MALL_POOL: "mall_pool",
    TABLE_MALL_META: "mall_meta",
    TABLE_MALL_CERTS: "mall_certs",
    TABLE_MALL_PRODUCTS: "mall_products",
    TABLE_MALL_MERCHANT_PRODUCTS: "mall_merchant_products",
    TABLE_MALL_ITEMS: "mall_items",
    TABLE_MALL_ITEM_EVENTS: "mall_item_events",
    TABLE_MALL_EVENTS: "mall_events",
    TABLE_MALL_DECLARATIONS: "mall_declarations",
    TABLE_MALL_HANDOVERS: "mall_handovers",
    TABLE_MALL_ORDERS: "mall_orders",
    TABLE_MALL_ESCROWS: "mall_escrows",
    TABLE_MALL_PARTY_ORDERS: "mall_party_orders",
    TABLE_MALL_DISPUTES: "mall_disputes",
    TABLE_MALL_SEATS: "mall_seats",
    TABLE_MALL_DEADLINES: "mall_deadlines",
    TABLE_MALL_DRAWS: "mall_draws",
    TABLE_MALL_TAX_RATES: "mall_tax_rates",
    TABLE_MALL_TAX_RECORDS: "mall_tax_records",
    TABLE_MALL_CLOSED: "mall_closed",
}
MALL_TABLE_ID_MIN = 0x10
MALL_TABLE_ID_MAX = 0x2F
# Tx types 0x0100-0x01FF.
TX_MALL_PARTY_REGISTER = 0x0101
TX_MALL_PARTY_UPDATE = 0x0102
TX_MALL_PARTY_UNBOND = 0x0103
TX_MALL_CERTIFY = 0x0110
TX_MALL_REVOKE = 0x0111
TX_MALL_PRODUCT_LIST = 0x0120
TX_MALL_PRODUCT_UPDATE = 0x0121
TX_MALL_PRODUCT_DELIST = 0x0122
TX_MALL_TRACE_RECORD = 0x0130
TX_MALL_TRACE_DECLARE_ERROR = 0x0131
TX_MALL_HANDOVER_PROPOSE = 0x0138
TX_MALL_HANDOVER_ACCEPT = 0x0139
TX_MALL_HANDOVER_REJECT = 0x013A
TX_MALL_HANDOVER_CANCEL = 0x013B
TX_MALL_ORDER_PLACE = 0x0140
TX_MALL_ORDER_CANCEL = 0x0141
TX_MALL_ESCROW_DELIVER = 0x0150
TX_MALL_ESCROW_CONFIRM = 0x0151
TX_MALL_DISPUTE_OPEN = 0x0160
TX_MALL_DISPUTE_EVIDENCE = 0x0161
TX_MALL_DISPUTE_VOTE = 0x0162
TX_MALL_TAX_RATE_SET = 0x0170
MALL_TX_TYPE_MIN = 0x0100
MALL_TX_TYPE_MAX = 0x01FF
MALL_VERSION = 1  # first byte of every mall payload and mall state value
BPS_DENOMINATOR = 10_000  # basis points: 10,000 = 100 %
# Text fields (bytes of UTF-8 or ASCII, as docs/mall.md says per field).
MALL_NAME_BYTES_MAX = 64
MALL_BRAND_BYTES_MAX = 64
MALL_TITLE_BYTES_MAX = 128
MALL_CATEGORY_BYTES_MAX = 64
JURISDICTION_BYTES_MAX = 16
EPCIS_URI_BYTES_MAX = 128
EPCIS_UOM_BYTES_MAX = 3
EPCIS_ILMD_VALUE_BYTES_MAX = 64
# Lists and bounds.
EPCIS_EVENT_IDS_MAX = 32  # item and class ids named by one event, over all its lists
EPCIS_BIZ_TRANSACTIONS_MAX = 8
EPCIS_SOURCES_MAX = 4  # per source list and per destination list
EPCIS_ILMD_FIELDS_MAX = 8
EPCIS_CORRECTIVE_EVENTS_MAX = 8
EPCIS_TZ_OFFSET_MINUTES_MAX = 14 * 60  # EPCIS: -14:00 .. +14:00
EPCIS_TIME_MS_MAX = 253_402_250_399_999  # 9999-12-31T09:59:59.999Z: year 9999 in every offset
AGGREGATION_DEPTH_MAX = 8  # containers inside containers
PRODUCT_STOCK_MAX = 2**32 - 1
ORDER_QUANTITY_MAX = 1_000_000
SEALED_BOX_OVERHEAD_BYTES = 48  # X25519 ephemeral public key 32 + Poly1305 tag 16
SEALED_ADDRESS_BYTES_MAX = 512
EVIDENCE_MAX = 16  # evidence hashes per dispute
PANEL_SEATS_MAX = 3
DISPUTE_ROUNDS_MAX = 16  # the genesis value must not exceed it
ARBITRATOR_POOL_MAX = 100_000
DRAW_ATTEMPTS_MAX = 64  # random probes per seat before the ordered fallback walk
DRAW_WALK_MAX = 1_024  # pool members the fallback walk looks at, at most
CREATOR_HOPS_MAX = 2  # funding links followed when excluding arbitrators
DEADLINES_PER_BLOCK_MAX = 10_000  # deadlines one block applies; the rest wait a block
DRAWS_PER_BLOCK_MAX = 10_000
MALL_CERTIFIERS_MAX = 64
MALL_JURISDICTIONS_MAX = 256
MALL_TIMEOUT_MS_MAX = 10 * 365 * 86_400_000  # ten years: deadlines stay far inside u64
TRACE_EVENTS_MAX = 100_000  # events one trace query returns
TRACE_ITEMS_MAX = 10_000  # items one trace query visits (transformation inputs)
MALL_QUERY_ITEMS_MAX = 1_000  # entries a list query returns
# The mall's command line (cli/mall*.py): what one command reads, at most.
MALL_TRACE_READS_MAX = 3  # a trace read again when a block changed it between its two reads
MALL_MERCHANT_PAGES_MAX = 100  # pages of merchants `mall merchant list` reads
MALL_TAX_REPORT_PAGES_MAX = 1_000  # pages of MALL_QUERY_ITEMS_MAX records `mall tax report` reads
EPCIS_IMPORT_BYTES_MAX = 1 << 20  # an EPCIS document `mall trace import` reads whole
ADDRESS_TEXT_CACHE_ENTRIES = 1 << 16  # cm1... texts the mall keeps for event attributes
DECODE_CACHE_ENTRIES = 1 << 12  # decoded mall values kept per kind (immutable objects)

# --- trust: reviews, reputation, fake orders, ranking, rewards (docs/trust.md) --------
# State tables 0x30-0x3F.
TABLE_TRUST_REVIEWS = 0x30
TABLE_TRUST_REPLIES = 0x31
TABLE_TRUST_REVIEW_INDEX = 0x32
TABLE_TRUST_MERCHANTS = 0x33
TABLE_TRUST_PRODUCTS = 0x34
TABLE_TRUST_RANK = 0x35
TABLE_TRUST_ORDERS = 0x36
TABLE_TRUST_HOURS = 0x37
TABLE_TRUST_RELEASES = 0x38
TABLE_TRUST_REPORTS = 0x39
TABLE_TRUST_REPORT_INDEX = 0x3A
TABLE_TRUST_QUEUE = 0x3B
TABLE_TRUST_EPOCHS = 0x3C
TABLE_TRUST_ACCOUNTS = 0x3D
TABLE_TRUST_CLAIMS = 0x3E
TABLE_TRUST_META = 0x3F
TRUST_TABLES = {
    TABLE_TRUST_REVIEWS: "trust_reviews",
    TABLE_TRUST_REPLIES: "trust_replies",
    TABLE_TRUST_REVIEW_INDEX: "trust_review_index",
    TABLE_TRUST_MERCHANTS: "trust_merchants",
    TABLE_TRUST_PRODUCTS: "trust_products",
    TABLE_TRUST_RANK: "trust_rank",
    TABLE_TRUST_ORDERS: "trust_orders",
    TABLE_TRUST_HOURS: "trust_hours",
    TABLE_TRUST_RELEASES: "trust_releases",
    TABLE_TRUST_REPORTS: "trust_reports",
    TABLE_TRUST_REPORT_INDEX: "trust_report_index",
    TABLE_TRUST_QUEUE: "trust_queue",
    TABLE_TRUST_EPOCHS: "trust_epochs",
    TABLE_TRUST_ACCOUNTS: "trust_accounts",
    TABLE_TRUST_CLAIMS: "trust_claims",
    TABLE_TRUST_META: "trust_meta",
}
TRUST_TABLE_ID_MIN = 0x30
TRUST_TABLE_ID_MAX = 0x3F
# Tx types 0x0200-0x02FF.
TX_TRUST_REVIEW_ADD = 0x0201
TX_TRUST_REVIEW_REPLY = 0x0202
TX_TRUST_REVIEW_CONTINUE = 0x0203
TX_TRUST_REPORT_FILE = 0x0210
TX_TRUST_REPORT_VOTE = 0x0211
TX_TRUST_REWARD_CLAIM = 0x0220
TX_TRUST_REWARD_ATTEST = 0x0221
TRUST_TX_TYPE_MIN = 0x0200
TRUST_TX_TYPE_MAX = 0x02FF
TRUST_VERSION = 1  # first byte of every trust payload and value (the mall's codec reads it)
REVIEW_TEXT_BYTES_MAX = 1_000  # UTF-8 bytes of a review or a reply
REVIEW_PART_BYTES_MAX = 800  # text bytes one tx carries (the rest follows in a continuation)
REVIEW_VERSIONS_MAX = 8  # a review and its corrections, per order
RATING_MIN = 1
RATING_MAX = 5
# Fixed point: decayed counts are in units of 2^-16 (Q16); a decay factor is Q32.
TRUST_COUNT_ONE = 1 << 16
DECAY_STEPS_PER_HALF_LIFE = 64  # the decay factor moves in 64 steps per half-life
RANK_PPM_MAX = 1_000_000  # a rank is in millionths
TITLE_TOKENS_MAX = 16  # distinct title tokens a listing is indexed under
TOKEN_BYTES_MIN = 2
TOKEN_BYTES_MAX = 32
CATEGORY_LEVELS_MAX = 8  # '/'-separated category prefixes indexed
SEARCH_TERMS_MAX = 8  # tokens of one search query
SEARCH_SCAN_MAX = 5_000  # index entries one search reads to find its top k
TOP_K_MAX = 100  # products one top or search query returns
RERANK_PER_BLOCK_MAX = 2_000  # products re-ranked per block after a merchant's score moved
HOUR_MS = 3_600_000  # the concentration signal's window: an hour of block time
HOUR_GC_PER_BLOCK_MAX = 1_000  # stale hour-bucket entries deleted per block
BURST_TRACKED_MAX = 16  # fresh first orders remembered per shop-hour (burst_first_orders' bound)
CONCENTRATION_TRACKED_MAX = 4  # a buyer's orders remembered per shop-hour
RELEASES_TRACKED_MAX = 8  # releases remembered per merchant and buyer (flow-back signal)
REPORT_ORDERS_MAX = 24  # orders one fake-order report names
REPORT_DRAWS_PER_BLOCK_MAX = 1_000
REPORT_DEADLINES_PER_BLOCK_MAX = 1_000
ATTEST_CLAIMS_PER_TX_MAX = 16
TRUST_ATTESTERS_MAX = 16
TRUST_POINTS_AWARD_MAX = 1 << 32  # points one award may give (a genesis bound)
EPOCHS_EXPIRED_PER_BLOCK_MAX = 16  # closed epochs whose residue returns to the fee pool per block
ACCUMULATOR_SHIFT = 64  # reward per point is Q64: amount * 2^64 // points
TRUST_QUERY_ITEMS_MAX = 1_000
# Query proofs (core/state/root/proofs.py: prove_many): the application keeps the
# state tree's upper internal nodes (depth < PROOF_CACHE_DEPTH, checked) between
# queries, at most PROOF_CACHE_NODES_MAX (then it starts over): ~100 bytes each.
PROOF_CACHE_DEPTH = 12
PROOF_CACHE_NODES_MAX = 1 << 15

# Every state table: its id (a state key's first byte) and its LMDB database.
VALIDATOR_TABLES = {TABLE_VALIDATORS: "validators", TABLE_VALIDATOR_SETS: "validator_sets",
                    TABLE_GOVERNANCE: "governance"}
STATE_TABLES = {TABLE_ACCOUNTS: "accounts", TABLE_FEE_POOL: "fee_pool",
                TABLE_CREATORS: "creators", **MALL_TABLES, **VALIDATOR_TABLES, **TRUST_TABLES}

# --- receipts --------------------------------------------------------------
RECEIPTS_VERSION = 1

# --- chain archives (export/import) --------------------------------------
ARCHIVE_MAGIC = b"CHMALLAR"
ARCHIVE_FORMAT_VERSION = 1
ARCHIVE_BLOCKS_MAX = 1 << 32  # bounds the trailer's count (u64 on the wire)
ARCHIVE_READ_BYTES = 1 << 20  # streaming chunk for the trailer hash
CHECK_PROBLEMS_MAX = 1_000  # problem lines `db check` lists; past it, one line counts the rest

# --- the node (core/node/) -----------------------------------------------------
# Defaults of config.toml's keys, and the largest value each may be set to.
BLOCK_INTERVAL_MS_DEFAULT = 250  # a block every this many ms while txs wait
BLOCK_INTERVAL_MS_MAX = 60_000
MEMPOOL_TXS_DEFAULT = 100_000  # pending txs (all senders)
MEMPOOL_TXS_MAX = 100_000  # <= half the signature cache: an admitted tx stays cached
MEMPOOL_BYTES_DEFAULT = 64 * 1024 * 1024  # pending txs' wire bytes
MEMPOOL_BYTES_MAX = 1 << 30
MEMPOOL_SENDER_TXS_DEFAULT = 2_000  # pending txs of one sender
ADMISSION_WINDOW_MS_DEFAULT = 2  # submits gathered into one batch of stateless checks
ADMISSION_WINDOW_MS_MAX = 100
ADMISSION_BATCH_TXS_MAX = 4_096  # txs per admission batch (one kernel call)
ADMISSION_QUEUE_TXS_MAX = 65_536  # submits waiting for admission; more are refused
FINAL_RESULTS_KEPT_MAX = 200_000  # recent final txs' results (with events) kept in memory
SUBSCRIPTION_ITEMS_MAX = 4_096  # undelivered items per subscriber before it is ended
# The producer caps each block at the txs that the last blocks' cost says fit in a time
# target (BLOCK_TIME_TARGET_PERCENT of block_interval_ms for execution + commit), so a tx's
# wait stays near two blocks' time under load; never below BLOCK_TXS_ADAPTIVE_MIN (nor
# above block_txs_max): on a starved machine the time per tx inflates, and smaller blocks
# would then cost more CPU per tx (each block's fixed part: ~30 ms of block-thread CPU
# measured at 450-tx blocks). A node starts at BLOCK_TXS_ADAPTIVE_START until it has
# measured.
BLOCK_TIME_TARGET_PERCENT = 150
BLOCK_TXS_ADAPTIVE_MIN = 1_000
BLOCK_TXS_ADAPTIVE_START = 2_000
# A node maps its ledger this large from the start (address space, not disk: the file
# grows as written), so the map never has to grow under the node's reader threads.
NODE_MAP_SIZE_BYTES = 1 << 38  # 256 GiB
# Pruning: the state trees of the last N heights stay provable (0 keeps every height).
PRUNE_RETAIN_HEIGHTS_DEFAULT = 10_000
PRUNE_RETAIN_HEIGHTS_MAX = U32_MAX
# --- ABCI socket server (docs/cometbft.md) -----------------------------------
# The largest request CometBFT sends is a block (ProcessProposal, FinalizeBlock,
# PrepareProposal's candidates) with its commit info and evidence: the block
# cap plus room for those. The genesis `block.max_bytes` must stay within it.
ABCI_REQUEST_BYTES_MAX = BLOCK_BYTES_MAX + 4 * 1024 * 1024
ABCI_CONNECTIONS_MAX = 8  # CometBFT opens 4; a restarted engine may overlap the old ones
ABCI_READ_BYTES_MAX = 256 * 1024  # one socket read
ABCI_BATCH_REQUESTS_MAX = 1024  # requests answered between two socket writes
# Localnets and the supervisor (core/abci/localnet.py, core/abci/supervisor.py).
LOCALNET_NODES_MAX = 64
LOCALNET_PORT_STRIDE = 10  # node i's ports: base + 10 i + (P2P, CometBFT RPC, ABCI, RPC)
SUPERVISOR_RESTARTS_MAX = 20  # restarts of one node's pair before the supervisor gives up
SUPERVISOR_STOP_S = 20  # how long CometBFT may take to stop on SIGTERM before SIGKILL
COMETBFT_RPC_TIMEOUT_S = 10.0  # one call to a CometBFT node's RPC
# The node with CometBFT as engine (core/node/cometbft_node.py): what one node's RPC admits.
# Its txs in flight stay below CometBFT's mempool size (the localnet's 50,000 holds four
# nodes' worth), so CometBFT never drops a tx it acknowledged for want of room.
COMETBFT_SUBMIT_RATE_PER_S = 5_000  # token bucket refill: submits per second, all clients
COMETBFT_SUBMIT_BURST_MAX = 10_000  # token bucket size
COMETBFT_PENDING_TXS_MAX = 10_000  # admitted, forwarded, not final yet
COMETBFT_RESUBMIT_MS = 3_000  # a pending tx not final this long after its last send: resent
COMETBFT_FORWARD_BATCH_MAX = 500  # txs per JSON-RPC batch to CometBFT (<= its batch limit)
# A batch envelope (core/abci/envelope.py, docs/formats.md section 11): one CometBFT tx
# carrying signed txs, each checked and executed as if it came alone.
ENVELOPE_MAGIC = 0xE1  # first byte of an envelope; a v1 tx starts with TX_VERSION
ENVELOPE_VERSION = 1
ENVELOPE_TXS_MAX = 1_000  # inner txs per envelope
# One state proof in a Query response: at most 256 siblings of 32 bytes plus a leaf.
ABCI_QUERY_PROOF_BYTES_MAX = 64 * 1024
# PrepareProposal under CometBFT (core/abci/app.py) proposes what the last blocks' measured
# FinalizeBlock + Commit time says fits in PROPOSAL_TIME_TARGET_MS (the producer's
# BlockSizer, core/abci/block_sizer.py), counting an envelope's carried txs, but at least
# the txs that arrived (CheckTx) over the last block and never below PROPOSAL_TXS_MIN; a
# node starts at PROPOSAL_TXS_START. It shapes only this node's own proposals. On the
# shared 2-core machine every target tried (250, 500, 1,000 ms) cost throughput at
# saturation (each block has a fixed cost, so smaller blocks cost more CPU per tx) and
# changed nothing below it (blocks were arrival-sized): 5 s trims only runaway blocks
# (bench/README.md, "Proposal cap"). Lower it once the per-block cost falls.
PROPOSAL_TIME_TARGET_MS = 5_000
PROPOSAL_TXS_MIN = 200
PROPOSAL_TXS_START = 1_000
# --- RPC (core/rpc/) ------------------------------------------------------------
# Every limit is enforced at the edge of the server (before any work is done
# for the request); the node's config may lower or raise the defaults below
# (core/rpc/config.py: RpcLimits), except where noted.
RPC_FRAME_BYTES_MAX = 1 << 20  # one request: a line, an HTTP body or a WebSocket message
RPC_BATCH_ITEMS_MAX = 256  # requests in one JSON-RPC batch
RPC_CONNECTIONS_MAX = 1024  # open connections per server, all transports together
RPC_INFLIGHT_REQUESTS_MAX = 128  # per connection; reading pauses at this many
RPC_REQUESTS_PER_S_MAX = 5_000  # per connection: token bucket refill rate (batch items count)
RPC_REQUESTS_BURST_MAX = 5_000  # per connection: token bucket size
RPC_SUBSCRIPTIONS_MAX = 64  # per connection
RPC_WRITE_BUFFER_BYTES_MAX = 8 << 20  # unsent bytes before a client counts as not reading
RPC_IDLE_MS_MAX = 120_000  # a connection with no request in flight and no subscription
RPC_READ_MS_MAX = 15_000  # a started frame (line or HTTP request) must be complete within
RPC_WRITE_MS_MAX = 15_000  # a client must take what was written within this
RPC_WAIT_MS_MAX = 60_000  # longest submit-and-wait a request may ask for
RPC_WAIT_MS_DEFAULT = 10_000
RPC_TOKEN_CHARS_MIN = 16  # a bearer token shorter than this is refused
RPC_TOKEN_CHARS_MAX = 1024  # a presented token longer than this is invalid params
RPC_QUERY_PATH_CHARS_MAX = 256
RPC_QUERY_DATA_BYTES_MAX = 4096
RPC_METHOD_CHARS_MAX = 64  # a longer unknown method name is cut in the error message
RPC_SUBSCRIPTION_ID_CHARS_MAX = 16
RPC_RESPONSE_BYTES_MAX = 2 * BLOCK_BYTES_MAX + (1 << 20)  # client side: a full block in hex
RPC_CLIENT_QUEUE_ITEMS_MAX = 10_000  # client side: notifications kept for a slow consumer
RPC_SHUTDOWN_MS_MAX = 5_000  # in-flight requests get this long to finish on stop
RPC_TCP_PORT_DEFAULT = 8645
RPC_HTTP_PORT_DEFAULT = 8646

# --- the product page (docs/page.md) ---------------------------------------------
PAGE_PRODUCTS_LIMIT_MAX = 100  # listings one mall.products answer holds
PAGE_PRODUCTS_SCAN_MAX = 10_000  # listings the sales ranking and the plain search read
PAGE_QUERY_CHARS_MAX = 128  # a search text
PAGE_ORDERS_SCAN_MAX = 1_000  # a merchant's orders read to find a listing's items
PAGE_ITEMS_MAX = 100  # items (and certifications) one product answer lists
PAGE_REVIEWS_MAX = 50  # reviews one product answer lists
PAGE_REVIEWS_SCAN_MAX = 1_000  # review index entries read for the newest or for a count
PAGE_TRACE_EVENTS_MAX = 10_000  # events of one item history the page is served; more: refused
PAGE_TRACE_ITEMS_MAX = 1_000  # items one history may reach
PAGE_COMETBFT_HEADER_WAIT_MS = 3_000  # a CometBFT trace waits this long for header h + 1
LIGHT_REFRESH_MS = 3600 * 1000  # a CometBFT node's light client advances its trust this often
LIGHT_REFRESH_RETRY_MS = 5_000  # ...and tries again this soon after a failure or before block 1
LIGHT_STORE_BYTES_MAX = 1 << 20  # the stored trusted header file (DATA/light-client.json)
PAGE_CURRENCY_SYMBOL = "CMT"  # how the page names the chain's unit (display only)
PAGE_CURRENCY_DECIMALS = 2  # amounts are shown as amount / 10^decimals (display only)

# --- relations ---------------------------------------------------------------------
assert TX_BODY_FIXED_BYTES + CHAIN_ID_BYTES_MAX + TX_PAYLOAD_BYTES_MAX <= TX_BODY_BYTES_MAX
assert TX_BODY_BYTES_MAX <= BLAKE3_KERNEL_INPUT_BYTES_MAX
assert BLOCK_TXS_MAX * TX_BYTES_MIN <= BLOCK_BYTES_MAX
assert BLOCK_TXS_MAX <= BATCH_ITEMS_MAX
assert set(CHAIN_ID_ALPHABET).isdisjoint(b"\x00")
assert MAP_SIZE_BYTES_DEFAULT <= MAP_SIZE_BYTES_MAX
assert GENESIS_VALIDATORS_MAX <= COMMIT_SIGNATURES_MAX
assert TABLE_ACCOUNTS != TABLE_FEE_POOL

assert len(set(STATE_TABLES.values())) == len(STATE_TABLES)
assert all(MALL_TABLE_ID_MIN <= table <= MALL_TABLE_ID_MAX for table in MALL_TABLES)
assert all(TRUST_TABLE_ID_MIN <= table <= TRUST_TABLE_ID_MAX for table in TRUST_TABLES)
assert TRUST_VERSION == MALL_VERSION  # trust values are read with the mall's codec
assert 1 + 20 + 32 + 1 + REPORT_ORDERS_MAX * HASH_BYTES <= TX_PAYLOAD_BYTES_MAX
assert 1 + 1 + ATTEST_CLAIMS_PER_TX_MAX * (ADDRESS_BYTES + 1 + HASH_BYTES) <= TX_PAYLOAD_BYTES_MAX
# A 1,000-byte review does not fit one tx: it is sent in parts (docs/trust.md 4.1).
assert REVIEW_TEXT_BYTES_MAX <= 2 * REVIEW_PART_BYTES_MAX
assert 1 + HASH_BYTES + 1 + 2 + 2 + REVIEW_PART_BYTES_MAX <= TX_PAYLOAD_BYTES_MAX

assert SEALED_BOX_OVERHEAD_BYTES < SEALED_ADDRESS_BYTES_MAX < TX_PAYLOAD_BYTES_MAX
assert PANEL_SEATS_MAX == 3  # a panel is one seat or three (docs/mall.md section 9)
assert EPCIS_EVENT_IDS_MAX * 2 <= 255  # list counts are u8
assert 43 + len(STATE_TABLES) <= STORE_DBS_MAX  # 11 chain tables, 32 recent slices
assert STORE_FLUSH_SLICES == 16  # a slice is a key's first 4 bits (core/store.py)
assert STORE_MID_SLICES == 256 == STORE_MERGE_BLOCKS * STORE_FLUSH_SLICES  # a key's first byte
assert MAP_SIZE_BYTES_DEFAULT <= NODE_MAP_SIZE_BYTES <= MAP_SIZE_BYTES_MAX
assert MEMPOOL_TXS_DEFAULT <= MEMPOOL_TXS_MAX <= SIGNATURE_CACHE_ENTRIES_MAX // 2
assert MEMPOOL_BYTES_DEFAULT <= MEMPOOL_BYTES_MAX
assert MEMPOOL_SENDER_TXS_DEFAULT <= MEMPOOL_TXS_DEFAULT
assert ADMISSION_WINDOW_MS_DEFAULT <= ADMISSION_WINDOW_MS_MAX
assert ADMISSION_BATCH_TXS_MAX <= BATCH_ITEMS_MAX
assert BLOCK_INTERVAL_MS_DEFAULT <= BLOCK_INTERVAL_MS_MAX
assert BLOCK_TXS_ADAPTIVE_MIN <= BLOCK_TXS_ADAPTIVE_START <= BLOCK_TXS_MAX
assert BLOCK_TIME_TARGET_PERCENT > 0
assert PRUNE_RETAIN_HEIGHTS_DEFAULT <= PRUNE_RETAIN_HEIGHTS_MAX
assert BLOCK_BYTES_MAX < ABCI_REQUEST_BYTES_MAX
assert STATE_PATH_BITS * HASH_BYTES < ABCI_QUERY_PROOF_BYTES_MAX
assert VALIDATORS_MAX <= COMMIT_SIGNATURES_MAX
assert COMETBFT_SUBMIT_BURST_MAX >= 1 and COMETBFT_FORWARD_BATCH_MAX >= 1
assert all(0x40 <= table <= 0x4F for table in
           (TABLE_VALIDATORS, TABLE_VALIDATOR_SETS, TABLE_GOVERNANCE))
assert GENESIS_VALIDATORS_MAX <= VALIDATORS_MAX
assert TX_BYTES_MAX * 2 * RPC_BATCH_ITEMS_MAX <= RPC_FRAME_BYTES_MAX  # a batch of hex txs fits
assert RPC_FRAME_BYTES_MAX <= RPC_WRITE_BUFFER_BYTES_MAX
assert RPC_WAIT_MS_DEFAULT <= RPC_WAIT_MS_MAX
assert PAGE_TRACE_EVENTS_MAX <= TRACE_EVENTS_MAX and PAGE_TRACE_ITEMS_MAX <= TRACE_ITEMS_MAX
assert LIGHT_REFRESH_MS * 24 <= LIGHT_TRUSTING_PERIOD_MS_DEFAULT  # refreshed well within
assert ENVELOPE_MAGIC != TX_VERSION and ENVELOPE_TXS_MAX <= BLOCK_TXS_MAX
assert 1 <= PROPOSAL_TXS_MIN <= PROPOSAL_TXS_START <= BLOCK_TXS_MAX
assert PROPOSAL_TIME_TARGET_MS > 0
assert COMETBFT_FORWARD_BATCH_MAX <= ENVELOPE_TXS_MAX

# --- the node process's interpreter (core/node/app.py, config key node.switch_interval_us) ---
SWITCH_INTERVAL_US_DEFAULT = 500  # the GIL's switch interval (Python's own: 5,000 us)
SWITCH_INTERVAL_US_MIN = 50
SWITCH_INTERVAL_US_MAX = 100_000
assert SWITCH_INTERVAL_US_MIN <= SWITCH_INTERVAL_US_DEFAULT <= SWITCH_INTERVAL_US_MAX

# An ABCI application's decoded txs, by the CometBFT tx (envelope) that carried them: decoded
# once at CheckTx, reused by PrepareProposal, ProcessProposal and FinalizeBlock. Counted in
# carried txs (two full blocks' worth; about 600 bytes each with their envelope's bytes, so
# 23 MiB when full), the oldest forgotten first.
ABCI_DECODED_TXS_MAX = 2 * BLOCK_TXS_MAX

# --- admission's signature batches (core/node/admission.py, mempool.admission_verify_threads) ---
# 0: every core; a batch of one batch equation (ED25519_BATCH_ITEMS txs or fewer) never wakes
# a thread team, so only a backlog's large batches are shared out.
ADMISSION_VERIFY_THREADS_DEFAULT = 0
assert 0 <= ADMISSION_VERIFY_THREADS_DEFAULT <= VERIFY_THREADS_MAX
