"""NAS-Bench-201 genome: exact string form, errors, mutation, and the hash checked
against the benchmark table (the synthetic one always; the real one's figures are
data tests, run where ../shared/data has it)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evonas.errors import GenomeError
from evonas.genome.nb201 import EDGES, OPS, NB201Genome, NB201Space, mut_edge_op
from evonas.graph import validate

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
GENOME_FILE = Path(__file__).resolve().parents[1] / "genomes" / "nb201_best.json"


@pytest.fixture(scope="module")
def cell_hashes():
    """{cell string: arch_hash} of all 15,625 cells (about 10 s)."""
    return {NB201Genome(o).to_string(): NB201Genome(o).arch_hash() for o in itertools.product(OPS, repeat=6)}


def test_all_table_strings_round_trip(any_nb201_table):
    table = pd.read_csv(any_nb201_table)
    assert len(table) == 15625 and table.arch_str.is_unique
    for s in table.arch_str:
        assert NB201Genome.from_string(s).to_string() == s


def test_best_cell_is_the_genome_file(real_nb201_table):
    table = pd.read_csv(real_nb201_table)
    best = table.loc[table.c10_val_200.idxmax()]
    assert best.arch_str == BEST == json.loads(GENOME_FILE.read_text())["genome"]
    assert best.c10_val_200 == pytest.approx(91.6067) and best.c10_test_200 == pytest.approx(94.3733)


def test_distinct_hashes(cell_hashes):
    # NB201's own (weaker) rule gives 6,466; our canonical form also splices skip
    # chains and single-input sums, which preserve the function.
    assert len(set(cell_hashes.values())) == 6334


def test_merged_genomes_compute_the_same_network(real_nb201_table, cell_hashes):
    """Cells with one hash have the same accuracy in the real table, up to seed noise."""
    table = pd.read_csv(real_nb201_table)
    hashed = table.assign(h=table.arch_str.map(cell_hashes))
    groups = hashed.groupby("h").c10_test_200
    within = groups.std(ddof=1).dropna()  # groups of 2 or more genomes
    assert len(within) > 1000
    assert within.mean() < 0.5 < 10 < hashed.c10_test_200.std()


def test_string_form_and_op_order():
    g = NB201Genome.from_string(BEST)
    assert g.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1")
    assert EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


@pytest.mark.parametrize("text, field", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "genome"),  # 2 groups
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 0->1 op"),  # unknown op
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 0->1"),  # wrong source
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2"),  # edge count
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),  # missing '|'
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 0->1"),  # missing '~'
    (42, "genome"),
])
def test_malformed_strings_raise_named_error(text, field):
    with pytest.raises(GenomeError) as e:
        NB201Genome.from_string(text)
    assert e.value.field == field and field in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("space", [NB201Space(C=0), NB201Space(N=33), NB201Space(C=True)])
def test_bad_space_raises(space):
    with pytest.raises(GenomeError):
        NB201Genome(("none",) * 6, space)


def test_edge_op_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(0)
    g = NB201Genome.sample(rng)
    seen = set()
    for _ in range(300):
        child = mut_edge_op(g, rng)
        diff = [i for i in range(6) if child.ops[i] != g.ops[i]]
        assert len(diff) == 1 and child.ops[diff[0]] in OPS and child.space == g.space
        seen.add(diff[0])
        g = child
    assert seen == set(range(6))  # every edge gets mutated


def test_dead_cells_decode_and_hash_by_function():
    space = NB201Space(C=8, N=1)
    dead = NB201Genome(("none",) * 6, space)
    validate(dead.decode())
    # node 1 computes a conv that never reaches node 3: the same (zero) cell
    also_dead = NB201Genome(("nor_conv_3x3",) + ("none",) * 5, space)
    assert also_dead.arch_hash() == dead.arch_hash()
    skip = NB201Genome.from_string("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", space)
    assert skip.arch_hash() != dead.arch_hash()
