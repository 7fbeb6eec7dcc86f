"""Verified-buyer reviews (docs/trust.md 4): who may review what and when, versions that
never disappear, texts in parts, one reply; every bad input has its code and changes
nothing."""

from __future__ import annotations

from chainmall.core import constants as C
from chainmall.core.errors import (
    MalformedPayload,
    NotReviewable,
    OrderNotFound,
    ReplyExists,
    ReviewLimit,
    ReviewNotFound,
    ReviewTextInvalid,
    ReviewWindowClosed,
    WrongParty,
)
from chainmall.core.trust import keys
from chainmall.core.trust.reviews import (
    ReplyDraft,
    ReviewDraft,
    TextPart,
    decode_reply,
    decode_review,
    split_text,
    text_problem,
)
from hypothesis import given
from hypothesis import strategies as st
from mall_chain import ok
from trust_chain import TRUST_TEST_PARAMS, refused, sell


def reviews_of(chain, order_id):
    with chain.reader() as state:
        start, end = keys.prefix_range(keys.reviews_of(order_id))
        return [decode_review(value) for _, value in state.scan(start, end)]


def test_the_buyer_reviews_a_completed_order_and_corrections_keep_every_version(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    ok(chain.block(chain.review(k["alice"], order, 2, "Graffiato")))
    ok(chain.block(chain.review(k["alice"], order, 4, "Sostituito subito, grazie",
                                version=2)))
    versions = reviews_of(chain, order)
    assert [(v.rating, v.text.decode()) for v in versions] == [
        (2, "Graffiato"), (4, "Sostituito subito, grazie")]
    assert all(v.buyer == k["alice"].address and v.product_id == products["ring"]
               for v in versions)
    # The correction replaces the rating in the reputation, not the count.
    record = chain.reputation(k["shop"].address)
    assert record.rating_count_q == 1 << 16 and record.rating_sum_q == 4 << 16
    entries = chain.query("/trust/review", order)
    assert [key[-1] for key, _ in entries[:2]] == [1, 2]
    listed = chain.query("/trust/reviews", bytes([1]) + products["ring"])
    assert listed[0][0][:2] == bytes([C.TABLE_TRUST_REVIEW_INDEX, 1]) and len(listed) == 3


def test_a_thousand_byte_review_goes_in_two_parts_and_the_merchant_replies_once(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["bob"], products["ring"], 20_000)])
    text = "Argento bellissimo, città di Firenze. " * 26  # 1,014 bytes: over the limit
    text = text.encode()[:1_000].decode("utf-8", "ignore")
    assert len(text.encode()) <= 1_000
    txs = chain.review(k["bob"], order, 5, text)
    assert len(txs) == 2
    ok(chain.block(txs[:1]))
    assert not reviews_of(chain, order)[0].complete
    ok(chain.block(txs[1:]))
    [review] = reviews_of(chain, order)
    assert review.complete and review.text.decode() == text
    ok(chain.block(chain.reply(k["shop"], order, "Grazie mille!")))
    reply = decode_reply(chain.get(keys.reply(order)))
    assert reply.text == b"Grazie mille!" and reply.merchant == k["shop"].address
    refused(chain, chain.reply(k["shop"], order, "Di nuovo")[0], ReplyExists.code)


def test_who_and_when(market):
    chain, k, products = market
    [done, open_] = sell(chain, [(k["shop"], k["carol"], products["ring"], 20_000),
                                 (k["shop"], k["dave"], products["ring"], 20_000)],
                         confirm=False)
    ok(chain.block([chain.confirm(k["carol"], done)]))
    refused(chain, chain.review(k["dave"], done, 5)[0], WrongParty.code)  # not the buyer
    refused(chain, chain.review(k["dave"], open_, 5)[0], NotReviewable.code)  # not settled
    refused(chain, chain.review(k["carol"], b"\x99" * 32, 5)[0], OrderNotFound.code)
    refused(chain, chain.reply(k["shop"], done, "Grazie")[0], ReviewNotFound.code)
    refused(chain, chain.reply(k["carol"], done, "Io")[0], WrongParty.code)
    # The window: 7 days after the settlement (the test genesis).
    chain.block([], advance_ms=TRUST_TEST_PARAMS.review_window_ms + 1_000)
    refused(chain, chain.review(k["carol"], done, 5)[0], ReviewWindowClosed.code)


def test_a_refund_without_a_dispute_is_not_reviewable(market):
    chain, k, products = market
    order = chain.order(k["erin"], products["ring"], 1, 20_000)
    ok(chain.block([order]))
    ok(chain.block([chain.cancel_order(k["shop"], order.tx_id)]))
    refused(chain, chain.review(k["erin"], order.tx_id, 1)[0], NotReviewable.code)


def test_text_rules_and_the_version_limit(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    bad = [ReviewDraft(order, 0, 0, b""), ReviewDraft(order, 6, 0, b""),
           ReviewDraft(order, 5, 1_001, b""), ReviewDraft(order, 5, 2, b"abc")]
    for draft in bad:
        refused(chain, chain.review_raw(k["alice"], draft), MalformedPayload.code)
    refused(chain, chain.review_raw(k["alice"], ReviewDraft(order, 5, 3, b"\xff\xfe\xfd")),
            ReviewTextInvalid.code)
    refused(chain, chain.review_raw(k["alice"], ReviewDraft(order, 5, 2, b"a\x00")),
            ReviewTextInvalid.code)
    # An open text: the next version waits; its parts must fit and be valid.
    ok(chain.block([chain.review_raw(k["alice"], ReviewDraft(order, 5, 4, b"ab"))]))
    refused(chain, chain.review_raw(k["alice"], ReviewDraft(order, 4, 0, b"")),
            ReviewTextInvalid.code)
    refused(chain, chain.continue_text(k["alice"], order, 1, b"cde"), ReviewTextInvalid.code)
    refused(chain, chain.continue_text(k["alice"], order, 2, b"cd"), ReviewNotFound.code)
    refused(chain, chain.continue_text(k["bob"], order, 1, b"cd"), WrongParty.code)
    refused(chain, chain.continue_text(k["alice"], order, 1, b"\x07d"), ReviewTextInvalid.code)
    ok(chain.block([chain.continue_text(k["alice"], order, 1, b"cd")]))
    refused(chain, chain.continue_text(k["alice"], order, 1, b"e"), ReviewTextInvalid.code)
    for version in range(2, C.REVIEW_VERSIONS_MAX + 1):
        ok(chain.block(chain.review(k["alice"], order, 1 + version % 5, f"v{version}",
                                    version=version)))
    refused(chain, chain.review(k["alice"], order, 5, "more")[0], ReviewLimit.code)
    assert len(reviews_of(chain, order)) == C.REVIEW_VERSIONS_MAX


@given(st.text(max_size=400))
def test_split_text_cuts_between_characters(text: str) -> None:
    parts = split_text(text * 3)
    assert b"".join(parts) == (text * 3).encode()
    assert all(len(part) <= C.REVIEW_PART_BYTES_MAX for part in parts)
    for part in parts:
        part.decode("utf-8")


def test_payload_worked_examples_of_docs_trust_md() -> None:
    order = b"\x22" * 32
    assert ReviewDraft(order, 5, 5, b"Bello").encode().hex() == \
        "01" + "22" * 32 + "05" + "0005" + "0005" + "42656c6c6f"
    assert ReplyDraft(order, 6, b"Grazie").encode().hex() == \
        "01" + "22" * 32 + "0006" + "0006" + "4772617a6965"
    assert TextPart(order, 1, b"!").encode().hex() == "01" + "22" * 32 + "01" + "0001" + "21"
    assert text_problem(b"tab\tand\nnewline") is None
    assert text_problem(b"\x7f") is not None
