"""evonas.predict: encodings, the MLP ensemble, the model screen (issue 17)."""

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.genome import GENOMES
from evonas.genome.nb201 import OPS, NB201Genome
from evonas.predict import ENCODINGS, MLPEnsemble, ModelScreen, default_encoding, encode


def test_nb201_encoding_is_one_hot_and_dead_edges_count_as_none():
    g = NB201Genome(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "none", "nor_conv_1x1"))
    v = ENCODINGS.get("nb201")(g).reshape(6, len(OPS))
    assert (v.sum(1) == 1).all()
    # edge 0->1 feeds node 1, which reaches node 3 only through 1->2 or 1->3 (both none): dead
    assert v[0, OPS.index("none")] == 1 and v[3, OPS.index("avg_pool_3x3")] == 1
    twin = NB201Genome(("avg_pool_3x3",) + g.ops[1:])  # differs only on the dead edge
    assert twin.arch_hash() == g.arch_hash()
    assert np.array_equal(ENCODINGS.get("nb201")(twin), ENCODINGS.get("nb201")(g))


@pytest.mark.parametrize("gtype", ["nb201", "cgp", "genetic-cnn", "tree"])
def test_wl_encoding_for_every_genome_type(gtype):
    cls = GENOMES.get(gtype)
    rng = np.random.default_rng(0)
    gs = [cls.sample(rng, cls.Space()) for _ in range(6)]
    X = encode(gs, "wl")
    assert X.shape == (6, ENCODINGS.get("wl")(gs[0]).size) and np.isfinite(X).all()
    for g, x in zip(gs, X):  # the same network (a fresh, equal genome) gives the same vector
        assert np.array_equal(ENCODINGS.get("wl")(cls.from_string(g.to_string(), g.space)), x)
    distinct = {g.arch_hash() for g in gs}
    assert len({x.tobytes() for x in X}) >= len(distinct) - 1  # collisions are rare
    assert default_encoding(gtype) == ("nb201" if gtype == "nb201" else "wl")


def test_wl_encoding_is_isomorphism_invariant_on_nb201():
    a = NB201Genome(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "none", "nor_conv_1x1"))
    b = NB201Genome(("avg_pool_3x3",) + a.ops[1:])
    assert np.array_equal(ENCODINGS.get("wl")(a), ENCODINGS.get("wl")(b))


def _toy(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, 12)).astype(float)
    w = np.linspace(-1, 2, 12)
    return X, X @ w + 0.5 * X[:, 0] * X[:, 1]


def test_mlp_ensemble_learns_and_ranks():
    X, y = _toy(200, 0)
    Xt, yt = _toy(200, 1)
    m = MLPEnsemble()
    m.fit(X, y, np.random.default_rng(0))
    mean, std = m.predict(Xt)
    assert np.corrcoef(mean, yt)[0, 1] > 0.9
    assert (std >= 0).all() and std.mean() > 0  # bootstraps disagree a little


def test_mlp_ensemble_is_deterministic_and_warm_starts():
    X, y = _toy(60, 2)
    a, b = MLPEnsemble(), MLPEnsemble()
    for m in (a, b):
        m.fit(X[:40], y[:40], np.random.default_rng(5))
    assert a.t == a.steps_first
    for m in (a, b):
        m.fit(X, y, np.random.default_rng(6))  # warm start: continues the same weights
    assert a.t == a.steps_first + a.steps
    assert np.array_equal(a.predict(X)[0], b.predict(X)[0])


def test_model_screen_refits_every_k_and_validates():
    s = ModelScreen("nb201", min_data=3, refit_every=2)
    rng = np.random.default_rng(0)
    gs = [NB201Genome.sample(rng) for _ in range(6)]
    for g in gs[:3]:
        s.add(g, float(len(set(g.ops))))
    assert s.ready()
    s.score(gs, rng)
    assert s.fitted_at == 3
    s.add(gs[3], 1.0)
    s.score(gs, rng)
    assert s.fitted_at == 3  # one new result < k
    s.add(gs[4], 1.0)
    s.score(gs, rng)
    assert s.fitted_at == 5
    for kw in ({"refit_every": 0}, {"encoding": "nope"}, {"predictor": "nope"}):
        with pytest.raises(ConfigError):
            ModelScreen("nb201", **kw)
    with pytest.raises(ConfigError):
        MLPEnsemble(members=0)
