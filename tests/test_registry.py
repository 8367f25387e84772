"""Registries: decorator registration, duplicate names raise, unknown names list the known ones."""
import pytest

from evonas.errors import RegistryError
from evonas.evolve.base import STRATEGIES, Strategy, register_strategy
from evonas.genome import GENOMES, register_genome
from evonas.registry import Registry


def test_duplicate_names_raise_and_unknown_lists_known():
    reg = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="'a' is already registered"):
        reg.register("a", 2)
    with pytest.raises(RegistryError, match=r"unknown widget 'b' \(known: a\)"):
        reg.get("b")
    assert reg.get("a") == 1


@pytest.mark.parametrize("registry, decorator, attr", [
    (GENOMES, register_genome, "type_name"),
    (STRATEGIES, register_strategy, "name"),
])
def test_class_decorators_name_the_class_and_refuse_builtin_names(registry, decorator, attr):
    existing = registry.names()[0]
    with pytest.raises(RegistryError, match="already registered"):
        decorator(existing)(type("Dup", (Strategy,), {}))
    cls = decorator("test-only-name")(type("New", (Strategy,), {}))
    try:
        assert getattr(cls, attr) == "test-only-name" and registry.get("test-only-name") is cls
    finally:
        registry.unregister("test-only-name")
