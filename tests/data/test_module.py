import numpy as np
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
