import os
import signal
from dataclasses import dataclass

import pytest
import torch

from engine.errors import CheckpointError, GanvasError
from engine.jobs import Job
from engine.training.run import (
    RunState,
    atomic_write,
    check_budget,
    parse_config,
    read_checkpoint,
    restore_checkpoint,
    sigterm_exits,
    train_steps,
    write_checkpoint,
)


@dataclass
class Config:
    out: str = "runs/x"
    mirror: bool = True
    lr: float = 0.1
    minutes: float | None = None
    steps: int | None = None
    checkpoint_minutes: float = 0.0
    log_every: int = 2
    betas: tuple[float, float] = (0.9, 0.99)
    export: str | None = "x.safetensors"
    smoke: bool = False


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"previous")

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [path]
    atomic_write(path, lambda tmp: tmp.write_bytes(b"new"))
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


def test_checkpoint_round_trip_restores_weights_optimiser_and_generators(tmp_path):
    net = torch.nn.Linear(3, 2)
    opts = {"G": torch.optim.Adam(net.parameters())}
    generator = torch.Generator().manual_seed(1)
    write_checkpoint(tmp_path / "c.pt", Config(), RunState(step=7, seconds=1.5), generator, nets={"G": net}, opts=opts)
    expected = torch.rand(3, generator=generator), torch.rand(3)
    payload = read_checkpoint(tmp_path / "c.pt", "test", ("nets", "opts"))
    assert RunState(**payload["state"]) == RunState(7, 1.5) and payload["config"]["betas"] == (0.9, 0.99)
    other = torch.nn.Linear(3, 2)
    restore_checkpoint(payload, generator, nets={"G": other}, opts={"G": torch.optim.Adam(other.parameters())})
    assert torch.equal(other.weight, net.weight)
    assert all(torch.equal(a, b) for a, b in zip((torch.rand(3, generator=generator), torch.rand(3)), expected))


def test_a_file_that_is_no_checkpoint_is_reported(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"not a test training checkpoint. Got: keys \['weights'\]"):
        read_checkpoint(tmp_path / "other.pt", "test", ("nets",))
    torch.save(torch.zeros(2), tmp_path / "tensor.pt")
    with pytest.raises(CheckpointError, match="Got: keys Tensor"):
        read_checkpoint(tmp_path / "tensor.pt", "test", ())
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read training checkpoint"):
        read_checkpoint(tmp_path / "bad.pt", "test", ())


def run_steps(cfg, state, on_step=lambda state: None, saved=None):
    """``train_steps`` with a step that only counts; returns the steps checkpointed and the progress."""
    saved, reported = [] if saved is None else saved, []

    def step(used):
        state.step += 1
        on_step(state)
        return {"loss": float(state.step)}

    job = Job(1000, lambda done, total, message, preview: reported.append((done, message)))
    train_steps(cfg, state, job, step, lambda meter: f"loss {meter.means()['loss']}",
                lambda: saved.append(state.step))
    return saved, reported


def test_steps_checkpoint_each_step_once_and_report_progress():
    state = RunState()
    saved, reported = run_steps(Config(steps=5), state)
    assert state.step == 5 and state.seconds > 0
    assert saved == [1, 2, 3, 4, 5]  # every step (checkpoint_minutes 0), the last one not twice
    assert reported == [(400, "loss 1.5"), (800, "loss 3.5")]


def test_sigterm_ends_the_loop_with_a_checkpoint_and_the_handler_is_restored():
    def kill_at_three(state):
        if state.step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    def fail_at_two(state):
        if state.step == 2:
            raise RuntimeError("boom")

    before = signal.getsignal(signal.SIGTERM)
    saved: list[int] = []
    with sigterm_exits(), pytest.raises(SystemExit) as exit_info:
        run_steps(Config(steps=10, checkpoint_minutes=60.0), RunState(), kill_at_three, saved)
    assert exit_info.value.code == 128 + signal.SIGTERM and saved == [3]
    assert signal.getsignal(signal.SIGTERM) is before
    saved.clear()
    with pytest.raises(RuntimeError, match="boom"):  # any other error checkpoints the step reached too
        run_steps(Config(steps=10, checkpoint_minutes=60.0), RunState(), fail_at_two, saved)
    assert saved == [2]


def test_command_line_flags_follow_the_configuration():
    cfg, args = parse_config(Config, ["--no-mirror", "--minutes", "1.5", "--steps", "3"], "test", {}, "", threads=1)
    assert (cfg.mirror, cfg.minutes, cfg.steps, args.threads, args.fresh) == (False, 1.5, 3, 1, False)
    cfg, _ = parse_config(Config, ["--smoke", "--out", "o", "--lr", "2"], "test", {"steps": 2, "lr": 1.0}, "s.st", 1)
    assert (cfg.smoke, cfg.steps, cfg.lr, cfg.export) == (True, 2, 2.0, os.path.join("o", "s.st"))
    assert parse_config(Config, ["--no-export"], "test", {}, "", 1)[0].export is None
    with pytest.raises(SystemExit):
        parse_config(Config, ["--betas", "1"], "test", {}, "", 1)  # only scalar fields are flags
    with pytest.raises(GanvasError, match="set a training budget: minutes or steps. Got: none"):
        check_budget(Config())
