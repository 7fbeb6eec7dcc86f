"""Every protocol constant and limit, in one place; relations checked at import.

Names carry their unit last (`TX_BYTES_MAX`, `SIGNATURE_BYTES`). Changing a
consensus constant is a protocol change: bump the matching version.
"""

from __future__ import annotations

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
STORE_FORMAT_VERSION = 3
STORE_MERGE_BLOCKS = 16  # staged entries move into the middle level every this many blocks
# The middle level moves into the main tables one key slice (a hash's first 4 bits) per
# merge, so each entry reaches the main table within STORE_MERGE_BLOCKS * 16 blocks.
STORE_FLUSH_SLICES = 16
MAP_SIZE_BYTES_DEFAULT = 1 << 30  # 1 GiB; doubled on MapFullError
MAP_SIZE_BYTES_MAX = 1 << 40  # 1 TiB: growth stops here
STORE_DBS_MAX = 32  # named LMDB databases: the chain tables plus one per state table

# --- genesis ---------------------------------------------------------------
GENESIS_VERSION = 1
GENESIS_FILE_BYTES_MAX = 256 * 1024 * 1024
GENESIS_BALANCES_MAX = 1_000_000
GENESIS_VALIDATORS_MAX = 256  # == COMMIT_SIGNATURES_MAX
VALIDATOR_SET_CONTEXT = "chainmall 2026-11 validator set v1"

# --- accounts and transfers ------------------------------------------------
ACCOUNT_VERSION = 1
FEE_POOL_VERSION = 1
TABLE_ACCOUNTS = 0x01
TABLE_FEE_POOL = 0x02
# Every state table: its id (a state key's first byte) and its LMDB database.
# Domain tables (merchants, products, orders, ...) are added here.
STATE_TABLES = {TABLE_ACCOUNTS: "accounts", TABLE_FEE_POOL: "fee_pool"}
TX_TYPE_TRANSFER = 1

# --- receipts --------------------------------------------------------------
RECEIPTS_VERSION = 1

# --- chain archives (export/import) --------------------------------------
ARCHIVE_MAGIC = b"CHMALLAR"
ARCHIVE_FORMAT_VERSION = 1
ARCHIVE_BLOCKS_MAX = 1 << 32  # bounds the trailer's count (u64 on the wire)
ARCHIVE_READ_BYTES = 1 << 20  # streaming chunk for the trailer hash

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
# A node maps its ledger this large from the start (address space, not disk: the file
# grows as written), so the map never has to grow under the node's reader threads.
NODE_MAP_SIZE_BYTES = 1 << 38  # 256 GiB
# Pruning: the state trees of the last N heights stay provable (0 keeps every height).
PRUNE_RETAIN_HEIGHTS_DEFAULT = 10_000
PRUNE_RETAIN_HEIGHTS_MAX = U32_MAX

# --- relations ---------------------------------------------------------------------
assert TX_BODY_FIXED_BYTES + CHAIN_ID_BYTES_MAX + TX_PAYLOAD_BYTES_MAX <= TX_BODY_BYTES_MAX
assert TX_BODY_BYTES_MAX <= BLAKE3_KERNEL_INPUT_BYTES_MAX
assert BLOCK_TXS_MAX * TX_BYTES_MIN <= BLOCK_BYTES_MAX
assert BLOCK_TXS_MAX <= BATCH_ITEMS_MAX
assert set(CHAIN_ID_ALPHABET).isdisjoint(b"\x00")
assert MAP_SIZE_BYTES_DEFAULT <= MAP_SIZE_BYTES_MAX
assert GENESIS_VALIDATORS_MAX <= COMMIT_SIGNATURES_MAX
assert TABLE_ACCOUNTS != TABLE_FEE_POOL
assert 13 + len(STATE_TABLES) <= STORE_DBS_MAX
assert STORE_FLUSH_SLICES == 16  # a slice is a key's first 4 bits (core/store.py)
assert MAP_SIZE_BYTES_DEFAULT <= NODE_MAP_SIZE_BYTES <= MAP_SIZE_BYTES_MAX
assert MEMPOOL_TXS_DEFAULT <= MEMPOOL_TXS_MAX <= SIGNATURE_CACHE_ENTRIES_MAX // 2
assert MEMPOOL_BYTES_DEFAULT <= MEMPOOL_BYTES_MAX
assert MEMPOOL_SENDER_TXS_DEFAULT <= MEMPOOL_TXS_DEFAULT
assert ADMISSION_WINDOW_MS_DEFAULT <= ADMISSION_WINDOW_MS_MAX
assert ADMISSION_BATCH_TXS_MAX <= BATCH_ITEMS_MAX
assert BLOCK_INTERVAL_MS_DEFAULT <= BLOCK_INTERVAL_MS_MAX
assert PRUNE_RETAIN_HEIGHTS_DEFAULT <= PRUNE_RETAIN_HEIGHTS_MAX
