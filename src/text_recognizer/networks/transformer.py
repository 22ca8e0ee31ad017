"""CNN + Transformer recognizer: ResNet features, 2-D positions, an autoregressive decoder.

The ResNet encoder turns an image into a feature map ``[B, D, H', W']``; a fixed 2-D
sinusoidal encoding (half the channels for the row, half for the column) is added and the
map is flattened to a memory of ``H' * W'`` vectors. Keeping both axes, rather than
collapsing height as the CRNN does, would let the same network read a paragraph, its
cross-attention looking anywhere on the page (it is trained on lines only).

The decoder is a pre-norm Transformer decoder trained with teacher forcing (input
``<start> + text``, target ``text + <end>``) under a causal mask, and run autoregressively
at inference (greedy or beam search). Right-padding of batched images is hidden from
cross-attention by a memory mask built from the true widths.

Inference keeps a key/value cache: the memory's cross-attention keys and values are
projected once per image and every step feeds only the newest token, so a line of ``L``
characters costs ``L`` one-token steps rather than ``L`` re-reads of the whole prefix.
The same two functions are the two exported graphs
(:func:`text_recognizer.export.export_seq2seq_graphs`): image -> memory keys/values, and
one token + cache -> next-token log-probabilities + cache; ``docs/models.md`` shows the
runtime loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from text_recognizer.charset import DEFAULT_CHARSET
from text_recognizer.networks.resnet import ResNetEncoder, Stride, check_line_images


def sinusoids(positions: torch.Tensor, channels: int) -> torch.Tensor:
    """``[N]`` positions -> ``[N, channels]`` sin/cos at geometric frequencies (Vaswani et al.)."""
    exponents = torch.arange(0, channels, 2, dtype=torch.float32, device=positions.device)
    frequencies = torch.exp(exponents * (-math.log(10000.0) / channels))
    angles = positions.to(torch.float32)[:, None] * frequencies[None, :]
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)


def positional_encoding_2d(
    height: int, width: int, channels: int, device: torch.device
) -> torch.Tensor:
    """``[channels, height, width]``: the first half encodes the row, the second the column.

    Computed from the feature map's size on every call (cheap), so any image width works
    and an exported graph keeps a dynamic width.
    """
    half = channels // 2
    rows = sinusoids(torch.arange(height, device=device), half)  # [H, C/2]
    columns = sinusoids(torch.arange(width, device=device), half)  # [W, C/2]
    grid = torch.cat(
        [rows[:, None, :].expand(-1, width, -1), columns[None, :, :].expand(height, -1, -1)],
        dim=-1,
    )
    return grid.permute(2, 0, 1)


class Attention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention``, split so keys and values
    can be projected once and cached.

    Written out rather than ``nn.MultiheadAttention`` because the TorchScript ONNX exporter
    bakes that module's key length into a ``Reshape`` (pytorch/pytorch#122321, #120075): an
    exported decoder would then only run at the token count and image width it was traced
    with. Here every reshape keeps its dynamic sizes.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def keys_values(self, context: torch.Tensor) -> torch.Tensor:
        """``context [B, S, D]`` -> keys and values ``[2, B, heads, S, D / heads]``."""
        return self.key_value(context).unflatten(-1, (2, self.num_heads, -1)).permute(2, 0, 3, 1, 4)

    def forward(
        self, x: torch.Tensor, keys_values: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, L, D]`` attends to ``keys_values`` where ``allowed [.., L, S]`` is True."""
        query = self.query(x).unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # [B, h, L, d]
        attended = F.scaled_dot_product_attention(
            query,
            keys_values[0],
            keys_values[1],
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(attended.transpose(1, 2).flatten(2))


class DecoderLayer(nn.Module):
    """Pre-norm Transformer decoder layer: causal self-attention, cross-attention, feed-forward.

    The computation of ``nn.TransformerDecoderLayer(norm_first=True)`` (pre-norm trains
    without warm-up tricks at small scale), on :class:`Attention`, over new positions
    ``x`` given the cached keys/values of earlier ones (none when teacher forcing).
    """

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attention = Attention(d_model, num_heads, dropout)
        self.cross_norm = nn.LayerNorm(d_model)
        self.cross_attention = Attention(d_model, num_heads, dropout)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.feedforward = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, d_model),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        past: torch.Tensor,
        memory_keys_values: torch.Tensor,
        causal: torch.Tensor,
        memory_allowed: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New positions ``x [B, L, D]`` -> their outputs and the extended self-attention cache."""
        normed = self.self_norm(x)
        keys_values = torch.cat([past, self.self_attention.keys_values(normed)], dim=3)
        x = x + self.dropout(self.self_attention(normed, keys_values, causal))
        cross = self.cross_attention(self.cross_norm(x), memory_keys_values, memory_allowed)
        x = x + self.dropout(cross)
        return x + self.dropout(self.feedforward(self.feedforward_norm(x))), keys_values


class TransformerRecognizer(nn.Module):
    """``[B, 1, H, W]`` images -> token sequences, with a ResNet encoder and a Transformer decoder.

    Args:
        num_classes: size of the charset (special tokens included).
        input_height: image height in pixels.
        d_model: width of the memory, the token embeddings and the decoder.
        channels: encoder channels: stem, then one per residual stage.
        strides: encoder strides ``(height, width)``: stem, then one per stage. Their
            product over width sets the memory's resolution (one column per 4 px by default).
        blocks: residual blocks per encoder stage.
        num_layers: decoder layers.
        num_heads: attention heads (must divide ``d_model``).
        dim_feedforward: hidden size of each decoder layer's feed-forward block.
        dropout: dropout inside the decoder and on the memory.
        ctc_head: also a linear CTC head on the memory's columns,
            for the model's auxiliary CTC loss (``seq2seq``'s ``ctc_weight``): it teaches
            the encoder where the characters are, which cross-attention alone learns slowly.
            Inference and the exported graphs do not use it.
        max_length: the longest text (in characters) the decoder reads or writes.
        pad_index, start_index, end_index: the special tokens' indices in the charset.
    """

    token_positions: torch.Tensor
    never_emitted: torch.Tensor
    #: Weights used in training only (the CTC head): a run may start from weights without
    #: them, or leave them behind (``init.weights``).
    training_only_weights: ClassVar[tuple[str, ...]] = ("ctc_classifier.",)

    def __init__(
        self,
        num_classes: int = len(DEFAULT_CHARSET),
        input_height: int = 32,
        d_model: int = 128,
        channels: Sequence[int] = (16, 32, 64, 128),
        strides: Sequence[Stride] = ((2, 2), (2, 2), (2, 1), (2, 1)),
        blocks: Sequence[int] = (1, 1, 1),
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 256,
        dropout: float = 0.1,
        ctc_head: bool = True,
        max_length: int = 128,
        pad_index: int = DEFAULT_CHARSET.pad,
        start_index: int = DEFAULT_CHARSET.start,
        end_index: int = DEFAULT_CHARSET.end,
    ) -> None:
        super().__init__()
        if input_height < 16:
            raise ValueError(f"input_height={input_height} is too small; use 16 px or more")
        if d_model % 4 or d_model % num_heads:
            raise ValueError(
                f"d_model={d_model} must be a multiple of 4 (2-D sin/cos positions) and of "
                f"num_heads={num_heads}"
            )
        self.input_height = input_height
        self.num_classes = num_classes
        self.num_layers, self.num_heads, self.d_model = num_layers, num_heads, d_model
        self.max_length = max_length
        self.pad_index, self.start_index, self.end_index = pad_index, start_index, end_index

        self.encoder = ResNetEncoder(channels, strides, blocks)
        self.project = nn.Conv2d(self.encoder.out_channels, d_model, 1)
        self.memory_dropout = nn.Dropout(dropout)

        self.embed = nn.Embedding(num_classes, d_model)
        # Decoder inputs are <start> + up to max_length characters.
        positions = sinusoids(torch.arange(max_length + 1), d_model)
        self.register_buffer("token_positions", positions, persistent=False)
        # <pad> and <start> are never a target: ruling them out keeps outputs well formed.
        never_emitted = torch.zeros(num_classes, dtype=torch.bool)
        never_emitted[[pad_index, start_index]] = True
        self.register_buffer("never_emitted", never_emitted, persistent=False)
        self.layers = nn.ModuleList(
            DecoderLayer(d_model, num_heads, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, num_classes)
        self.ctc_classifier = nn.Linear(d_model, num_classes) if ctc_head else None

    # -- encoder ---------------------------------------------------------------------------

    def encode(
        self, images: torch.Tensor, widths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory ``[B, H'*W', d_model]`` and which of its positions are real ``[B, H'*W']``.

        ``widths`` are the true image widths of a right-padded batch; memory columns that
        lie wholly in the padding are marked False and never attended to.
        """
        check_line_images(images, self.input_height)
        features = self.project(self.encoder(images))  # [B, D, H', W']
        _, channels, height, width = features.shape
        features = features + positional_encoding_2d(height, width, channels, features.device)
        memory = self.memory_dropout(features.flatten(2).transpose(1, 2))  # row-major: y*W' + x
        if widths is None:
            widths = torch.full((images.shape[0],), images.shape[-1], device=images.device)
        real_columns = self.encoder.output_widths(widths).clamp(min=1)  # never mask a whole row
        column = torch.arange(width, device=images.device).repeat(height)  # x of each position
        return memory, column[None, :] < real_columns[:, None]

    def ctc_logits(
        self, images: torch.Tensor, widths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing and the CTC head in one pass over the encoder: the memory, its mask
        and CTC logits ``[B, W', C]`` (the memory's rows averaged per column)."""
        if self.ctc_classifier is None:
            raise ValueError("this network has no CTC head (ctc_head=False)")
        memory, memory_valid = self.encode(images, widths)
        rows, width = self.encoder.output_size(images.shape[-2], images.shape[-1])
        columns = memory.unflatten(1, (rows, width)).mean(dim=1)  # row-major: y*W' + x
        return memory, memory_valid, self.ctc_classifier(columns)

    def memory_keys_values(self, memory: torch.Tensor) -> torch.Tensor:
        """Every layer's cross-attention keys/values ``[layers, 2, B, heads, H'*W', d_head]``."""
        layers = cast(list[DecoderLayer], list(self.layers))
        return torch.stack([layer.cross_attention.keys_values(memory) for layer in layers])

    # -- decoder ---------------------------------------------------------------------------

    def empty_cache(self, memory_keys_values: torch.Tensor) -> torch.Tensor:
        """A self-attention cache holding no tokens yet: ``[layers, 2, B, heads, 0, d_head]``."""
        layers, pair, batch, heads, _, head_size = memory_keys_values.shape
        return memory_keys_values.new_zeros(layers, pair, batch, heads, 0, head_size)

    def decode_cached(
        self,
        tokens: torch.Tensor,
        cache: torch.Tensor,
        memory_keys_values: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, L, C]`` after each of the new ``tokens [B, L]``, and the grown cache.

        ``cache`` holds the keys/values of the ``P`` tokens before these (``P = 0`` when
        teacher forcing a whole sequence); each new token sees those and the new ones up to
        itself. ``<pad>`` and ``<start>`` get ``-inf``: a generated sequence never holds them.
        """
        *_, past, _ = cache.shape
        _, length = tokens.shape
        if past + length > self.max_length + 1:
            raise ValueError(
                f"{past + length} input tokens exceed max_length + 1 = {self.max_length + 1}; "
                "raise the network's max_length"
            )
        x = self.embed(tokens) + self.token_positions[past : past + length]
        ones = torch.ones(length, past + length, dtype=torch.bool, device=tokens.device)
        causal = ones.tril(diagonal=past)
        memory_allowed = memory_valid[:, None, None, :]  # broadcast over heads and queries
        new_cache = []
        for layer, layer_cache, layer_memory in zip(
            self.layers, cache, memory_keys_values, strict=True
        ):
            x, layer_cache = layer(x, layer_cache, layer_memory, causal, memory_allowed)
            new_cache.append(layer_cache)
        logits = self.classifier(self.norm(x)).masked_fill(self.never_emitted, -math.inf)
        return logits, torch.stack(new_cache)

    def decode(
        self, memory: torch.Tensor, memory_valid: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: logits ``[B, L, C]`` for the token after each prefix of ``tokens``."""
        memory_keys_values = self.memory_keys_values(memory)
        cache = self.empty_cache(memory_keys_values)
        return self.decode_cached(tokens, cache, memory_keys_values, memory_valid)[0]

    def decode_step(
        self,
        token: torch.Tensor,
        cache: torch.Tensor,
        memory_keys_values: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The last token ``[B]`` -> log-probabilities ``[B, C]`` of the next, and the cache."""
        logits, cache = self.decode_cached(token[:, None], cache, memory_keys_values, memory_valid)
        return torch.log_softmax(logits[:, -1], dim=-1), cache

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, widths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher forcing: logits ``[B, L, C]`` for ``tokens = <start> + text`` (padded)."""
        memory, memory_valid = self.encode(images, widths)
        return self.decode(memory, memory_valid, tokens)

    # -- inference ---------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        images: torch.Tensor,
        widths: torch.Tensor | None = None,
        max_length: int | None = None,
        beam_size: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[B, T]`` (each ending in ``<end>``, then ``<pad>``) and scores ``[B]``.

        A score is the mean log-probability of the emitted tokens, ``<end>`` included
        (length-normalised, so long lines are not penalised for their length). At most
        ``max_length + 1`` tokens are emitted; a line that reaches that has no ``<end>``.
        Call in ``eval()`` mode: dropout and batch statistics are otherwise active.
        """
        max_length = self.max_length if max_length is None else max_length
        if not 1 <= max_length <= self.max_length:
            raise ValueError(f"max_length={max_length} must be in [1, {self.max_length}]")
        if not 1 <= beam_size <= self.num_classes:
            raise ValueError(f"beam_size={beam_size} must be in [1, {self.num_classes}]")
        if beam_size == 1:
            return self.greedy_decode(images, widths, max_length)
        return self.beam_search(images, widths, max_length, beam_size)

    def greedy_decode(
        self, images: torch.Tensor, widths: torch.Tensor | None, max_length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The most likely next token at every step, until ``<end>`` (see :meth:`generate`)."""
        memory, memory_valid = self.encode(images, widths)
        memory_keys_values = self.memory_keys_values(memory)
        cache = self.empty_cache(memory_keys_values)
        batch, device = images.shape[0], images.device
        token = torch.full((batch,), self.start_index, dtype=torch.long, device=device)
        emitted = []
        total = torch.zeros(batch, device=device)
        lengths = torch.zeros(batch, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        for _ in range(max_length + 1):  # characters, then <end>
            log_probs, cache = self.decode_step(token, cache, memory_keys_values, memory_valid)
            best_log_prob, token = log_probs.max(dim=-1)
            token = token.masked_fill(finished, self.pad_index)
            total += best_log_prob.masked_fill(finished, 0.0)
            lengths += (~finished).float()
            emitted.append(token)
            finished |= token == self.end_index
            if bool(finished.all()):
                break
        return torch.stack(emitted, dim=1), total / lengths

    def beam_search(
        self, images: torch.Tensor, widths: torch.Tensor | None, max_length: int, beam_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the ``beam_size`` best hypotheses per image (see :meth:`generate`).

        Hypotheses are ranked by the final criterion, the length-normalised score, so a
        finished hypothesis keeps its slot (extended by ``<pad>`` at no cost) for as long as
        no live one beats it.
        """
        memory, memory_valid = self.encode(images, widths)
        batch, k, classes, device = images.shape[0], beam_size, self.num_classes, images.device
        memory_keys_values = self.memory_keys_values(memory).repeat_interleave(k, dim=2)
        memory_valid = memory_valid.repeat_interleave(k, dim=0)
        cache = self.empty_cache(memory_keys_values)
        token = torch.full((batch * k,), self.start_index, dtype=torch.long, device=device)
        history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)
        totals = torch.zeros(batch, k, device=device)
        totals[:, 1:] = -math.inf  # all beams start identical: expand only the first
        lengths = torch.zeros(batch, k, device=device)
        finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
        pad_only = torch.full((classes,), -math.inf, device=device)
        pad_only[self.pad_index] = 0.0
        rows = torch.arange(batch, device=device)[:, None] * k  # first slot of each image
        for _ in range(max_length + 1):
            log_probs, cache = self.decode_step(token, cache, memory_keys_values, memory_valid)
            log_probs = log_probs.view(batch, k, classes)
            log_probs = torch.where(finished[..., None], pad_only, log_probs)
            candidate_totals = (totals[..., None] + log_probs).view(batch, k * classes)
            candidate_lengths = (lengths + (~finished).float()).repeat_interleave(classes, dim=1)
            _, chosen = (candidate_totals / candidate_lengths).topk(k, dim=1)
            beam, new_token = chosen // classes, chosen % classes
            totals = candidate_totals.gather(1, chosen)
            lengths = candidate_lengths.gather(1, chosen)
            finished = finished.gather(1, beam) | (new_token == self.end_index)
            history = history.gather(1, beam[..., None].expand(-1, -1, history.shape[2]))
            history = torch.cat([history, new_token[..., None]], dim=2)
            cache = cache[:, :, (rows + beam).flatten()]  # each slot continues its parent's cache
            token = new_token.flatten()
            if bool(finished.all()):
                break
        best_scores, best = (totals / lengths).max(dim=1)
        return history[torch.arange(batch, device=device), best], best_scores
