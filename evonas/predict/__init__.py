"""Predictors of fitness from an architecture (issue 17): encodings
(``encoding``), the predictor interface and an MLP ensemble (``mlp_ensemble``),
NAO's encoder-predictor-decoder (``nao``, torch, imported on use) and PVLL's
landscape (``pvll``). ``Screen`` is what strategies use: a predictor on one
encoding, refit every k results with a warm start."""
from .encoding import ENCODINGS, default_encoding, encode
from .mlp_ensemble import PREDICTORS, MLPEnsemble, Predictor
from .screen import SCREENS, ModelScreen, Screen

__all__ = ["ENCODINGS", "default_encoding", "encode", "PREDICTORS", "MLPEnsemble", "Predictor",
           "SCREENS", "ModelScreen", "Screen"]
