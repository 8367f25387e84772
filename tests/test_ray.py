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


def test_cluster_slots_follow_the_clusters_resources():
    from evonas.errors import ConfigError
    from evonas.evaluate.ray_backend import cluster_slots
    gpu_cluster = {"CPU": 64.0, "GPU": 4.0}  # a driver without a GPU still places on the cluster's
    assert cluster_slots("cuda", trials_per_device=2, resources=gpu_cluster) == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3"] * 2
    assert cluster_slots("auto", resources=gpu_cluster) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert cluster_slots("auto", resources={"CPU": 12.0}) == ["cpu"] * 12  # one task per cluster CPU
    assert cluster_slots("cpu", workers=3, resources=gpu_cluster) == ["cpu"] * 3
    with pytest.raises(ConfigError, match="the Ray cluster has no GPUs"):
        cluster_slots("cuda", resources={"CPU": 8.0})


@pytest.mark.parametrize("address, needle", [("127.0.0.1:1", "cannot reach Ray there"),
                                             ("ray://127.0.0.1:1", "cannot reach Ray there"),
                                             ("no-port", "expected HOST:PORT")])
def test_bad_ray_address_is_one_line_at_once(address, needle):
    """ray.init would retry an unreachable address for minutes; we fail in seconds."""
    from evonas.errors import ConfigError
    from evonas.evaluate.ray_backend import connect
    if ray.is_initialized():
        pytest.skip("this process is already connected to Ray")
    with pytest.raises(ConfigError, match=needle):
        connect(address)
    assert not ray.is_initialized()


def test_cli_search_on_a_local_ray(tmp_path):
    """``python -m evonas.run --backend ray``: a small aging search with real training
    as Ray tasks on a Ray instance the run starts (and shuts down) itself."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd
    d = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    p = subprocess.run([sys.executable, "-m", "evonas.run", "--backend", "ray", "--devices", "cpu",
                        "--workers", "2", "--genome", "nb201", "--space", "C=4", "--space", "N=1",
                        "--population", "2", "--sample-size", "1", "--evaluations", "4",
                        "--batch-size", "128", "--run-dir", str(d), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=600)
    if p.returncode == 2 and "cannot connect/start Ray" in p.stderr:
        pytest.skip(f"a local Ray instance does not start here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr[-2000:]
    df = pd.read_csv(d / "lineage.csv")
    trained = df[df["status"] != "duplicate"]  # an isomorphic child reuses its twin's fitness
    # --evaluations counts trained networks; a duplicate is a row of its own
    assert len(trained) == 4 and (trained["status"] == "ok").all(), df[["status", "reason"]]
    assert trained["worker"].str.startswith("ray-").all() and trained["fitness"].notna().all()
    assert (trained["operator"] != "init").sum() == 2  # children of the population, not 4 random nets


@pytest.fixture(scope="module")
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # no shared memory, ports, ...: not this code's fault
        pytest.skip(f"a local Ray instance does not start here: {e}")
    yield ray
    ray.shutdown()


SPEC, CFG = DataSpec("digits", max_train=500), TrainConfig(epochs=1, batch_size=32, threads=1)


def _collect(ev, n):
    got = {}
    while len(got) < n:
        rs = ev.poll(timeout=120)
        assert rs, "no result from Ray within 120 s"
        got.update({r.id: r for r in rs})
    return got


def test_ray_backend_two_digits_jobs(local_ray):
    from evonas.evaluate.ray_backend import RayEvaluator
    from evonas.evaluate.train import evaluate_job
    spec, cfg = SPEC, CFG
    ev = RayEvaluator(spec, cfg, ["cpu", "cpu"])
    assert ev.slots == 2
    for i in range(4):
        ev.submit(Job(1 + i, TINY, seed=i))
    got = _collect(ev, 4)
    ev.close()
    assert local_ray.is_initialized()  # the evaluator leaves a Ray it did not start running
    assert all(r.status == "ok" and r.fitness > 15.0 for r in got.values()), got
    assert all(r.worker.startswith("ray-") for r in got.values())
    # persistent actors: 4 trials on the 2 actors' processes (data loaded once per actor)
    assert len({r.worker for r in got.values()}) == 2
    # the same function in-process gives the same fitness (deterministic on CPU)
    assert evaluate_job(Job(1, TINY, seed=0), spec.load(), cfg).fitness == got[1].fitness


def test_killed_actor_is_replaced_and_trial_retried_timeout_kills(local_ray):
    from evonas.evaluate.ray_backend import RayEvaluator
    ev = RayEvaluator(SPEC, CFG, ["cpu"], max_retries=1)
    ev.submit(Job(1, TINY, seed=0))
    while ev.busy_handle(1) is None:  # trials go to actors once they have loaded the data
        assert ev.poll(timeout=0.05) == []
    ray.kill(ev.busy_handle(1).actor, no_restart=True)  # the actor's process dies mid-trial
    r = _collect(ev, 1)[1]
    assert r.status == "ok", r.reason  # retried on a fresh actor
    ev.timeout_s = 0.5
    ev.submit(Job(2, NB201Genome(("nor_conv_3x3",) * 6, NB201Space(C=48, N=3)), seed=0))  # several s
    r = _collect(ev, 1)[2]
    assert r.status == "failed" and r.reason.startswith("timeout: actor killed")
    ev.timeout_s = None
    ev.submit(Job(3, TINY, seed=0))
    assert _collect(ev, 1)[3].status == "ok"  # the replacement actor serves on
    ev.close()


def test_actors_that_cannot_start_raise_worker_error(local_ray, tmp_path):
    from evonas.evaluate.ray_backend import RayEvaluator
    from evonas.evaluate.workers import WorkerError
    ev = RayEvaluator(DataSpec(f"npz:{tmp_path / 'gone.npz'}"), CFG, ["cpu"])
    ev.submit(Job(1, TINY, seed=0))
    with pytest.raises(WorkerError, match=r"cannot start \(4 tries\): .*ConfigError.*gone\.npz"):
        for _ in range(100):
            ev.poll(timeout=5)
