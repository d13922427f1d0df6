"""deltagrad.optim.lr_scheduler: the learning rates equal PyTorch's, epoch for epoch, exactly."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import optim
from deltagrad.optim import lr_scheduler


def two_group_optimizer(lib, lrs=(0.1, 0.03)):
    ps = [lib.tensor(np.ones(2), requires_grad=True) for _ in lrs]
    return lib.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=0.5, momentum=0.9)


SCHEDULERS = [
    ("StepLR", dict(step_size=7)),
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 20], gamma=0.2)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=12, eta_min=1e-3)),  # 30 epochs: past T_max, up again and down
    ("LambdaLR", dict(lr_lambda=lambda epoch: 0.9**epoch + 0.01 * epoch)),
]


def lr_sequence(lib, name, kwargs, epochs=30):
    opt = two_group_optimizer(lib)
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
    seq = [sched.get_last_lr()]
    for _ in range(epochs):
        opt.step()
        sched.step()
        seq.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == seq[-1]
    return seq, opt


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULERS)])
def test_lr_sequence_equals_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, opt = lr_sequence(dg, name, kwargs)
    theirs, _ = lr_sequence(torch, name, kwargs)
    assert ours == theirs  # exactly: same formulas, same order of floating-point operations
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03]
    assert len(set(map(tuple, ours))) > 1


def test_known_values():
    seq, _ = lr_sequence(dg, "StepLR", dict(step_size=2, gamma=0.5), epochs=5)
    assert [s[0] for s in seq] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rel=1e-15)
    seq, _ = lr_sequence(dg, "CosineAnnealingLR", dict(T_max=4), epochs=4)
    closed = [0.1 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert [s[0] for s in seq] == pytest.approx(closed, abs=1e-16)


def test_closed_form_step_with_epoch_warns_as_torch_does():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (dg, torch):
        opt = two_group_optimizer(lib)
        sched = lib.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
        opt.step()
        with pytest.warns(UserWarning, match="deprecated"):
            sched.step(5)
        results.append(sched.get_last_lr())
    assert results[0] == results[1]


def test_stepping_the_scheduler_first_warns():
    opt = two_group_optimizer(dg)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        sched.step()
    opt2 = two_group_optimizer(dg)
    sched2 = lr_scheduler.StepLR(opt2, step_size=1)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


PLATEAU = [
    dict(patience=4),
    dict(mode="min", factor=0.5, patience=2, threshold=0.01, threshold_mode="rel", cooldown=0),
    dict(mode="min", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, min_lr=0.02),
    dict(mode="max", factor=0.3, patience=2, threshold=0.1, threshold_mode="rel", min_lr=[0.01, 0.001]),
    dict(mode="max", factor=0.7, patience=0, threshold=0.0, threshold_mode="abs", cooldown=1, eps=1e-3),
]
METRICS = [1.0, 0.9, 0.89, 0.895, 0.9, 0.88, 0.88, 0.95, 0.7, 0.71, 0.72, 0.699, 0.7, 0.7, 0.7, 0.5, 0.6,
           0.6, 0.6, 0.6, 0.6, 0.4, 0.41, 0.45, 0.45, 0.45, 0.3, 0.3, 0.31, 0.32, 0.33, 0.34, 0.2]


@pytest.mark.parametrize("kwargs", PLATEAU)
def test_reduce_on_plateau_equals_torch(kwargs):
    torch = pytest.importorskip("torch")
    seqs = []
    for lib in (dg, torch):
        opt = two_group_optimizer(lib)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
        seq = []
        for m in METRICS:
            opt.step()
            sched.step(m)
            seq.append((sched.get_last_lr(), sched.num_bad_epochs, sched.cooldown_counter, sched.best))
        seqs.append(seq)
    assert seqs[0] == seqs[1]
    assert seqs[0][-1][0] != [0.1, 0.03]  # it did reduce


def test_reduce_on_plateau_validation():
    opt = two_group_optimizer(dg)
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold mode"):
        lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="min_lrs"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=2)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)


@pytest.mark.parametrize("make", [
    lambda o: lr_scheduler.StepLR(o, step_size=4, gamma=0.5),
    lambda o: lr_scheduler.MultiStepLR(o, milestones=[3, 9, 9], gamma=0.5),
    lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9),
    lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.5**e]),
    lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5, cooldown=1),
])
def test_state_dict_round_trip_through_json(make):
    def advance(opt, sched, epochs, start):
        for e in range(start, start + epochs):
            opt.step()
            if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
                sched.step(METRICS[e])
            else:
                sched.step()

    opt = two_group_optimizer(dg)
    sched = make(opt)
    advance(opt, sched, 20, 0)
    expected = sched.get_last_lr()

    opt1 = two_group_optimizer(dg)
    sched1 = make(opt1)
    advance(opt1, sched1, 10, 0)
    arrays, meta = optim.state_to_flat({"optimizer": opt1.state_dict(), "scheduler": sched1.state_dict()})
    meta = json.loads(json.dumps(meta, allow_nan=False))
    back = optim.state_from_flat(arrays, meta)

    opt2 = two_group_optimizer(dg)
    sched2 = make(opt2)
    opt2.load_state_dict(back["optimizer"])
    sched2.load_state_dict(back["scheduler"])
    advance(opt2, sched2, 10, 10)
    assert sched2.get_last_lr() == expected


def test_lambda_state_dict_leaves_out_the_functions():
    class Warmup:
        def __init__(self, n):
            self.n = n

        def __call__(self, e):
            return min(1.0, (e + 1) / self.n)

    opt = two_group_optimizer(dg)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, Warmup(5)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"n": 5}]
    assert "optimizer" not in sd
    sd["lr_lambdas"][1]["n"] = 10
    sched.load_state_dict(sd)
    assert sched.lr_lambdas[1].n == 10
