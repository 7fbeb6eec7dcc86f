"""Integer decay by height: recent activity weighs more (docs/trust.md section 3.1).

A decayed accumulator is kept as of a height and brought forward lazily, in
whole steps: a step is `half_life_blocks // 64` blocks, and `steps` steps
multiply a value by `2^(-steps / 64)` (a table entry, Q32, and a right shift
for whole half-lives), floor. `advance(last, height, half_life)` says how
many whole steps lie between two heights and the height they bring the
record to (`last + steps * step`): the blocks short of a step carry over, so
an accumulator touched every block still decays. Every operation is an
integer one, so every node computes the same bits.
"""

from __future__ import annotations

from ..constants import DECAY_STEPS_PER_HALF_LIFE

# DECAY_Q32[i] = floor(2^32 * 2^(-i/64)): the largest x with x^64 <= 2^(2048 - i)
# (integer root; tests/core/trust/test_decay.py recomputes every entry).
DECAY_Q32: tuple[int, ...] = (
    0x100000000, 0xFD3E0C0C, 0xFA83B2DB, 0xF7D0DF73,
    0xF5257D15, 0xF281773C, 0xEFE4B99B, 0xED4F301E,
    0xEAC0C6E7, 0xE8396A50, 0xE5B906E7, 0xE33F8972,
    0xE0CCDEEC, 0xDE60F482, 0xDBFBB797, 0xD99D15C2,
    0xD744FCCA, 0xD4F35AAB, 0xD2A81D91, 0xD06333DA,
    0xCE248C15, 0xCBEC14FE, 0xC9B9BD86, 0xC78D74C8,
    0xC5672A11, 0xC346CCDA, 0xC12C4CCA, 0xBF1799B6,
    0xBD08A39F, 0xBAFF5AB2, 0xB8FBAF47, 0xB6FD91E3,
    0xB504F333, 0xB311C412, 0xB123F581, 0xAF3B78AD,
    0xAD583EEA, 0xAB7A39B5, 0xA9A15AB4, 0xA7CD93B4,
    0xA5FED6A9, 0xA43515AE, 0xA2704303, 0xA0B0510F,
    0x9EF53260, 0x9D3ED9A7, 0x9B8D39B9, 0x99E04593,
    0x9837F051, 0x96942D37, 0x94F4EFA8, 0x935A2B2F,
    0x91C3D373, 0x9031DC43, 0x8EA4398B, 0x8D1ADF5B,
    0x8B95C1E3, 0x8A14D575, 0x88980E80, 0x871F6196,
    0x85AAC367, 0x843A28C3, 0x82CD8698, 0x8164D1F3,
)
assert len(DECAY_Q32) == DECAY_STEPS_PER_HALF_LIFE


def step_blocks(half_life_blocks: int) -> int:
    """Blocks per decay step (a genesis half-life is at least 64 blocks)."""
    assert half_life_blocks >= DECAY_STEPS_PER_HALF_LIFE
    return half_life_blocks // DECAY_STEPS_PER_HALF_LIFE


def advance(last_height: int, height: int, half_life_blocks: int) -> tuple[int, int]:
    """(whole steps from `last_height` to `height`, the height those steps reach)."""
    assert height >= last_height
    size = step_blocks(half_life_blocks)
    steps = (height - last_height) // size
    return steps, last_height + steps * size


def decay_steps(value: int, steps: int) -> int:
    """`value * 2^(-steps / 64)`, floor."""
    assert value >= 0 and steps >= 0
    if steps == 0 or value == 0:
        return value
    halvings, step = divmod(steps, DECAY_STEPS_PER_HALF_LIFE)
    if halvings >= 64 + value.bit_length():
        return 0
    return (value * DECAY_Q32[step]) >> (32 + halvings)


def decay(value: int, blocks: int, half_life_blocks: int) -> int:
    """`value` after the whole steps in `blocks` blocks (a contribution made `blocks`
    ago, as it weighs now)."""
    return decay_steps(value, blocks // step_blocks(half_life_blocks))


def integer_root(n: int, k: int) -> int:
    """The largest x with x^k <= n (integer Newton; how DECAY_Q32 is derived)."""
    if n < 2:
        return n
    x = 1 << ((n.bit_length() + k - 1) // k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    while x ** k > n:
        x -= 1
    while (x + 1) ** k <= n:
        x += 1
    return x
