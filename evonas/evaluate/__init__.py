"""Fitness evaluation: jobs in, results out (see ``base``)."""
from .base import Evaluator, FunctionEvaluator, Job, Result

__all__ = ["Evaluator", "FunctionEvaluator", "Job", "Result"]
