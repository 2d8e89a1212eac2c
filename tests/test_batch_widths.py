"""Every batch the model runs takes one of a few shapes: widths and row counts are padded."""

from __future__ import annotations

from index.int8 import fixed_rows, fixed_width


def test_batches_take_a_handful_of_widths_and_every_text_fits() -> None:
    window = 256
    widths = {longest: fixed_width(longest, window) for longest in range(1, window + 1)}
    # Every batch fits, and no batch is padded past the model's window.
    assert all(longest <= width <= window for longest, width in widths.items())
    # OpenVINO keeps buffers for every shape it runs: few widths, few buffers.
    assert sorted(set(widths.values())) == [16, 32, 48, 64, 96, 128, 160, 192, 224, 256]


def test_a_model_with_an_odd_window_is_never_padded_past_it() -> None:
    assert fixed_width(200, 200) == 200
    assert fixed_width(190, 200) == 192
    assert fixed_width(300, 256) == 300  # longer than the window: as long as itself


def test_a_batch_runs_with_a_power_of_two_rows_up_to_a_full_batch() -> None:
    assert [fixed_rows(n, 32) for n in (1, 2, 3, 5, 9, 17, 31, 32)] == [
        1, 2, 4, 8, 16, 32, 32, 32,
    ]
    # A batch size that is not a power of two is its own last step.
    assert {fixed_rows(n, 48) for n in range(1, 49)} == {1, 2, 4, 8, 16, 32, 48}
