"""The exception tree and its append-only registry of numeric codes.

Every error class carries a `code: int`. Codes are stored in receipts and
returned by the batch kernels, so they are never renumbered or reused; the
table in `docs/errors.md` lists them (a test compares). Input errors are also
`ValueError`s, so callers that only know the builtins still catch them.
"""

from __future__ import annotations

from typing import ClassVar

TX_OK = 0

_REGISTRY: dict[int, type[ChainmallError]] = {}


class ChainmallError(Exception):
    """Root of every error chainmall raises on purpose."""

    code: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} must define its own code")
        if cls.code in _REGISTRY:
            raise TypeError(f"code {cls.code} of {cls.__name__} is taken by {_REGISTRY[cls.code]}")
        _REGISTRY[cls.code] = cls


_REGISTRY[ChainmallError.code] = ChainmallError


def error_class(code: int) -> type[ChainmallError]:
    """The error class registered under `code` (KeyError if none)."""
    return _REGISTRY[code]


def registry() -> dict[int, type[ChainmallError]]:
    """A copy of the code -> class table, in code order."""
    return dict(sorted(_REGISTRY.items()))


class InvalidInput(ChainmallError, ValueError):
    """Input that breaks a format or protocol rule."""

    code = 100


class DecodeError(InvalidInput):
    """Bytes that are not the one canonical encoding of a value."""

    code = 101


class TxTooLarge(DecodeError):
    """A transaction longer than TX_BYTES_MAX."""

    code = 102


class BlockTooLarge(DecodeError):
    """A block longer than BLOCK_BYTES_MAX or with more than BLOCK_TXS_MAX txs."""

    code = 103


class InvalidTx(InvalidInput):
    """A well-formed transaction that breaks a stateless rule."""

    code = 110


class WrongChain(InvalidTx):
    """A transaction signed for another chain id."""

    code = 111


class TxExpired(InvalidTx):
    """A transaction whose expiry height is below the block's height."""

    code = 112


class BadSignature(InvalidTx):
    """A signature that Ed25519 under ZIP 215 rejects (docs/verification.md)."""

    code = 113


class InvalidBlock(InvalidInput):
    """A block whose header, tx root or commit does not check out."""

    code = 120


class InvalidProof(InvalidInput):
    """A Merkle proof that is malformed or does not lead to the root."""

    code = 121


class InvalidAddress(InvalidInput):
    """Address text with a wrong prefix, alphabet, length or checksum."""

    code = 130


class InvalidKey(InvalidInput):
    """A key that is malformed, or a key file that cannot be read."""

    code = 131


class KeyStoreError(ChainmallError):
    """A key directory problem: missing key, name taken, wrong passphrase."""

    code = 140


class StorageError(ChainmallError):
    """The ledger store cannot do what was asked."""

    code = 200


class NetworkError(ChainmallError):
    """A peer or RPC connection failed."""

    code = 300


# Admission failures (150-153) make a block invalid; execution failures
# (154-157) are receipt codes: the tx still pays its fee.
class UnknownSender(InvalidTx):
    """The sender has no account."""

    code = 150


class NonceMismatch(InvalidTx):
    """The tx nonce is not the sender's next nonce (too low in check_tx)."""

    code = 151


class FeeTooLow(InvalidTx):
    """The fee is below the chain's fee_min."""

    code = 152


class InsufficientFee(InvalidTx):
    """The sender's balance cannot pay the fee."""

    code = 153


class InsufficientBalance(InvalidTx):
    """The sender's balance (after the fee) cannot pay the amount."""

    code = 154


class UnknownTxType(InvalidTx):
    """No handler is registered for the tx type."""

    code = 155


class MalformedPayload(InvalidTx):
    """A payload that is not the canonical encoding for its tx type."""

    code = 156


class BalanceOverflow(InvalidTx):
    """A credit that would take a balance past 2^64 - 1."""

    code = 157


class QueryError(InvalidInput):
    """A query for an unknown path, with malformed data, or at a height not served."""

    code = 170


class InvalidGenesis(InvalidInput):
    """A genesis file that breaks a genesis rule (the message names the field)."""

    code = 160


class StoreNotInitialised(StorageError):
    """The data directory holds no chain yet (run init first)."""

    code = 201


class StoreAlreadyInitialised(StorageError):
    """The data directory already holds a chain."""

    code = 202


class StoreChainMismatch(StorageError):
    """The data directory holds another chain (chain id, genesis or protocol version differ)."""

    code = 203


class StoreCorrupt(StorageError):
    """Stored data that breaks the store's own invariants."""

    code = 204


class StoreConflict(StorageError):
    """A block commit that does not extend the stored chain tip."""

    code = 205


# The mall's rules (docs/mall.md): receipt codes of failed mall txs.
class MallRuleBroken(InvalidTx):
    """A mall tx that breaks a mall rule (docs/mall.md)."""

    code = 400


class NotRegistered(MallRuleBroken):
    """The sender or a named account is not a registered mall party."""

    code = 401


class PartyExists(MallRuleBroken):
    """The account is already a registered party."""

    code = 402


class RoleMissing(MallRuleBroken):
    """The party does not hold the role the tx needs."""

    code = 403


class BondTooLow(MallRuleBroken):
    """The bond is below the minimum of the party's bonded roles."""

    code = 404


class NotCertifier(MallRuleBroken):
    """The sender is not a certifier named in genesis."""

    code = 405


class NotTaxAuthority(MallRuleBroken):
    """The sender is not the jurisdiction's tax authority."""

    code = 406


class CertificationMissing(MallRuleBroken):
    """No active certification to revoke."""

    code = 407


class ProductNotFound(MallRuleBroken):
    """No listing with that product id."""

    code = 408


class NotOwner(MallRuleBroken):
    """The sender does not own the listing, event or proposal."""

    code = 409


class ProductDelisted(MallRuleBroken):
    """The listing is delisted."""

    code = 410


class OutOfStock(MallRuleBroken):
    """The listing's stock is below the quantity ordered."""

    code = 411


class PriceAboveLimit(MallRuleBroken):
    """The unit price is above the buyer's limit."""

    code = 412


class ItemNotFound(MallRuleBroken):
    """No item or class with that id has been recorded."""

    code = 413


class ItemExists(MallRuleBroken):
    """The item id is already recorded (an ADD or output must be new)."""

    code = 414


class NotHolder(MallRuleBroken):
    """The sender does not hold the item."""

    code = 415


class ItemPacked(MallRuleBroken):
    """The item is packed in a container, or packing would break a rule."""

    code = 416


class EventNotFound(MallRuleBroken):
    """No trace event with that id."""

    code = 417


class EventExists(MallRuleBroken):
    """The same event (same id) is already recorded."""

    code = 418


class AlreadyDeclared(MallRuleBroken):
    """The event has already been declared erroneous."""

    code = 419


class HandoverExists(MallRuleBroken):
    """An open proposal for this item and receiver exists."""

    code = 420


class HandoverNotFound(MallRuleBroken):
    """No open proposal for this item and receiver."""

    code = 421


class HandoverStale(MallRuleBroken):
    """The proposer no longer holds the item."""

    code = 422


class OrderNotFound(MallRuleBroken):
    """No order with that id."""

    code = 423


class WrongEscrowState(MallRuleBroken):
    """The escrow is not in a state this transition starts from."""

    code = 424


class WrongParty(MallRuleBroken):
    """The sender is not the party this transition must be signed by."""

    code = 425


class StepNotAllowed(MallRuleBroken):
    """The sender's roles may not record this bizStep or event."""

    code = 426


class NotOnPanel(MallRuleBroken):
    """The sender holds no seat on the dispute's current panel."""

    code = 427


class AlreadyVoted(MallRuleBroken):
    """The arbitrator has already voted in this round."""

    code = 428


class TooMuchEvidence(MallRuleBroken):
    """The dispute already holds EVIDENCE_MAX evidence hashes."""

    code = 429


class ObligationsOpen(MallRuleBroken):
    """Open orders or panel seats forbid dropping the role or bond."""

    code = 430


class AmountOutOfRange(MallRuleBroken):
    """An amount or count outside its allowed range."""

    code = 431


class SelfDealing(MallRuleBroken):
    """A party may not trade with or hand over to itself."""

    code = 432


class UnknownJurisdiction(MallRuleBroken):
    """No tax authority is named for the jurisdiction."""

    code = 433


class NotVoting(MallRuleBroken):
    """The vote is not for the dispute's current round (or no panel is drawn yet)."""

    code = 434


class EpcisError(InvalidInput):
    """An EPCIS document or event chainmall cannot import (the message says why)."""

    code = 435


# Trust in the mall (docs/trust.md): receipt codes of failed trust txs.
class TrustRuleBroken(InvalidTx):
    """A trust tx (reviews, reports, rewards) that breaks a trust rule (docs/trust.md)."""

    code = 500


class NotReviewable(TrustRuleBroken):
    """The order is neither completed nor settled by a dispute ruling."""

    code = 501


class ReviewWindowClosed(TrustRuleBroken):
    """The order settled longer ago than the review window."""

    code = 502


class ReviewLimit(TrustRuleBroken):
    """The order has REVIEW_VERSIONS_MAX review versions already."""

    code = 503


class ReviewNotFound(TrustRuleBroken):
    """No review (or review version, or reply) to reply to or to continue."""

    code = 504


class ReplyExists(TrustRuleBroken):
    """The merchant has replied to this review already."""

    code = 505


class ReviewTextInvalid(TrustRuleBroken):
    """A text part past its declared length, a part for a complete text, a new version
    before the last one is complete, or a complete text that is not valid."""

    code = 506


class NotAttester(TrustRuleBroken):
    """The sender is not an attester named in genesis."""

    code = 507


class ClaimUsed(TrustRuleBroken):
    """The attested claim id has been rewarded already."""

    code = 508


class AttestCapReached(TrustRuleBroken):
    """The account has its epoch's cap of attested actions."""

    code = 509


class NothingToClaim(TrustRuleBroken):
    """No reward is owed to the sender."""

    code = 510


class ReportInvalid(TrustRuleBroken):
    """A fake-order report that names an order of another merchant, one ruled already or
    one under another open report."""

    code = 511


class ReportNotFound(TrustRuleBroken):
    """No fake-order report with that id."""

    code = 512


class ReportClosed(TrustRuleBroken):
    """The report has been ruled."""

    code = 513


# The node (core/node/): what its mempool refuses and what a running node cannot do.
class NodeError(ChainmallError):
    """The node cannot do what was asked (a mempool refusal, a stopping node)."""

    code = 340


class MempoolFull(NodeError):
    """The mempool is full and the tx's fee does not beat the lowest pending one."""

    code = 341


class TxAlreadyPending(NodeError):
    """The very same tx (same id) is already in the mempool."""

    code = 342


class NonceTaken(NodeError):
    """Another pending tx of the same sender already has this nonce."""

    code = 343


class SenderLimit(NodeError):
    """The sender has the most pending txs allowed, or the nonce is too far ahead."""

    code = 344


class NodeStopping(NodeError):
    """The node is shutting down and takes no new work."""

    code = 345


class SubscriberLagged(NodeError):
    """A subscriber fell too far behind; its subscription was ended."""

    code = 347


class InvalidConfig(InvalidInput):
    """A node configuration value (file, flag or variable) that is unknown or out of range."""

    code = 346


class AbciError(NetworkError):
    """The ABCI connection to the consensus engine (CometBFT) failed."""

    code = 320


class AbciFrameError(AbciError):
    """An ABCI message that is malformed or longer than ABCI_REQUEST_BYTES_MAX."""

    code = 321


class AbciAppFailed(AbciError):
    """The application raised in an ABCI call that has no error code: serving stops."""

    code = 322


class CometBFTMissing(AbciError):
    """The CometBFT binary is missing, is not the pinned version, or does not run."""

    code = 323
class NotFound(ChainmallError):
    """A block, tx or state entry the node does not have (yet)."""

    code = 171


# RPC (core/rpc/): domain-level faults of a connection or call. Protocol
# faults (malformed JSON, unknown method, bad params) use JSON-RPC's own codes.
class NodeUnreachable(NetworkError):
    """The node cannot be reached at its address (refused, closed, or no answer)."""

    code = 301


class RpcTimeout(NetworkError):
    """An RPC call or a wait did not finish in time."""

    code = 302


class NotFinal(RpcTimeout):
    """A submitted tx was not final within the wait (it may still become final)."""

    code = 303


class RpcProtocolError(NetworkError):
    """A JSON-RPC protocol fault (bad frame, unknown method, bad params); keeps its code."""

    code = 304

    def __init__(self, message: str = "", rpc_code: int = -32600) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


class RateLimited(NetworkError):
    """A connection sent requests faster than its rate allows."""

    code = 305


class Unauthorized(NetworkError):
    """A request without the bearer token the listener requires."""

    code = 306


class LimitExceeded(NetworkError):
    """A server or connection limit is reached (connections, subscriptions, in-flight)."""

    code = 307
class DataDirDamaged(StorageError):
    """A data directory with part of its chain missing (the message says how to recover)."""

    code = 210


class StoreTruncated(StoreCorrupt):
    """A ledger file shorter than its own LMDB header says it is."""

    code = 211


class DiskFull(StorageError):
    """A write that failed for lack of space (the message names the path)."""

    code = 212

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path  # the file or directory that could not be written


class DataDirInUse(StorageError):
    """Another process writes this data directory (it holds the writers' lock)."""

    code = 213


class LightClientError(InvalidInput):
    """A header, commit or validator set that a light client cannot verify."""

    code = 125


class NotEnoughVotingPower(LightClientError):
    """A commit signed by too little of a validator set's power."""

    code = 126


class ValidatorSetNotTrusted(LightClientError):
    """Too little of the trusted set signed a later header: verify one in between first."""

    code = 127


class TrustedHeaderExpired(LightClientError):
    """The light client's latest trusted header is older than the trusting period: no newer
    header can be verified from it."""

    code = 630


class LightStoreInvalid(LightClientError):
    """The light client's stored trusted header is unreadable, corrupt or of another chain."""

    code = 631


class SupervisedProcessFailed(NetworkError):
    """A process a supervisor runs (CometBFT or the ABCI application) died or would not start."""

    code = 324


class CometRpcError(NetworkError):
    """A CometBFT node's RPC answered with an error object."""

    code = 326


class LocalnetError(ChainmallError):
    """A localnet directory that is missing, malformed, or in the wrong state for the command."""

    code = 325


# Validator and governance txs (core/validators/): receipt codes, the tx pays its fee.
class ValidatorRuleError(InvalidTx):
    """A validator or governance tx that breaks a rule of docs/cometbft.md section 7."""

    code = 480


class NotAuthorised(ValidatorRuleError):
    """The sender may not do this: not a governance authority, not the validator's operator,
    or not the operator of a validator in the signing set."""

    code = 481


class UnknownValidator(ValidatorRuleError):
    """No validator record exists for the public key."""

    code = 482


class ValidatorBondTooLow(ValidatorRuleError):
    """A bond below the genesis `bond_min` for a new validator or one given power."""

    code = 483


class ValidatorSetLimit(ValidatorRuleError):
    """The change would empty the signing set or exceed VALIDATORS_MAX or the total power cap."""

    code = 484


class UnbondRefused(ValidatorRuleError):
    """An unbond of a validator with power, before the unbond delay, or above its bond."""

    code = 485


class ValidatorAlreadyVoted(ValidatorRuleError):
    """A second vote of the same validator on the same proposal."""

    code = 486


# Stateless per-tx verdicts, in the fixed order every node checks them.
# The batch kernel and the reference return exactly these codes.
TX_CHECK_ORDER: tuple[type[ChainmallError], ...] = (
    TxTooLarge,
    DecodeError,
    WrongChain,
    TxExpired,
    BadSignature,
)


class EnvelopeError(DecodeError):
    """A batch envelope (docs/formats.md section 11) that is not its one canonical encoding."""

    code = 360


class StoreFormatOutdated(StorageError):
    """A ledger written in an older store format (`chainmall db migrate` upgrades format 3)."""

    code = 230
