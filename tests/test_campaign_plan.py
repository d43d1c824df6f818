"""Campaign plans: parsing, errors naming file, line and key, and the cells they expand to;
the worker command line. Pure logic: the real campaign is in test_campaign.py."""

from __future__ import annotations

from collections import Counter

import pytest

from virtbench.campaign import plan as plans
from virtbench.campaign.cluster import worker_argv
from virtbench.campaign.worker import RESOURCE, host_resource

GOOD = """\
hosts = ["kvm-box", "laptop"]
seed = 3
reconnect_s = 5

[[experiment]]
name = "startup"
variants = ["native/static", "wasmtime-cli/jit"]
reps = 2
quick = true

[[experiment]]
name = "disk"
variants = ["native"]
hosts = ["laptop"]
"""


def load(tmp_path, text: str) -> plans.Plan:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return plans.load(path)


def test_a_plan_expands_to_interleaved_cells_on_its_hosts(tmp_path):
    plan = load(tmp_path, GOOD)
    assert plan.hosts == ("kvm-box", "laptop") and plan.seed == 3 and plan.reconnect_s == 5
    startup, disk = plan.steps
    assert startup.params.reps == 2 and startup.params.warmup == 1 and startup.params.quick
    assert startup.params.seed == 3
    cells = plan.cells(["kvm-box", "laptop"])
    per_host = Counter((c.host, c.experiment) for c in cells)
    assert per_host[("kvm-box", "startup")] == per_host[("laptop", "startup")] == 3 * 2
    assert ("kvm-box", "disk") not in per_host  # disk names only the laptop
    assert per_host[("laptop", "disk")] == len(disk.variants) * len(disk.workloads)
    reps = [c.rep for c in cells if c.host == "laptop" and c.experiment == "startup"]
    assert reps == sorted(reps)  # repetitions outside, variants inside
    assert len({c.key for c in cells}) == len(cells)
    assert plan.named_hosts() == ["kvm-box", "laptop"]


def test_hosts_default_to_every_worker(tmp_path):
    plan = load(tmp_path, '[[experiment]]\nname = "startup"\nvariants = ["native"]\n')
    assert plan.hosts is None and plan.named_hosts() == []
    assert {c.host for c in plan.cells(["a", "b"])} == {"a", "b"}


@pytest.mark.parametrize("text, line, words", [
    ('hostz = "all"\n[[experiment]]\nname = "startup"\n', 1, ["unknown key 'hostz'", "valid:"]),
    ('[[experiment]]\nname = "startup"\n\n[[experiment]]\nname = "startup"\n'
     'variants = ["wasmtme"]\n', 6, ["experiment #2 key 'variants'", "no variant matches"]),
    ('[[experiment]]\nname = "startp"\n', 2, ["key 'name'", "unknown experiment", "startup"]),
    ('[[experiment]]\nname = "cpu"\noptions = { cpu_milions = 5 }\n', 3,
     ["key 'options'", "cpu_milions", "cpu_millions"]),
    ('[[experiment]]\nname = "startup"\nreps = 0\n', 3, ["key 'reps'", "positive integer"]),
    ('hosts = ["ok", "no spaces"]\n[[experiment]]\nname = "startup"\n', 1,
     ["invalid host name 'no spaces'"]),
    ('seed = "x"\n[[experiment]]\nname = "startup"\n', 1, ["seed", "integer"]),
    ('run_id = "../x"\n[[experiment]]\nname = "startup"\n', 1, ["invalid run id"]),
    ('[[experiment]]\nname = "startup"\ncolour = 1\n', 3, ["unknown key 'colour'"]),
    ('hosts = ["a"]\n[[experiment]]\nname = "startup"\nhosts = ["b"]\n', 4,
     ["experiment #1 key 'hosts'", "'b' is not among the plan's hosts (a)"]),
])
def test_a_bad_plan_names_file_line_and_key(tmp_path, text, line, words):
    with pytest.raises(plans.PlanError) as err:
        load(tmp_path, text)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'plan.toml'}:{line}: "), message
    for word in words:
        assert word in message


def test_a_plan_without_experiments_or_valid_toml_is_refused(tmp_path):
    with pytest.raises(plans.PlanError, match="no \\[\\[experiment\\]\\] table"):
        load(tmp_path, 'hosts = "all"\n')
    with pytest.raises(plans.PlanError, match="not valid TOML"):
        load(tmp_path, "[[experiment]\n")
    with pytest.raises(plans.PlanError, match="cannot read plan"):
        plans.load(tmp_path / "missing.toml")


def test_a_worker_has_one_thread_no_nanny_and_its_host_resource():
    argv = worker_argv("tcp://10.0.0.1:8786", "kvm-box")
    assert argv[argv.index("--nthreads") + 1] == "1" and "--no-nanny" in argv
    assert argv[argv.index("--name") + 1] == "kvm-box"
    assert argv[argv.index("--resources") + 1] == f"{RESOURCE}=1 {host_resource('kvm-box')}=1"
    with pytest.raises(ValueError, match="invalid host name"):
        worker_argv("tcp://10.0.0.1:8786", "a b")


class FakeScheduler:
    """Answers scheduler_info like a Dask client (the real one is in test_campaign.py)."""

    def __init__(self, *hosts: str, plain: int = 0) -> None:
        self.workers = {f"tcp://127.0.0.1:{4000 + i}": {
            "name": f"w{i}", "resources": {RESOURCE: 1, host_resource(h): 1}}
            for i, h in enumerate(hosts)}
        for j in range(plain):  # a dask worker without the virtbench resources
            self.workers[f"tcp://127.0.0.1:{5000 + j}"] = {"name": f"p{j}", "resources": {}}

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": self.workers}


def test_the_campaign_takes_the_benchmark_workers_by_their_host_resource(tmp_path):
    from virtbench.campaign.client import wait_for_hosts
    from virtbench.results import RunRefused

    said: list[str] = []
    every = load(tmp_path, 'wait_s = 0\n[[experiment]]\nname = "startup"\n')
    assert wait_for_hosts(FakeScheduler("b", "a", plain=1), every, 2, said.append) == ["a", "b"]
    step = load(tmp_path, 'wait_s = 0\n[[experiment]]\nname = "startup"\nhosts = ["gone"]\n')
    assert wait_for_hosts(FakeScheduler("a"), step, 1, said.append) == ["a", "gone"]
    assert "no worker for host(s) gone" in said[-1]
    named = load(tmp_path, 'wait_s = 0\nhosts = ["a"]\n[[experiment]]\nname = "startup"\n')
    assert wait_for_hosts(FakeScheduler("a", "b"), named, 0, said.append) == ["a"]
    with pytest.raises(RunRefused, match="two workers serve host a"):
        wait_for_hosts(FakeScheduler("a", "a"), every, 1, said.append)
    with pytest.raises(RunRefused, match="no virtbench worker connected"):
        wait_for_hosts(FakeScheduler(plain=2), every, 1, said.append)
