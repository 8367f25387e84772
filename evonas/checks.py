"""Checks of a run's settings that need the registries or a trial build: run by
``evonas.run._plan`` before the run directory exists, so bad input writes nothing."""
from __future__ import annotations

import dataclasses
import math

from .config import Config
from .config_sections import RESERVED
from .errors import ConfigError, EvonasError


def base_args(cfg: Config) -> dict:
    """The ``--strategy``'s arguments: population, tournament size and selection
    where its constructor takes them (plug-in strategies included), then
    ``--strategy-arg``."""
    import inspect

    from .evolve.base import STRATEGIES
    accepted = inspect.signature(STRATEGIES.get(cfg.strategy).__init__).parameters
    offered = {"population": cfg.population, "sample": cfg.sample_size, "selection": cfg.selection}
    return {**{k: v for k, v in offered.items() if k in accepted}, **cfg.strategy_args}


def surrogate_args(cfg: Config, base: dict, data) -> dict:
    """The ``surrogate`` strategy's arguments for ``--surrogate NAME`` around
    ``--strategy`` (built with ``base``): ``--surrogate-arg`` items, whose
    ``screen_args`` go to the screen (naswot also gets the run's data and seed)."""
    extra = dict(cfg.surrogate_args)
    screen_args = dict(extra.pop("screen_args", None) or {})
    if cfg.surrogate == "naswot":
        screen_args.update(data=data, seed=cfg.seed)
    return {**extra, "base": cfg.strategy, "base_args": base, "screen": cfg.surrogate, "screen_args": screen_args}


def _check_keys(where: str, params: dict, cls, what: str) -> None:
    """Each key of ``params`` a keyword of ``cls`` not set by its own flag."""
    import inspect
    accepted = [k for k in inspect.signature(cls.__init__).parameters if k != "self"]
    for key, value in params.items():
        if key in RESERVED or key not in accepted:
            why = (f"is set with {RESERVED[key]}" if RESERVED.get(key) else f"not a parameter of {what} "
                   f"(its parameters: {', '.join(k for k in accepted if k not in RESERVED) or 'none'})")
            raise ConfigError("config", f"{where}.{key}", value, why)


def _build(where: str, given: dict, cls, variation, args: dict) -> None:
    """Build ``cls`` once, so a bad value fails before the run directory exists;
    errors name ``<where>.<field>``."""
    try:
        cls(variation, **args)
    except ConfigError as e:
        raise ConfigError("config", f"{where}.{e.field}", e.value, e.why) from None
    except (TypeError, ValueError) as e:
        raise ConfigError("config", where, dict(given), f"{type(e).__name__}: {e}") from None


def check_strategy_args(cfg: Config, cls, space, seeds) -> None:
    """``strategy.<name>`` (``--strategy-arg``, ``--strategy.NAME.KEY``): each key a
    keyword of the strategy's constructor (not one of those set by their own flags),
    and the strategy built once with them. Errors name ``strategy.<name>.<key>``."""
    if not cfg.strategy_args:
        return
    from .evolve.base import STRATEGIES
    from .evolve.toolbox import Variation
    strategy, where = STRATEGIES.get(cfg.strategy), f"strategy.{cfg.strategy}"
    _check_keys(where, cfg.strategy_args, strategy, f"strategy {cfg.strategy}")
    _build(where, cfg.strategy_args, strategy, Variation(cls, space, list(cfg.mutations) or None, seeds),
           base_args(cfg))


def check_surrogate_args(cfg: Config, cls, space, seeds) -> None:
    """``--surrogate-arg``: each key a parameter of the surrogate middleware (not
    one set by another flag), and the middleware built once with them (its screen
    and predictor included). Errors name ``surrogate_args.<key>``."""
    if not cfg.surrogate_args:
        return
    from .evolve.surrogate import Surrogate
    from .evolve.toolbox import Variation
    _check_keys("surrogate_args", cfg.surrogate_args, Surrogate, "the surrogate")
    if not isinstance(cfg.surrogate_args.get("screen_args", {}), dict):
        raise ConfigError("config", "surrogate_args.screen_args", cfg.surrogate_args["screen_args"],
                          "must be a JSON object")
    _build("surrogate_args", cfg.surrogate_args, Surrogate, Variation(cls, space, list(cfg.mutations) or None, seeds),
           surrogate_args(cfg, base_args(cfg), cfg.dataset))  # naswot reads its data only on use


def check_backend_args(cfg: Config) -> None:
    """``backend.<name>`` (``--backend-arg``, ``--backend.NAME.KEY``): each key an
    option of the backend (a keyword of its ``open``); the values are checked by
    its ``placement``, which ``run._plan`` calls next. The same key check as for the
    sections of the backends not chosen (``check_other``)."""
    from .config_sections import check_other
    check_other("backend", cfg.backend, cfg.backend_args, "config", ())


def check_finite(cfg: Config) -> None:
    """inf and NaN pass every ``>= 0`` rule (``--time-budget 1e999``, ``--lr inf``);
    no setting is meaningful with one."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError("config", f.name, v, "must be a finite number")


def check_space(cls, space, cfg: Config) -> None:
    """Genomes check their space when built: sample one (throwaway generator, the
    search's RNG is untouched) so a bad ``--space`` fails before any write."""
    import numpy as np
    try:
        cls.sample(np.random.default_rng(0), space)
    except EvonasError:
        raise
    except Exception as e:  # a space the genome's own checks missed
        raise ConfigError("config", f"genome.{cfg.genome}", dict(cfg.space), f"{type(e).__name__}: {e}") from None
