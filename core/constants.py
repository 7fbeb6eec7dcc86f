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
STORE_READERS_MAX = 126  # LMDB reader slots (its default); sizes the lock file
# An EIO from a write with at most this much space left is reported as a full disk:
# LMDB reports a short write (the disk filled part-way through a page run) as EIO.
DISK_FULL_FREE_BYTES_MAX = 1 << 20
DATA_DIR_LOCK_ATTEMPTS_MAX = 8  # tries to lock a data dir that is being replaced meanwhile

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
# --- ABCI socket server (docs/cometbft.md) -----------------------------------
# The largest request CometBFT sends is a block (ProcessProposal, FinalizeBlock,
# PrepareProposal's candidates) with its commit info and evidence: the block
# cap plus room for those. The genesis `block.max_bytes` must stay within it.
ABCI_REQUEST_BYTES_MAX = BLOCK_BYTES_MAX + 4 * 1024 * 1024
ABCI_CONNECTIONS_MAX = 8  # CometBFT opens 4; a restarted engine may overlap the old ones
ABCI_READ_BYTES_MAX = 256 * 1024  # one socket read
ABCI_BATCH_REQUESTS_MAX = 1024  # requests answered between two socket writes
# One state proof in a Query response: at most 256 siblings of 32 bytes plus a leaf.
ABCI_QUERY_PROOF_BYTES_MAX = 64 * 1024
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
RPC_STATIC_DEPTH_MAX = 8  # path segments of a static file
RPC_RESPONSE_BYTES_MAX = 2 * BLOCK_BYTES_MAX + (1 << 20)  # client side: a full block in hex
RPC_CLIENT_QUEUE_ITEMS_MAX = 10_000  # client side: notifications kept for a slow consumer
RPC_SHUTDOWN_MS_MAX = 5_000  # in-flight requests get this long to finish on stop
RPC_TCP_PORT_DEFAULT = 8645
RPC_HTTP_PORT_DEFAULT = 8646

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
assert BLOCK_BYTES_MAX < ABCI_REQUEST_BYTES_MAX
assert STATE_PATH_BITS * HASH_BYTES < ABCI_QUERY_PROOF_BYTES_MAX
assert TX_BYTES_MAX * 2 * RPC_BATCH_ITEMS_MAX <= RPC_FRAME_BYTES_MAX  # a batch of hex txs fits
assert RPC_FRAME_BYTES_MAX <= RPC_WRITE_BUFFER_BYTES_MAX
assert RPC_WAIT_MS_DEFAULT <= RPC_WAIT_MS_MAX
