"""A survey on a real SLURM cluster through dask-jobqueue's SLURMCluster.

Needs SLURM commands and an idle node (``ci/slurm-up.sh`` brings up a
one-node cluster on this machine); skipped with the reason otherwise. Four
observations (one corrupt) are surveyed with the ``xcube survey`` command;
then a second parameter set is added with a slowed search, one batch job is
cancelled with ``scancel`` mid-run, and the survey is resumed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import xcube
from xcube.survey.status import read_status

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[1]
GOOD = [f"04000000{i:02d}" for i in range(3)]
CORRUPT = "0400000099"
JOB_OPTIONS = ["--cores", "1", "--memory", "2GB", "--processes", "1", "--jobs", "2", "--walltime", "00:15:00"]


def _slurm_ready() -> str | None:
    """None when SLURM can run jobs here, else why not."""
    for cmd in ("sbatch", "squeue", "scancel", "sinfo"):
        if shutil.which(cmd) is None:
            return f"no {cmd} on PATH (run ci/slurm-up.sh as root to start a one-node SLURM)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed: {exc}"
    if "idle" not in states and "mix" not in states:
        return f"no idle SLURM node (sinfo: {states.strip() or 'nothing'}); run ci/slurm-up.sh"
    return None


_WHY = _slurm_ready()
pytestmark = [pytestmark, pytest.mark.skipif(_WHY is not None, reason=f"SLURM not available: {_WHY}")]


def slow_search(events, **kw):
    """The transient search, slowed down so that a batch job can be cancelled mid-run."""
    time.sleep(3.0)
    return xcube.search_transients(events, **kw)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    import xcube.simulate as sim

    root = tmp_path_factory.mktemp("slurm-archive")
    for i, obsid in enumerate(GOOD):
        sim.event_list("xmm-mos1", duration=10_000.0, sources=[dict(ra=150.05, dec=2.2, rate=0.05)], soft_protons=0,
                       flares=[dict(amplitude=0.5, width=150.0, t_peak=3000.0 + 500 * i, ra=150.0, dec=2.2)],
                       ra_pnt=150.0, dec_pnt=2.2, obs_id=obsid, seed=i,
                       path=root / obsid / f"P{obsid}M1S001MIEVLI0000.FIT")
    bad = root / CORRUPT / f"P{CORRUPT}M1S001MIEVLI0000.FIT"
    bad.parent.mkdir()
    good = (root / GOOD[0] / f"P{GOOD[0]}M1S001MIEVLI0000.FIT").read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    return root


def _env() -> dict:
    """The environment of the driver; sbatch passes it on to the worker jobs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _dask_jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j %T"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if "dask-worker" in line and "RUNNING" in line]


def _check_status(out: Path, n_params: int) -> pd.DataFrame:
    st = read_status(out)
    assert len(st) == 4 * n_params and not st.duplicated(["obsid", "run_id"]).any()
    bad = st[st["obsid"] == CORRUPT]
    assert set(bad["state"]) == {"failed"}
    assert all("truncated" in m and CORRUPT in m for m in bad["message"])
    return st


def _survey_command(archive, out, time_bins, *extra) -> list[str]:
    return [sys.executable, "-m", "xcube.cli", "survey", str(archive), "--out", str(out), "--time-bin", *time_bins,
            "--energy", "0.2", "12", "--cluster", "slurm", *JOB_OPTIONS, "--dashboard-address", ":0",
            "--figures", "none", "-q", *extra]


def test_survey_on_slurm_with_a_cancelled_job_and_resume(archive, tmp_path):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    # run from a directory of the test: sbatch writes the jobs' slurm-<id>.out logs into the current one
    first = tmp_path / "first"
    first.mkdir()
    res = subprocess.run(_survey_command(archive, out, ["500"]), capture_output=True, text=True, env=_env(),
                         timeout=300, cwd=first)
    wall = time.perf_counter() - t0
    print(f"SLURM survey of 4 observations: {wall:.1f} s wall (command start to exit)")
    assert res.returncode == 1, res.stdout + res.stderr  # the corrupt observation's run failed
    assert f"  {CORRUPT}: failed" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "CommClosedError" not in res.stderr, res.stderr
    job_logs = {p.name: p.read_text() for p in first.glob("slurm-*.out")}
    assert len(job_logs) == 2  # the two worker jobs, shut down without tracebacks
    assert not [n for n, text in job_logs.items() if "Traceback" in text or "CommClosedError" in text], job_logs
    st = _check_status(out, 1)
    assert set(st.loc[st["obsid"] != CORRUPT, "state"]) == {"done"}
    assert st["worker"].str.startswith("tcp://").all()  # ran on the batch jobs' workers
    cat = pd.read_parquet(out / "catalogue" / "sources.parquet")
    det = pd.read_parquet(out / "catalogue" / "detections.parquet")
    assert len(det) == st["n_detections"].sum() > 0 and len(cat) >= 1

    # a second time bin, searched slowly; one batch job is cancelled mid-run
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import test_survey_slurm as t
        from xcube.survey import Compute, parameter_grid, run
        if __name__ == "__main__":
            engine = Compute(cluster="slurm", retries=0, dashboard_address=":0",
                             jobs=dict(cores=1, memory="2GB", processes=1, jobs=2, walltime="00:15:00"))
            run({str(archive)!r}, {str(out)!r}, parameter_grid([500.0, 1000.0], [(0.2, 12.0)]), compute=engine,
                search=t.slow_search, progress=False, figures="none")
    """))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(), cwd=tmp_path)
    cancelled = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(out.glob("*/*_1000_*/run.json"))) >= 1 and _dask_jobs():
            cancelled = _dask_jobs()[0]
            subprocess.run(["scancel", cancelled], check=True)
            break
        time.sleep(0.2)
    log = proc.communicate(timeout=240)[0]
    print(f"survey with job {cancelled} cancelled mid-run; driver log tail:\n{log[-3000:]}")
    assert cancelled is not None, f"no job to cancel; driver log:\n{log}"
    assert proc.returncode == 0, log
    st = _check_status(out, 2)  # every run once, also the ones lost with the job
    lost = st[(st["obsid"] != CORRUPT) & (st["state"] != "done")]
    assert set(lost["error_class"]) <= {"KilledWorker"}, lost[["obsid", "run_id", "error_class", "message"]]

    # resume: the runs lost with the cancelled job are redone, nothing else
    t0 = time.perf_counter()
    res = subprocess.run(_survey_command(archive, out, ["500", "1000"], "--retry-failed"), capture_output=True,
                         text=True, env=_env(), timeout=300, cwd=tmp_path)
    print(f"resumed survey: {time.perf_counter() - t0:.1f} s wall; {res.stdout.strip()}")
    assert res.returncode == 1, res.stdout + res.stderr  # the corrupt observation fails again
    assert "Traceback" not in res.stderr, res.stderr
    st = _check_status(out, 2)
    assert set(st.loc[st["obsid"] != CORRUPT, "state"]) == {"done"}
    assert not _dask_jobs()  # the survey's jobs ended with it
