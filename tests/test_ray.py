"""The Ray backend runs the same evaluate_job as Ray tasks (local Ray instance).
Skipped when Ray is missing or a local instance cannot start; deselect with -k 'not ray'."""
import pytest

from evonas.evaluate.base import Job
from evonas.evaluate.data import DataSpec
from evonas.evaluate.train import TrainConfig
from evonas.genome.nb201 import NB201Genome, NB201Space

ray = pytest.importorskip("ray", reason="ray is not installed")

TINY = NB201Genome(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "avg_pool_3x3",
                    "nor_conv_3x3"), NB201Space(C=4, N=1))


@pytest.fixture(scope="module")
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # no shared memory, ports, ...: not this code's fault
        pytest.skip(f"a local Ray instance does not start here: {e}")
    yield ray
    ray.shutdown()


def test_ray_backend_two_digits_jobs(local_ray):
    from evonas.evaluate.ray_backend import RayEvaluator
    from evonas.evaluate.train import evaluate_job
    spec, cfg = DataSpec("digits", max_train=500), TrainConfig(epochs=1, batch_size=32, threads=1)
    ev = RayEvaluator(spec, cfg, ["cpu", "cpu"])
    assert ev.slots == 2
    ev.submit(Job(1, TINY, seed=0))
    ev.submit(Job(2, TINY, seed=1))
    got = {}
    while len(got) < 2:
        rs = ev.poll(timeout=120)
        assert rs, "no result from Ray within 120 s"
        got.update({r.id: r for r in rs})
    ev.close()
    assert local_ray.is_initialized()  # the evaluator leaves a Ray it did not start running
    assert all(r.status == "ok" and r.fitness > 15.0 for r in got.values()), got
    assert all(r.worker.startswith("ray-") for r in got.values())
    # the same function in-process gives the same fitness (deterministic on CPU)
    assert evaluate_job(Job(1, TINY, seed=0), spec.load(), cfg).fitness == got[1].fitness
