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


def test_mlp_targets_keep_the_order_and_validate():
    X, y = _toy(120, 3)
    y = 90 + 10 * (y - y.min()) / (y.max() - y.min())  # accuracy-like, in [90, 100]
    ranks = {}
    for target in ("raw", "clip", "log", "log-clip"):
        m = MLPEnsemble(target=target, hidden=64, weight_decay=1e-2)
        m.fit(X, y, np.random.default_rng(0))
        ranks[target] = np.corrcoef(np.argsort(np.argsort(m.predict(X)[0])), np.argsort(np.argsort(y)))[0, 1]
        assert ranks[target] > 0.8, target
    lo = MLPEnsemble(target="log")
    z = lo._target(y)
    assert np.all(np.diff(z[np.argsort(y)]) >= 0)  # increasing in y
    assert z[np.argmax(y)] - np.sort(z)[-2] > (np.sort(y)[-1] - np.sort(y)[-2]) / 10  # top gaps stretched
    c = MLPEnsemble(target="clip", clip_quantile=0.5)._target(y)
    assert c.min() == np.quantile(y, 0.5) and (c[y > np.median(y)] == y[y > np.median(y)]).all()
    with pytest.raises(ConfigError, match="target"):
        MLPEnsemble(target="rank")
    with pytest.raises(ConfigError, match="clip_quantile"):
        MLPEnsemble(clip_quantile=1.0)
    z = MLPEnsemble(target="log", upper=95.0)._target(y)  # fitness above upper: the bound moves
    assert np.isfinite(z).all() and np.all(np.diff(z[np.argsort(y)]) >= 0)


def test_gp_interpolates_learns_and_grows_uncertain_away_from_the_data():
    from evonas.predict.gp import GaussianProcess
    X, y = _toy(80, 0)
    Xt, yt = _toy(200, 1)
    gp = GaussianProcess()
    gp.fit(X, y)
    mean, std = gp.predict(Xt)
    assert np.corrcoef(mean, yt)[0, 1] > 0.9
    at_data, far = gp.predict(X)[1], gp.predict(1.0 - X)[1]  # every bit flipped: far from all points
    assert at_data.mean() < far.mean() and (std > 0).all()
    again = GaussianProcess()
    again.fit(X, y, np.random.default_rng(9))  # no randomness: the rng is ignored
    assert np.array_equal(again.predict(Xt)[0], mean)
    with pytest.raises(ConfigError, match="scales"):
        GaussianProcess(scales=())
    with pytest.raises(ConfigError, match="noises"):
        GaussianProcess(noises=(0.0,))


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


def test_nb201_path_encoding_counts_live_paths():
    g = NB201Genome.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|")
    v = ENCODINGS.get("nb201-path")(g)
    assert v.shape == (100,) and v.sum() == 1.0  # only 0-3 (skip) is live: 0-1-3, 0-2-3, 0-1-2-3 hit a none
    assert v[0] == 1.0  # path 0-3, op skip_connect (first non-none op)
    full = NB201Genome.from_string("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                                   "|skip_connect~0|skip_connect~1|skip_connect~2|")
    w = ENCODINGS.get("nb201-path")(full)
    assert w.sum() == 4.0 and w[[0, 4, 20, 36]].tolist() == [1.0] * 4  # first slot of each path block
    assert ModelScreen("nb201", encoding="nb201-path").encoding == "nb201-path"


def test_nb201_feat_encoding_adds_live_conv_counts_and_depth():
    # live: 0-1 (3x3), 1-3 (1x1), 0-3 (3x3); 0-2 (1x1) is dead (node 2 reaches 3 only via none)
    g = NB201Genome.from_string("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|nor_conv_1x1~1|none~2|")
    v = ENCODINGS.get("nb201-feat")(g)
    assert v.shape == (6 * len(OPS) + 4,)
    assert np.array_equal(v[:30], ENCODINGS.get("nb201")(g))  # the one-hot, dead edges as none
    n3, n1, depth, logp = v[30:] * 3
    assert (n3, n1) == (2, 1)  # the dead 1x1 on 0->2 does not count
    assert depth == 2  # path 0-1-3: 3x3 then 1x1
    assert logp == pytest.approx(np.log1p(9 * 2 + 1))
    empty = NB201Genome(("none",) * 6)
    assert np.array_equal(ENCODINGS.get("nb201-feat")(empty)[30:], np.zeros(4))
    assert ModelScreen("nb201", encoding="nb201-feat").encoding == "nb201-feat"


def test_nao_adam_matches_torch_adam_and_avoids_torch_optim():
    """The NAO model's hand-written Adam is torch.optim.Adam's update; a fit must not
    build a torch.optim optimiser (its first use imports torch._dynamo: seconds,
    inside a strategy's ask, past the run's time budget)."""
    import subprocess
    import sys
    torch = pytest.importorskip("torch")
    from evonas.predict import nao as nao_mod
    rng = np.random.default_rng(0)
    A, y = rng.integers(5, size=(12, 6)), rng.random(12)
    a = nao_mod.NAOModel([5] * 6, epochs_first=40)
    a.fit(A, y, np.random.default_rng(1))
    b = nao_mod.NAOModel([5] * 6, epochs_first=40)
    own = nao_mod._Adam
    try:
        nao_mod._Adam = lambda params, lr: torch.optim.Adam(params, lr=lr)
        b.fit(A, y, np.random.default_rng(1))
    finally:
        nao_mod._Adam = own
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        assert torch.allclose(p, q, atol=1e-12, rtol=0)
    code = ("import sys, numpy as np; from evonas.predict.nao import NAOModel; "
            "m = NAOModel([5] * 6, epochs_first=2); "
            "m.fit(np.zeros((3, 6), int), np.arange(3.0), np.random.default_rng(0)); "
            "print('torch._dynamo' in sys.modules)")
    from pathlib import Path
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
