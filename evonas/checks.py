"""Checks of a run's settings that need the registries or a trial build: run by
``evonas.run._plan`` before the run directory exists, so bad input writes nothing."""
from __future__ import annotations

import dataclasses
import math

from .config import Config
from .config_sections import RESERVED
from .errors import ConfigError, EvonasError


def check_strategy_args(cfg: Config, cls, space, seeds) -> None:
    """``strategy.<name>`` (``--strategy-arg``, ``--strategy.NAME.KEY``): each key a
    keyword of the strategy's constructor (not one of those set by their own flags),
    and the strategy built once with them, so a bad value fails here, before the run
    directory exists. Errors name ``strategy.<name>.<key>``."""
    if not cfg.strategy_args:
        return
    import inspect

    from .evolve.base import STRATEGIES
    from .evolve.toolbox import Variation
    strategy, where = STRATEGIES.get(cfg.strategy), f"strategy.{cfg.strategy}"
    accepted = inspect.signature(strategy.__init__).parameters
    for key, value in cfg.strategy_args.items():
        if key in RESERVED or key not in accepted or key == "self":
            why = (f"is set with {RESERVED[key]}" if RESERVED.get(key) else
                   f"not a parameter of strategy {cfg.strategy} (its parameters: "
                   f"{', '.join(k for k in accepted if k not in RESERVED and k != 'self') or 'none'})")
            raise ConfigError("config", f"{where}.{key}", value, why)
    offered = {"population": cfg.population, "sample": cfg.sample_size, "selection": cfg.selection}
    args = {**{k: v for k, v in offered.items() if k in accepted}, **cfg.strategy_args}
    try:
        strategy(Variation(cls, space, list(cfg.mutations) or None, seeds), **args)
    except ConfigError as e:
        raise ConfigError("config", f"{where}.{e.field}", e.value, e.why) from None
    except (TypeError, ValueError) as e:
        raise ConfigError("config", where, dict(cfg.strategy_args), f"{type(e).__name__}: {e}") from None


def surrogate_args(cfg: Config, base_args: dict, data) -> dict:
    """The ``surrogate`` strategy's arguments for ``--surrogate NAME`` around
    ``--strategy`` (built with ``base_args``): ``--surrogate-arg`` items, whose
    ``screen_args`` go to the screen (naswot also gets the run's data and seed)."""
    extra = dict(cfg.surrogate_args)
    screen_args = dict(extra.pop("screen_args", None) or {})
    if cfg.surrogate == "naswot":
        screen_args.update(data=data, seed=cfg.seed)
    return {**extra, "base": cfg.strategy, "base_args": base_args, "screen": cfg.surrogate,
            "screen_args": screen_args}


def check_surrogate_args(cfg: Config, cls, space, seeds) -> None:
    """``--surrogate-arg``: each key a parameter of the surrogate middleware (not
    one set by another flag), and the middleware built once with them, so a bad
    value (a predictor option included) fails before the run directory exists."""
    if not cfg.surrogate_args:
        return
    import inspect

    from .evolve.surrogate import Surrogate
    from .evolve.toolbox import Variation
    accepted = inspect.signature(Surrogate.__init__).parameters
    for key, value in cfg.surrogate_args.items():
        if key in RESERVED or key not in accepted or key == "self":
            why = (f"is set with {RESERVED[key]}" if RESERVED.get(key) else "not a parameter of the surrogate "
                   f"(its parameters: {', '.join(k for k in accepted if k not in RESERVED and k != 'self')})")
            raise ConfigError("config", f"surrogate_args.{key}", value, why)
    if not isinstance(cfg.surrogate_args.get("screen_args", {}), dict):
        raise ConfigError("config", "surrogate_args.screen_args", cfg.surrogate_args["screen_args"],
                          "must be a JSON object")
    offered = {"population": cfg.population, "sample": cfg.sample_size, "selection": cfg.selection}
    from .evolve.base import STRATEGIES
    base_accepts = inspect.signature(STRATEGIES.get(cfg.strategy).__init__).parameters
    base = {**{k: v for k, v in offered.items() if k in base_accepts}, **cfg.strategy_args}
    args = surrogate_args(cfg, base, cfg.dataset)  # naswot reads its data only on use
    try:
        Surrogate(Variation(cls, space, list(cfg.mutations) or None, seeds), **args)
    except ConfigError as e:
        raise ConfigError("config", f"surrogate_args.{e.field}", e.value, e.why) from None
    except (TypeError, ValueError) as e:
        raise ConfigError("config", "surrogate_args", dict(cfg.surrogate_args), f"{type(e).__name__}: {e}") from None


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
