from pathlib import Path

import numpy as np
import pytest
import torch

from text_recognizer.data.module import EpochShuffleSampler, WidthBucketBatchSampler, collate_lines


def test_epoch_shuffle_depends_only_on_seed_and_epoch() -> None:
    a, b = EpochShuffleSampler(100, seed=1), EpochShuffleSampler(100, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == list(range(100))
    b.set_epoch(1)
    assert list(a) == list(b)


def test_width_buckets_cover_everything_once_and_cut_padding() -> None:
    rng = np.random.default_rng(0)
    widths = rng.integers(50, 900, 1000)
    sampler = WidthBucketBatchSampler(widths, batch_size=32, seed=3, pool=10)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 32
    assert sorted(i for batch in batches for i in batch) == list(range(1000))
    padded = sum(len(b) * widths[b].max() for b in batches)
    random_padded = sum(len(b) * widths[b].max() for b in np.array_split(rng.permutation(1000), 32))
    assert padded < 0.7 * random_padded
    again = WidthBucketBatchSampler(widths, batch_size=32, seed=3, pool=10)
    assert list(again) == batches
    sampler.sampler.set_epoch(1)
    assert list(sampler) != batches


def test_collate_pads_with_background_and_keeps_lengths() -> None:
    batch = [(torch.ones(1, 4, 3), torch.tensor([5, 6])), (torch.ones(1, 4, 5), torch.tensor([7]))]
    images, widths, targets, lengths = collate_lines(batch)
    assert images.shape == (2, 1, 4, 5)
    assert widths.tolist() == [3, 5] and lengths.tolist() == [2, 1]
    assert images[0, :, :, 3:].sum() == 0
    assert targets[1, 1] == 1  # <pad>


def test_stretch_scales_a_whole_batch_by_one_factor_in_range() -> None:
    from text_recognizer.data.module import StretchWidths

    batch = [(torch.rand(1, 32, width), torch.tensor([1, 2, 3])) for width in (200, 240, 260)]
    stretch = StretchWidths(0.5, 2.0)
    factors = []
    for seed in range(40):
        torch.manual_seed(seed)
        images, widths, targets, lengths = stretch(batch)
        ratio = widths.double() / torch.tensor([200.0, 240.0, 260.0])
        assert torch.allclose(ratio, ratio[0].expand(3), atol=0.01)  # one factor per batch
        assert images.shape == (3, 1, 32, int(widths.max()))
        assert lengths.tolist() == [3, 3, 3] and targets[0].tolist() == [1, 2, 3]
        factors.append(float(ratio[0]))
    assert 0.5 - 0.01 <= min(factors) < 0.8 and 1.4 < max(factors) <= 2.0 + 0.01
    torch.manual_seed(7)
    first = stretch(batch)[1]
    torch.manual_seed(7)
    assert torch.equal(stretch(batch)[1], first)  # drawn from torch's (checkpointed) RNG


def test_stretch_never_squeezes_below_the_frames_ctc_needs() -> None:
    from text_recognizer.data.module import StretchWidths

    text = torch.arange(1, 21)  # 20 characters
    squeeze = StretchWidths(0.1, 0.1)
    roomy = (torch.rand(1, 32, 400), text)  # squeezed at most to 8 px per character
    assert squeeze([roomy])[1].tolist() == [160]
    tight = (torch.rand(1, 32, 140), text)  # already under 8 px per character: left alone
    assert squeeze([tight, roomy])[1].tolist() == [140, 400]  # and so is its batch


def test_only_training_line_batches_are_stretched(tmp_path: Path) -> None:
    from text_recognizer.data.module import StretchWidths, collate_lines
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.errors import ConfigError

    module = SyntheticLines(num_train=4, num_val=2, num_test=2, root=tmp_path,
                            width_stretch=[0.7, 1.4], build_workers=1)  # fmt: skip
    assert isinstance(module.collate_fn("train"), StretchWidths)
    assert module.collate_fn("val") is collate_lines
    assert "width_stretch=(0.7, 1.4)" in repr(module)
    assert SyntheticLines(root=tmp_path).collate_fn("train") is collate_lines
    with pytest.raises(ConfigError, match="0 < low <= high"):
        SyntheticLines(root=tmp_path, width_stretch=[1.5, 0.5])
    with pytest.raises(ConfigError, match=r"must be \[low, high\]"):
        SyntheticLines(root=tmp_path, width_stretch=[0.5, 1.0, 1.5])


def test_stretch_resizes_each_line_horizontally_only() -> None:
    from text_recognizer.data.module import StretchWidths

    rows = torch.linspace(0, 1, 32)[:, None]
    short = (rows.expand(32, 100)[None].clone(), torch.tensor([1]))  # every row its own value
    long = (torch.ones(1, 32, 200), torch.tensor([1]))
    images, widths, _, _ = StretchWidths(1.5, 1.5)([short, long])
    assert widths.tolist() == [150, 300] and images.shape == (2, 1, 32, 300)
    torch.testing.assert_close(images[0, 0, :, :149], rows.expand(32, 149))  # no row mixing
    assert float(images[0, 0, :, 152:].abs().max()) == 0.0  # padding stays background
    torch.testing.assert_close(images[1, 0], torch.ones(32, 300))
