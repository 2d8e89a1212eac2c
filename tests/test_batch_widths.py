"""Batches of passages are padded to a few fixed widths; short ones keep their own."""

from __future__ import annotations

from index.int8 import fixed_width


def test_long_batches_take_few_widths_and_short_ones_keep_their_own() -> None:
    window = 256
    widths = {longest: fixed_width(longest, window) for longest in range(1, window + 1)}
    # Every batch fits, and no batch is padded past the model's window.
    assert all(longest <= width <= window for longest, width in widths.items())
    # Questions and sentences: exactly their own width (padding moved their int8 vectors).
    assert all(widths[longest] == longest for longest in range(1, 65))
    # Passages: a handful of shapes, so OpenVINO keeps a handful of buffers.
    assert sorted({widths[longest] for longest in range(65, window + 1)}) == [
        96, 128, 160, 192, 224, 256,
    ]


def test_a_model_with_an_odd_window_is_never_padded_past_it() -> None:
    assert fixed_width(200, 200) == 200
    assert fixed_width(190, 200) == 192
    assert fixed_width(300, 256) == 300  # longer than the window: as long as itself
