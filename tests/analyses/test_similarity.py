"""Layer similarity against textbook HSIC and a direct recomputation from ``run_with_cache``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from stages.analyses.similarity import (
    angular_table,
    cka_table,
    layer_scores,
    similarity_sums,
    unbiased_hsic,
)


def hsic_by_tuples(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. (2012), Theorem 2: the U-statistic over ordered distinct 4-tuples.

    ``(n)_4^-1 sum_{(i,j,q,r) distinct} [k_ij l_ij + k_ij l_qr - 2 k_ij l_iq]`` (the average
    over the 4! orders of each tuple is the same sum, every order being a tuple of its own).
    """
    n = len(k)
    total = sum(
        k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        for i, j, q, r in itertools.permutations(range(n), 4)
    )
    return total / (n * (n - 1) * (n - 2) * (n - 3))


def u_centred(k: np.ndarray) -> np.ndarray:
    """Szekely & Rizzo's (2014) U-centring of a Gram matrix (zero diagonal)."""
    n = len(k)
    k = k - np.diag(np.diag(k))
    rows = k.sum(1)
    u = k - rows[:, None] / (n - 2) - rows[None, :] / (n - 2) + k.sum() / ((n - 1) * (n - 2))
    np.fill_diagonal(u, 0.0)
    return u


def hsic_u_centred(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased HSIC of linear kernels as the U-centred inner product / (n (n - 3))."""
    n = len(x)
    return float((u_centred(x @ x.T) * u_centred(y @ y.T)).sum() / (n * (n - 3)))


def hsic_pairs(xs: list[np.ndarray]) -> torch.Tensor:
    """The code under test on the Gram matrices of ``xs`` (each ``[n, d]``): ``[P, P]``."""
    grams = torch.stack([torch.from_numpy(x @ x.T) for x in xs])
    return unbiased_hsic(grams)


def cka(x: np.ndarray, y: np.ndarray) -> float:
    h = hsic_pairs([x, y])
    return float(h[0, 1] / torch.sqrt(h[0, 0] * h[1, 1]))


def test_unbiased_hsic_is_the_u_statistic_over_index_tuples():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 4))
    x[:, 0] += 2 * y[:, 0]  # dependent, so HSIC is far from 0
    h = hsic_pairs([x, y])
    for (a, u), (b, v) in itertools.product(enumerate([x, y]), repeat=2):
        expected = hsic_by_tuples(u @ u.T, v @ v.T)
        assert abs(expected) > 0.1
        assert h[a, b].item() == pytest.approx(expected, rel=1e-10)


def test_unbiased_hsic_is_the_u_centred_inner_product_batched():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(3, 2, 40, 5))  # [point, batch, n, d]
    xs[1] += 0.5 * xs[0]
    grams = torch.from_numpy(xs @ xs.transpose(0, 1, 3, 2))
    h = unbiased_hsic(grams)
    assert h.shape == (3, 3, 2)
    for a, b, s in itertools.product(range(3), range(3), range(2)):
        expected = hsic_u_centred(xs[a, s], xs[b, s])
        assert h[a, b, s].item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert torch.allclose(h, h.transpose(0, 1), rtol=1e-12)
    with pytest.raises(ValueError, match="n >= 4"):
        unbiased_hsic(grams[..., :3, :3])


def test_unbiased_hsic_needs_no_centring_of_the_features():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(30, 6))
    y += x
    shifted = hsic_pairs([x + rng.normal(size=6) * 10, y - 3.0])
    plain = hsic_pairs([x, y])
    torch.testing.assert_close(shifted, plain, rtol=1e-9, atol=1e-9)


def test_linear_cka_is_invariant_to_rotation_and_scale_and_near_zero_for_noise():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, 3.7 * x @ q) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, x[:, :6]) < 0.99  # a non-trivial comparison is below 1
    noise = rng.normal(size=(200, 12))
    assert abs(cka(x, noise)) < 0.03
    assert cka(x, x + noise) > 0.3


def residual_points(bridge, tokens) -> tuple[np.ndarray, np.ndarray]:
    """``(pre, post)`` from ``run_with_cache``, positions ``1..``: ``[L, n_seq, n, d]`` each."""
    _, cache = bridge.run_with_cache(tokens, use_cache=False)
    n_layers = len(bridge.blocks)

    def get(point: str) -> np.ndarray:
        layers = range(n_layers)
        return np.stack([cache[f"blocks.{j}.{point}"][:, 1:].double().numpy() for j in layers])

    return get("hook_resid_pre"), get("hook_resid_post")


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.parametrize("arch", ["gpt2", "neox", "gemma3"])
def test_sums_and_tables_equal_a_recomputation_from_the_cache(arch, tiny_models, tiny_tokens):
    bridge, _ = tiny_models(arch)
    sums = similarity_sums(bridge, tiny_tokens, batch_size=4, progress=False, cache=False)
    pre, post = residual_points(bridge, tiny_tokens)
    n_layers, n_seq, n = pre.shape[:3]
    points = np.concatenate([pre, post[-1:]])  # h_0 .. h_L
    assert len(sums) == n_seq and (sums["seq_len"] == n + 1).all()

    hsic = np.zeros((n_layers + 1, n_layers + 1, n_seq))
    for a, b, s in itertools.product(range(n_layers + 1), range(n_layers + 1), range(n_seq)):
        hsic[a, b, s] = hsic_u_centred(points[a, s], points[b, s])
    scale = np.abs(hsic).max()
    for a in range(n_layers + 1):
        for b in range(a, n_layers + 1):
            got = sums[f"hsic:{a}-{b}"].to_numpy()
            np.testing.assert_allclose(got, hsic[a, b], rtol=1e-9, atol=1e-12 * scale)

    bi = 1 - cos(pre, post)  # [L, n_seq, n], h_out from hook_resid_post itself
    assert bi.mean() > 1e-3
    for layer in range(n_layers):
        np.testing.assert_allclose(sums[f"bi:{layer}"], bi[layer].sum(-1), rtol=1e-9)
    angles = {}
    for length in range(1, n_layers // 2 + 1):
        for start in range(n_layers + 1 - length):
            angle = np.arccos(np.clip(cos(points[start], points[start + length]), -1, 1)) / np.pi
            angles[start, length] = angle
            assert angle.mean() > 1e-3
            key = f"{start}+{length}"
            np.testing.assert_allclose(sums[f"angular:{key}"], angle.sum(-1), rtol=1e-9)
            np.testing.assert_allclose(sums[f"angular_last:{key}"], angle[:, -1], rtol=1e-9)
    assert sum(c.startswith("angular:") for c in sums.columns) == len(angles)

    # the reductions, from the same recomputation
    table = cka_table(sums, n_boot=200)
    assert len(table) == (n_layers + 1) ** 2
    mean = hsic.mean(-1)
    expected = mean / np.sqrt(np.outer(np.diag(mean), np.diag(mean)))
    got = table.pivot(index="a", columns="b", values="cka").to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    off_diagonal = expected[~np.eye(n_layers + 1, dtype=bool)]
    assert (1 - off_diagonal).min() > 1e-4  # near 1 in a tiny random model, but not 1
    np.testing.assert_allclose(np.diag(got), 1.0, rtol=1e-12)
    assert (table.cka_lo <= table.cka + 1e-12).all() and (table.cka <= table.cka_hi + 1e-12).all()

    scores = layer_scores(sums, n_boot=200)
    np.testing.assert_allclose(scores.block_influence, bi.mean((1, 2)), rtol=1e-9)
    one_block = np.stack([angles[start, 1] for start in range(n_layers)])
    np.testing.assert_allclose(scores.angular, one_block.mean((1, 2)), rtol=1e-9)
    assert list(scores.layer) == list(range(n_layers)) and (scores.n_seq == n_seq).all()
    assert (scores.block_influence_lo <= scores.block_influence).all()
    assert (scores.block_influence <= scores.block_influence_hi).all()

    for last in (False, True):
        ang = angular_table(sums, last_token=last, n_boot=200)
        assert list(zip(ang.start, ang.length, strict=True)) == [
            (s, k) for k in range(1, n_layers // 2 + 1) for s in range(n_layers + 1 - k)
        ]
        want = [angles[s, k][:, -1].mean() if last else angles[s, k].mean()
                for s, k in zip(ang.start, ang.length, strict=True)]  # fmt: skip
        np.testing.assert_allclose(ang.angular, want, rtol=1e-9)
        assert (ang.angular_lo <= ang.angular + 1e-12).all()
        assert (ang.angular <= ang.angular_hi + 1e-12).all()


def test_sums_need_four_positions_after_bos(tiny_models, tiny_tokens):
    bridge, _ = tiny_models("gpt2")
    with pytest.raises(ValueError, match="at least 5"):
        similarity_sums(bridge, tiny_tokens[:, :4], progress=False, cache=False)
