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


def test_samplers_resume_part_way_through_one_epoch_only() -> None:
    shuffle = EpochShuffleSampler(100, seed=1)
    shuffle.set_epoch(2)
    epoch2 = list(shuffle)
    shuffle.resume_at(2, 30)
    assert list(shuffle) == epoch2[30:]
    assert list(shuffle) == epoch2  # the next pass starts at the beginning again
    shuffle.resume_at(2, 30)
    shuffle.set_epoch(3)  # a pending resume for another epoch is dropped
    shuffle.set_epoch(2)
    assert list(shuffle) == epoch2

    widths = np.random.default_rng(0).integers(50, 900, 500)
    buckets = WidthBucketBatchSampler(widths, batch_size=32, seed=3, pool=5)
    buckets.sampler.set_epoch(1)
    batches = list(buckets)
    buckets.sampler.resume_at(1, 4)
    assert list(buckets) == batches[4:]


def test_samplers_draw_the_order_when_iterated_not_when_the_iterator_is_made() -> None:
    """Lightning makes the loader's iterator before it sets the epoch of a resumed run."""
    widths = np.random.default_rng(0).integers(50, 900, 500)
    buckets = WidthBucketBatchSampler(widths, batch_size=32, seed=3, pool=5)
    buckets.sampler.set_epoch(1)
    epoch1 = list(buckets)
    buckets.sampler.set_epoch(0)
    iterator = iter(buckets)
    buckets.sampler.set_epoch(1)
    assert list(iterator) == epoch1


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
    from text_recognizer.data.module import TrainingLineCollate, collate_lines
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.errors import ConfigError

    module = SyntheticLines(num_train=4, num_val=2, num_test=2, root=tmp_path,
                            width_stretch=[0.7, 1.4], build_workers=1)  # fmt: skip
    collate = module.collate_fn("train")
    assert isinstance(collate, TrainingLineCollate) and collate.cut is None
    assert collate.stretch is not None and (collate.stretch.low, collate.stretch.high) == (0.7, 1.4)
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


def _lines(widths: tuple[int, ...], ink_rows: slice = slice(8, 24)) -> list[np.ndarray]:
    """Float bright-ink lines on grey paper (0.1) with ink in ``ink_rows`` only."""
    rng = np.random.default_rng(0)
    lines = []
    for width in widths:
        line = np.full((32, width), 0.1, np.float32)
        line[ink_rows] = np.where(
            rng.random((ink_rows.stop - ink_rows.start, width)) < 0.3, 0.9, 0.1
        )
        lines.append(line)
    return lines


def test_page_cuts_put_neighbours_ink_on_the_edges_only() -> None:
    from text_recognizer.data.module import PageCuts

    lines = _lines((300, 280, 320))
    cuts = PageCuts(probability=1.0, max_rotation=0.0)  # no tilt: the frame stays as it is
    edges_inked = 0
    for seed in range(20):
        torch.manual_seed(seed)
        out = cuts.cut(lines[0], lines, length=10)
        assert out.shape == lines[0].shape and out is not lines[0]
        np.testing.assert_array_equal(out[8:24], lines[0][8:24])  # the text itself untouched
        edges_inked += int(out[:8].max() > 0.5) + int(out[24:].max() > 0.5)
        assert out.min() >= 0.1 - 1e-6 and out.max() <= 1.0  # ink on the line's own paper
    assert 10 < edges_inked < 30  # top and bottom each about half the time
    np.testing.assert_array_equal(lines[0][:8], np.float32(0.1))  # the input is not modified


def test_page_cuts_tilt_within_the_ctc_floor_and_repeat_under_a_seed() -> None:
    from text_recognizer.data.module import PageCuts, StretchWidths

    lines = _lines((400,))
    cuts = PageCuts(probability=1.0, max_rotation=3.0)
    widths = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = cuts.cut(lines[0], lines, length=5)
        assert out.shape[0] == 32
        widths.add(out.shape[1])
    assert min(widths) < 400  # some lines tilted: a taller box, so a narrower line at 32 px
    for seed in range(20):  # 50 characters in 400 px: any tilt would go under 8 px/character
        torch.manual_seed(seed)
        assert cuts.cut(lines[0], lines, length=50).shape[1] == 400
    torch.manual_seed(3)
    first = cuts.cut(lines[0], lines, length=5)
    torch.manual_seed(3)
    np.testing.assert_array_equal(cuts.cut(lines[0], lines, length=5), first)
    assert min(widths) >= StretchWidths.MIN_PX_PER_CHAR * 5


def test_page_cuts_in_the_training_collate_only(tmp_path: Path) -> None:
    from text_recognizer.data.folder import LabelledFolder
    from text_recognizer.data.module import TrainingLineCollate, collate_lines
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.errors import ConfigError

    module = SyntheticLines(root=tmp_path, page_cuts=0.5)
    collate = module.collate_fn("train")
    assert isinstance(collate, TrainingLineCollate) and collate.stretch is None
    assert collate.cut is not None and collate.cut.probability == 0.5
    assert module.collate_fn("val") is collate_lines and "page_cuts=0.5" in repr(module)
    batch = [(torch.from_numpy(line)[None], torch.arange(1, 6)) for line in _lines((200, 240))]
    torch.manual_seed(0)
    images, widths, targets, lengths = collate(batch)
    assert images.shape[:3] == (2, 1, 32) and lengths.tolist() == [5, 5]
    assert int(widths.max()) == images.shape[-1] and targets.shape == (2, 5)
    with pytest.raises(ConfigError, match="probability"):
        SyntheticLines(root=tmp_path, page_cuts=1.5)
    with pytest.raises(ConfigError, match="kind: char"):
        LabelledFolder(path=tmp_path, kind="char", page_cuts=0.5)


def test_fine_pens_thin_some_training_lines_only_and_repeat_under_a_seed(tmp_path: Path) -> None:
    from text_recognizer.data.folder import LabelledFolder
    from text_recognizer.data.module import FinePens, TrainingLineCollate, collate_lines
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.errors import ConfigError

    batch = [(torch.from_numpy(line)[None], torch.arange(1, 6)) for line in _lines((200,) * 20)]
    pens = FinePens(probability=0.5)
    torch.manual_seed(0)
    out = pens(batch)
    thinned = [float(o[0].sum()) < float(b[0].sum()) for o, b in zip(out, batch, strict=True)]
    assert 3 < sum(thinned) < 17  # about half the lines, each with less ink
    assert all(o[0].shape == b[0].shape for o, b in zip(out, batch, strict=True))
    torch.manual_seed(0)
    again = pens(batch)
    for o, a in zip(out, again, strict=True):
        np.testing.assert_array_equal(o[0].numpy(), a[0].numpy())

    module = SyntheticLines(root=tmp_path, fine_pens=0.3)
    collate = module.collate_fn("train")
    assert isinstance(collate, TrainingLineCollate) and collate.pens is not None
    assert collate.pens.probability == 0.3 and collate.cut is None and collate.stretch is None
    assert module.collate_fn("val") is collate_lines and "fine_pens=0.3" in repr(module)
    with pytest.raises(ConfigError, match=r"fine_pens = -0\.1 is a probability"):
        SyntheticLines(root=tmp_path, fine_pens=-0.1)
    with pytest.raises(ConfigError, match="fine_pens augments text lines"):
        LabelledFolder(path=tmp_path, kind="char", fine_pens=0.5)


def test_width_multiple_pads_training_batches_only_and_draws_nothing(tmp_path: Path) -> None:
    from text_recognizer.data.folder import LabelledFolder
    from text_recognizer.data.module import TrainingLineCollate, collate_lines, pad_to_multiple
    from text_recognizer.data.synthetic_lines import SyntheticLines
    from text_recognizer.errors import ConfigError

    images = torch.rand(2, 1, 32, 100)
    padded = pad_to_multiple(images, 64)
    assert padded.shape == (2, 1, 32, 128) and not padded[..., 100:].any()
    assert torch.equal(padded[..., :100], images)
    assert pad_to_multiple(padded, 64) is padded and pad_to_multiple(images, 1) is images

    module = SyntheticLines(root=tmp_path, width_multiple=64)
    collate = module.collate_fn("train")
    assert isinstance(collate, TrainingLineCollate) and collate.width_multiple == 64
    assert module.collate_fn("val") is collate_lines and "width_multiple=64" in repr(module)
    batch = [(torch.rand(1, 32, w), torch.arange(1, 6)) for w in (150, 170)]
    augmented = {"width_stretch": (0.7, 1.4), "page_cuts": 0.5}
    results = []
    for multiple in (1, 64):
        torch.manual_seed(0)
        results.append(TrainingLineCollate(**augmented, width_multiple=multiple)(batch))
    (plain, plain_widths, _, _), (rounded, widths, _, lengths) = results
    assert rounded.shape[-1] % 64 == 0 and rounded.shape[-1] - plain.shape[-1] < 64
    # the same lines and random draws: only background added at the right
    assert torch.equal(rounded[..., : plain.shape[-1]], plain) and torch.equal(widths, plain_widths)
    assert lengths.tolist() == [5, 5]
    for bad in (0, 1000, 1.5):
        with pytest.raises(ConfigError, match="width_multiple"):
            SyntheticLines(root=tmp_path, width_multiple=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="kind: char"):
        LabelledFolder(path=tmp_path, kind="char", width_multiple=64)


def test_a_root_or_folder_written_with_a_tilde_is_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config's ``root: ~/data`` (or zsh's --data-arg root=~/data, which the shell leaves
    as it is) made a folder named ``~`` in the working directory."""
    from text_recognizer.data import DATASETS

    monkeypatch.setenv("HOME", str(tmp_path))
    assert DATASETS.build("synthetic_chars", {"root": "~/data"}).root == tmp_path / "data"
    assert DATASETS.build("folder", {"path": "~/my_lines"}).path == tmp_path / "my_lines"  # type: ignore[attr-defined]
    for name in ("iam_lines", "iam_paragraphs"):
        assert DATASETS.build(name, {"path": "~/IAM"}).path == tmp_path / "IAM"  # type: ignore[attr-defined]


def test_a_data_variable_set_empty_means_the_default_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from text_recognizer.paths import data_dir, runs_dir

    monkeypatch.setenv("TEXT_RECOGNIZER_DATA", "")
    monkeypatch.setenv("TEXT_RECOGNIZER_RUNS", "")
    assert data_dir() == Path("data") and runs_dir() == Path("runs")  # not "." itself
