"""Where a sweep's runs execute: this process, a local process pool, Slurm (submitit) or Ray.

Every executor takes `RunSpec`s and hands back one `concurrent.futures.Future` per run,
whose result is the run's `RunResult` dict (see `execute`). So the sweep driver
(`lab.sweep`) is the same whatever the engine. Slurm and Ray are optional extras, imported
only when asked for.

- `inprocess`: one run at a time in this process (debuggable; used for `--workers 1`).
- `local`: a process pool (spawn), CPU threads split between workers
  (`torch.set_num_threads(max(1, cores // workers))`); on a machine with several GPUs the
  workers take them round-robin.
- `slurm`: submitit job arrays; several runs are packed into each job (run one after the
  other) since many tiny jobs load a scheduler for nothing. `cluster="local"` runs the jobs
  as local processes and `"debug"` in this process, so no Slurm is needed to test it.
- `ray`: one Ray task per run, on a running cluster (`address`) or a local instance.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.errors import ConfigError
from lab.runs import Status

RunResult = dict[str, Any]


@dataclass(frozen=True)
class RunSpec:
    """One run to execute: its resolved config, the output root, the device and CPU threads."""

    config: dict[str, Any]
    root: str
    device: str = "auto"
    threads: int = 0  # 0: leave torch's default


def _interrupt_once(signum: int, frame: Any) -> None:
    """SIGINT or SIGTERM while a run trains: interrupt it once (it saves a checkpoint); ignore
    repeats."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def execute(spec: RunSpec) -> RunResult:
    """Train one run (or resume it, or find it complete) and describe the outcome.

    Never raises for a failed run: its status (a `Status`) is `failed` (the run's meta.json
    records the error too), `interrupted` (checkpoint saved), `running elsewhere` (another
    process holds its lock), `complete` or `complete already`. `spec.config` must be resolved
    (`lab.resolve.resolve`, as `plan` does): a run is found again by its planned name.
    """
    import torch

    from lab import runs
    from lab.config import RunConfig
    from lab.run import make_trainer
    if spec.threads:
        torch.set_num_threads(spec.threads)
    config = RunConfig.from_dict(spec.config)
    result: RunResult = {"name": config.run_name(), "status": Status.FAILED, "error": None,
                         "primary": None,
                         "primary_metric": None, "wall_s": None, "host": os.uname().nodename}
    in_worker = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    # pool workers ignore SIGINT between runs; during a run it (or SIGTERM) interrupts the run
    if in_worker:
        signal.signal(signal.SIGINT, _interrupt_once)
        signal.signal(signal.SIGTERM, _interrupt_once)
    start = time.perf_counter()
    try:
        trainer = make_trainer(config, spec.root, spec.device, quiet=True)
        if trainer.run_dir.name != result["name"]:  # the sweep would never find this run again
            raise ConfigError(f"{result['name']} was planned unresolved (resolved, it is "
                              f"{trainer.run_dir.name}); "
                              "plan runs with lab.resolve.resolve")
        summary = trainer.run()
        # the trainer's status is complete only if the run was found complete (before or once it
        # held the lock)
        result["status"] = Status.COMPLETE_ALREADY if trainer.status == Status.COMPLETE else Status.COMPLETE
        result["primary_metric"] = summary.get("primary_metric")
        result["primary"] = summary.get("final", {}).get(summary.get("primary_metric"))
    except runs.RunLocked:
        result["status"] = Status.RUNNING_ELSEWHERE
    except KeyboardInterrupt:
        result["status"] = Status.INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a failed run must not stop the sweep
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc(limit=-3)
    finally:
        if in_worker:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def execute_many(specs: list[RunSpec]) -> list[RunResult]:
    """Run several specs one after the other (one Slurm job of a packed array)."""
    results = []
    for spec in specs:
        results.append(execute(spec))
        if results[-1]["status"] == Status.INTERRUPTED:
            break
    return results


class Executor:
    """The interface: submit specs, wait for some to finish, interrupt, shut down.

    `capacity`: how many runs to hand over at once (None: all that are ready; a scheduler
    queues them). Local pools get no more than they run, so an interrupt stops everything.
    """

    capacity: int | None = None

    def submit(self, specs: list[RunSpec]) -> list[Future]:
        raise NotImplementedError

    def wait_any(self, futures: set[Future], timeout: float | None = None) -> set[Future]:
        """Block until at least one future is done (or `timeout`); return the done ones."""
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done)

    def interrupt(self) -> None:
        """Ask running runs to stop after saving a checkpoint (best effort)."""

    def shutdown(self) -> None:
        """Cancel what has not started and release resources."""


class InProcessExecutor(Executor):
    """Runs each spec in this process when the driver waits for it: simple and debuggable."""

    capacity = 1

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self.queue: list[tuple[RunSpec, Future]] = []

    def submit(self, specs: list[RunSpec]) -> list[Future]:
        futures = []
        for spec in specs:
            future: Future = Future()
            self.queue.append((RunSpec(spec.config, spec.root, spec.device,
                                       self.threads or spec.threads), future))
            futures.append(future)
        return futures

    def wait_any(self, futures: set[Future], timeout: float | None = None) -> set[Future]:
        done = {f for f in futures if f.done()}
        if done:
            return done
        spec, future = next((s, f) for s, f in self.queue if f in futures)
        self.queue = [(s, f) for s, f in self.queue if f is not future]
        result = execute(spec)
        future.set_result(result)
        # Ctrl-C reached the run: stop the sweep as the user asked
        if result["status"] == Status.INTERRUPTED:
            raise KeyboardInterrupt
        return {future}

    def shutdown(self) -> None:
        for _, future in self.queue:
            future.cancel()
        self.queue = []


def cpu_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _init_worker(threads: int, gpus: Any) -> None:
    """Pool worker start-up: ignore Ctrl-C between runs, pin threads, and take a GPU if shared
    out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus.get())
    import torch
    torch.set_num_threads(threads)


class LocalExecutor(Executor):
    """A pool of `workers` spawned processes, each with `cores // workers` CPU threads."""

    def __init__(self, workers: int, threads: int | None = None, gpus: int = 0) -> None:
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        self.capacity = workers
        self.threads = threads or max(1, cpu_cores() // workers)
        queue = None
        if gpus > 1:  # several GPUs: worker k takes GPU k mod gpus
            queue = context.Queue()
            for k in range(workers):
                queue.put(k % gpus)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                        initializer=_init_worker,
                                        initargs=(self.threads, queue))

    def submit(self, specs: list[RunSpec]) -> list[Future]:
        return [self.pool.submit(execute, spec) for spec in specs]

    def interrupt(self) -> None:
        # SIGINT reaches the workers by itself on Ctrl-C in a terminal; a `kill` of the sweep does
        # not.
        for process in list(getattr(self.pool, "_processes", {}).values()):
            try:
                os.kill(process.pid, signal.SIGINT)
            except (ProcessLookupError, OSError):
                pass

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class SlurmExecutor(Executor):
    """submitit job arrays: `runs_per_job` runs per job, each job with `gpus_per_run` GPUs."""

    def __init__(self, folder: Path, cluster: str = "slurm", partition: str | None = None,
                 gpus_per_run: int = 1,
                 cpus_per_run: int = 4, time_limit_min: int = 60, runs_per_job: int = 4,
                 array_parallelism: int = 64, mem_gb: int | None = None) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("--executor slurm needs submitit: pip install 'mtp-lab[slurm]'") from None
        if runs_per_job < 1:
            raise ConfigError(f"--runs-per-job must be at least 1, got {runs_per_job}")
        self.runs_per_job = runs_per_job
        self.cpus_per_run = cpus_per_run
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        except (RuntimeError, ValueError) as e:
            raise ConfigError(f"cannot use submitit cluster {cluster!r}: {e}") from None
        params: dict[str, Any] = dict(timeout_min=time_limit_min, gpus_per_node=gpus_per_run,
                                      nodes=1,
                                      tasks_per_node=1, cpus_per_task=cpus_per_run, name="mtp-lab",
                                      slurm_array_parallelism=array_parallelism)
        if partition:
            params["slurm_partition"] = partition
        if mem_gb:
            params["mem_gb"] = mem_gb
        self.executor.update_parameters(**params)
        self.jobs: list[Any] = []

    def submit(self, specs: list[RunSpec]) -> list[Future]:
        specs = [RunSpec(s.config, s.root, s.device, self.cpus_per_run) for s in specs]
        packs = [specs[i:i + self.runs_per_job] for i in range(0, len(specs), self.runs_per_job)]
        futures: list[Future] = [Future() for _ in specs]
        jobs = self.executor.map_array(execute_many, packs)
        self.jobs += jobs
        for k, (job, pack) in enumerate(zip(jobs, packs)):
            start = k * self.runs_per_job
            threading.Thread(target=self._watch, args=(job, pack, futures[start:start + len(pack)]),
                             daemon=True).start()
        return futures

    @staticmethod
    def _watch(job: Any, pack: list[RunSpec], futures: list[Future]) -> None:
        """Wait for one job and resolve its runs' futures (a job that dies fails its unfinished runs)."""
        from lab.config import RunConfig
        try:
            results = job.result()
            error = "the job stopped before this run (see its submitit log)"
        except Exception as e:  # noqa: BLE001 - a dead job is reported per run, the sweep goes on
            results, error = [], f"job {job.job_id} failed: {type(e).__name__}: {str(e)[-500:]}"
        for k, (spec, future) in enumerate(zip(pack, futures)):
            if k < len(results):
                future.set_result(results[k])
            else:
                future.set_result({"name": RunConfig.from_dict(spec.config).run_name(),
                                   "status": Status.FAILED,
                                   "error": error, "primary": None, "primary_metric": None,
                                   "wall_s": None})

    def interrupt(self) -> None:
        for job in self.jobs:
            if not job.done():
                job.cancel(check=False)


class RayExecutor(Executor):
    """One Ray task per run on the cluster at `address`, or on a local Ray instance of `workers`
    CPUs."""

    def __init__(self, address: str | None = None, workers: int = 1, cpus_per_run: int = 1,
                 gpus_per_run: float = 0, threads: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs ray: pip install 'mtp-lab[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            kwargs: dict[str,
                         Any] = {"address": address} if address else {"num_cpus": workers * cpus_per_run}
            ray.init(**kwargs, include_dashboard=False, log_to_driver=False)
        self.remote = ray.remote(execute).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                                  max_retries=0)
        self.threads = threads or cpus_per_run
        self.refs: list[Any] = []

    def submit(self, specs: list[RunSpec]) -> list[Future]:
        refs = [self.remote.remote(RunSpec(s.config, s.root, s.device,
                                           self.threads)) for s in specs]
        self.refs += refs
        return [ref.future() for ref in refs]

    def interrupt(self) -> None:
        for ref in self.refs:
            try:
                self.ray.cancel(ref)
            except Exception:  # noqa: BLE001 - finished tasks cannot be cancelled
                pass

    def shutdown(self) -> None:
        if self.started_here:
            self.ray.shutdown()
