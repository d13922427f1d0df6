"""deltagrad.optim: each optimizer (with a learning-rate schedule) follows PyTorch to float64 precision; groups,
hooks, validation, dtypes and state dicts (through safetensors + JSON, no pickle) behave as PyTorch's."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import optim
from deltagrad.optim import lr_scheduler

N = 16
RNG = np.random.default_rng(0)
X = RNG.standard_normal((N, 3))
Y = RNG.standard_normal((N, 2))
INIT = [RNG.standard_normal((4, 3)) * 0.5, RNG.standard_normal(4) * 0.1,
        RNG.standard_normal((2, 4)) * 0.5, RNG.standard_normal(2) * 0.1]


def mlp_loss(ps, X, Y):
    """A 3-4-2 tanh network and its mean squared error, written so deltagrad and torch read alike."""
    W1, b1, W2, b2 = ps
    h = ((X.reshape(N, 1, 3) * W1).sum(dim=2) + b1).tanh()
    out = (h.reshape(N, 1, 4) * W2).sum(dim=2) + b2
    return ((out - Y) ** 2).mean()


SCHEDULES = {
    "step": ("StepLR", dict(step_size=5, gamma=0.5)),
    "multistep": ("MultiStepLR", dict(milestones=[3, 7, 7], gamma=0.3)),
    "exp": ("ExponentialLR", dict(gamma=0.9)),
    "cos": ("CosineAnnealingLR", dict(T_max=8, eta_min=1e-3)),
    "lambda": ("LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1.0 + 0.3 * e))),
    None: None,
}

CASES = [
    ("SGD", dict(lr=0.1), "step"),
    ("SGD", dict(lr=0.1, momentum=0.9), "cos"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3), "exp"),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05), "multistep"),
    ("SGD", dict(lr=0.1, weight_decay=0.1, maximize=True), "lambda"),
    ("SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.05, maximize=True), "step"),
    ("Adam", dict(lr=0.01), "cos"),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, amsgrad=True), "step"),
    ("Adam", dict(lr=0.01, weight_decay=0.1, maximize=True), "exp"),
    ("AdamW", dict(lr=0.01), "multistep"),
    ("AdamW", dict(lr=0.01, weight_decay=0.2, amsgrad=True, maximize=True), "lambda"),
    ("RMSprop", dict(lr=0.01), "exp"),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True), "cos"),
    ("RMSprop", dict(lr=0.005, momentum=0.7, weight_decay=0.1), "step"),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, eps=1e-5, maximize=True), "multistep"),
    ("Adagrad", dict(lr=0.1), "lambda"),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2, eps=1e-8), "cos"),
    ("Adagrad", dict(lr=0.05, maximize=True), None),
]


def make_schedule(module, opt, key):
    if SCHEDULES[key] is None:
        return None
    name, kwargs = SCHEDULES[key]
    return getattr(module, name)(opt, **kwargs)


def train(lib, params, name, kwargs, schedule, steps=20):
    """``steps`` steps of ``name`` on the MLP in ``lib`` (deltagrad or torch); maximize ascends −loss."""
    opt = getattr(lib.optim, name)(params, **kwargs)
    sched = make_schedule(lib.optim.lr_scheduler, opt, schedule)
    Xl, Yl = lib.tensor(X), lib.tensor(Y)
    sign = -1.0 if kwargs.get("maximize") else 1.0
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        (sign * mlp_loss(params, Xl, Yl)).backward()
        opt.step()
        if sched is not None:
            sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    return lrs


def dg_params(dtype=np.float64):
    return [dg.tensor(a.astype(dtype), requires_grad=True) for a in INIT]


@pytest.mark.parametrize("name,kwargs,schedule", CASES, ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CASES])
def test_matches_torch_for_20_steps(name, kwargs, schedule):
    torch = pytest.importorskip("torch")
    pd = dg_params()
    pt = [torch.tensor(a, requires_grad=True) for a in INIT]
    lrs_d = train(dg, pd, name, kwargs, schedule)
    lrs_t = train(torch, pt, name, kwargs, schedule)
    assert lrs_d == lrs_t
    for a, b in zip(pd, pt):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-8, atol=1e-12)
    assert not np.allclose(pd[0].data, INIT[0])  # the steps did move the weights


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(momentum=0.9), dict(momentum=0.9, nesterov=True, weight_decay=0.01),
                                    dict(momentum=0.8, dampening=0.2)])
def test_sgd_on_large_parameters_matches_torch(kwargs, dtype):
    """Parameters of BLAS_AXPBY_MIN elements and more take BLAS axpby/axpy, beside small ones in one native call
    (or NumPy's passes): all agree with torch to the last few bits."""
    torch = pytest.importorskip("torch")
    from deltagrad.backend import BLAS_AXPBY_MIN

    rng = np.random.default_rng(4)
    init = [rng.standard_normal((300, 200)), rng.standard_normal(200), rng.standard_normal((200, 3))]
    assert init[0].size >= BLAS_AXPBY_MIN
    x = rng.standard_normal((16, 300))
    results = []
    for lib in (dg, torch):
        ps = [lib.tensor(a.astype(dtype), requires_grad=True) for a in init]
        opt = lib.optim.SGD(ps, lr=0.01, **kwargs)
        for _ in range(5):
            opt.zero_grad()
            h = (lib.tensor(x.astype(dtype)) @ ps[0] + ps[1]).tanh()
            ((h @ ps[2]) ** 2).mean().backward()
            opt.step()
        results.append([p.detach().numpy() if lib is torch else p.data for p in ps])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*results):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_param_groups_with_their_own_options_match_torch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (dg, torch):
        ps = [lib.tensor(a.copy(), requires_grad=True) for a in INIT]
        opts = [lib.optim.SGD([{"params": ps[:2], "lr": 0.2}, {"params": ps[2:], "momentum": 0.5}], lr=0.05,
                              momentum=0.9),
                None]
        sched = lib.optim.lr_scheduler.LambdaLR(opts[0], [lambda e: 0.9**e, lambda e: 1.0 / (1 + e)])
        ps2 = [lib.tensor(a.copy(), requires_grad=True) for a in INIT]
        opts[1] = lib.optim.Adam([{"params": ps2[:2]}, {"params": ps2[2:], "lr": 0.03, "betas": (0.5, 0.9)}], lr=0.01)
        Xl, Yl = lib.tensor(X), lib.tensor(Y)
        for _ in range(20):
            for opt, params in zip(opts, (ps, ps2)):
                opt.zero_grad()
                mlp_loss(params, Xl, Yl).backward()
                opt.step()
            sched.step()
        results.append([np.array(p.detach().numpy() if lib is torch else p.data) for p in ps + ps2])
        assert [g["lr"] for g in opts[0].param_groups] == pytest.approx([0.2 * 0.9**20, 0.05 / 21], rel=1e-15)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_groups_fill_defaults_and_add_param_group():
    a, b, c = (dg.tensor(np.ones(2), requires_grad=True) for _ in range(3))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["momentum"] == 0.9
    opt.add_param_group({"params": [c], "nesterov": True})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["nesterov"] is True
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="set"):
        optim.SGD({a, b})
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([])
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(a)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2])


def test_parameters_without_grad_are_skipped():
    used = dg.tensor(np.ones(3), requires_grad=True)
    unused = dg.tensor(np.ones(3), requires_grad=True)
    for opt in (optim.Adam([used, unused], lr=0.1), optim.SGD([used, unused], lr=0.1, momentum=0.9),
                optim.RMSprop([used, unused]), optim.Adagrad([used, unused])):
        opt.zero_grad()
        (used * used).sum().backward()
        opt.step()
        np.testing.assert_array_equal(unused.data, np.ones(3))
        assert "momentum_buffer" not in opt.state[unused] and "exp_avg" not in opt.state[unused]
    assert not np.allclose(used.data, 1)


def test_zero_grad():
    w = dg.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.data, np.zeros(3))
    opt.zero_grad()
    assert w.grad is None


def test_step_hooks():
    def run(lr, hook=None):
        w = dg.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        opt = optim.SGD([w], lr=lr)
        if hook is not None:
            opt.register_step_pre_hook(hook)
        for _ in range(3):
            opt.zero_grad()
            (w * w * w).sum().backward()
            opt.step()
        return w.data

    def double_grads(opt, args, kwargs):  # what a data-parallel pre-hook does: rewrite the grads in place
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad.data *= 2

    np.testing.assert_array_equal(run(0.05, double_grads), run(0.1))
    assert not np.array_equal(run(0.05, double_grads), run(0.05))

    w = dg.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", o is opt)))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", o is opt)))
    (w * w).sum().backward()
    opt.step()
    pre.remove()
    opt.step()
    assert calls == [("pre", True), ("post", True), ("post", True)]
    opt.register_step_pre_hook(lambda o, a, k: "nonsense")
    with pytest.raises(RuntimeError, match="pre-hook"):
        opt.step()


def test_steps_are_not_recorded_and_closure_is():
    w = dg.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        assert loss.requires_grad  # the closure records even though step() runs under no_grad
        loss.backward()
        return loss

    with dg.enable_grad():
        loss = opt.step(closure)
    assert float(loss) == 2.0
    assert w.is_leaf and w.grad_fn is None


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-0.1), "lr"),
    (lambda p: optim.SGD(p, lr=float("nan")), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "momentum"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "weight_decay"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "index 0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "index 1"),
    (lambda p: optim.Adam(p, eps=-1), "eps"),
    (lambda p: optim.AdamW(p, weight_decay=-1), "weight_decay"),
    (lambda p: optim.RMSprop(p, alpha=-1), "alpha"),
    (lambda p: optim.RMSprop(p, momentum=-0.5), "momentum"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.LBFGS(p, history_size=0), "history_size"),
    (lambda p: optim.LBFGS(p, line_search_fn="armijo"), "line_search_fn"),
    (lambda p: optim.SGD([{"params": p, "lr": -1}], lr=0.1), "lr"),
])
def test_invalid_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([dg.tensor(np.ones(2), requires_grad=True)])


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1)),
])
def test_float32_parameters_and_state_stay_float32(name, kwargs):
    ps = dg_params(np.float32)
    train(dg, ps, name, kwargs, "cos", steps=5)
    opt = getattr(optim, name)(ps, **kwargs)
    Xl, Yl = dg.tensor(X.astype(np.float32)), dg.tensor(Y.astype(np.float32))
    opt.zero_grad()
    mlp_loss(ps, Xl, Yl).backward()
    opt.step()
    for p in ps:
        assert p.dtype == np.float32
        for v in opt.state[p].values():
            if isinstance(v, dg.Tensor):
                assert v.dtype == np.float32


def _resume_case(name, kwargs, schedule, tmp_path):
    """20 uninterrupted steps == 10 steps, a checkpoint through safetensors + JSON, a fresh optimizer, 10 steps."""
    ref = dg_params()
    train(dg, ref, name, kwargs, schedule, steps=20)

    ps = dg_params()
    opt = getattr(optim, name)(ps, **kwargs)
    sched = make_schedule(lr_scheduler, opt, schedule)
    Xl, Yl = dg.tensor(X), dg.tensor(Y)

    def step(opt, sched, params):
        def closure():
            opt.zero_grad()
            loss = mlp_loss(params, Xl, Yl)
            loss.backward()
            return loss
        opt.step(closure)
        if sched is not None:
            sched.step()

    for _ in range(10):
        step(opt, sched, ps)
    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict())
    sched_arrays, sched_meta = optim.state_to_flat(sched.state_dict() if sched else None)
    assert not sched_arrays
    weights = {f"param{i}": p for i, p in enumerate(ps)}
    dg.save({**weights, **arrays}, tmp_path / "ckpt.safetensors",
            metadata={"optimizer": json.dumps(meta, allow_nan=False),
                      "scheduler": json.dumps(sched_meta, allow_nan=False)})

    loaded = dg.load(tmp_path / "ckpt.safetensors")
    meta_back = dg.io.load_metadata(tmp_path / "ckpt.safetensors")
    ps2 = [dg.tensor(loaded[f"param{i}"].data.copy(), requires_grad=True) for i in range(len(ps))]
    opt2 = getattr(optim, name)(ps2, **kwargs)
    sched2 = make_schedule(lr_scheduler, opt2, schedule)
    opt2.load_state_dict(optim.optimizer_state_from_flat(loaded, json.loads(meta_back["optimizer"])))
    if sched2 is not None:
        sched2.load_state_dict(optim.state_from_flat({}, json.loads(meta_back["scheduler"])))
    for _ in range(10):
        step(opt2, sched2, ps2)
    for a, b in zip(ref, ps2):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("name,kwargs,schedule", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), "multistep"),
    ("Adam", dict(lr=0.01, amsgrad=True), "cos"),
    ("AdamW", dict(lr=0.01), "step"),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), "exp"),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01), "lambda"),
])
def test_state_dict_round_trip_continues_exactly(name, kwargs, schedule, tmp_path):
    _resume_case(name, kwargs, schedule, tmp_path)


def test_state_dict_layout_is_torchs():
    torch = pytest.importorskip("torch")
    ps = dg_params()
    pt = [torch.tensor(a, requires_grad=True) for a in INIT]
    opt = optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}], lr=0.01)
    topt = torch.optim.Adam([{"params": pt[:2]}, {"params": pt[2:], "lr": 0.1}], lr=0.01)
    for o, params, lib in ((opt, ps, dg), (topt, pt, torch)):
        mlp_loss(params, lib.tensor(X), lib.tensor(Y)).backward()
        o.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert sorted(sd["state"]) == sorted(tsd["state"]) == [0, 1, 2, 3]
    assert set(sd["state"][0]) == set(tsd["state"][0])
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]] == [[0, 1], [2, 3]]
    common = set(sd["param_groups"][1]) & set(tsd["param_groups"][1])
    assert {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "params"} <= common
    np.testing.assert_allclose(sd["state"][2]["exp_avg"].data, tsd["state"][2]["exp_avg"].numpy(), rtol=1e-12)


def test_load_state_dict_checks_groups_and_casts():
    a = dg.tensor(np.ones(2), requires_grad=True)
    b = dg.tensor(np.ones(2, np.float32), requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    (a * a).sum().backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameters"):
        optim.SGD([a, b], lr=0.1).load_state_dict(sd)
    opt32 = optim.SGD([b], lr=0.5, momentum=0.1)
    opt32.load_state_dict(sd)
    assert opt32.state[b]["momentum_buffer"].dtype == np.float32
    assert opt32.param_groups[0]["lr"] == 0.1 and opt32.param_groups[0]["params"] == [b]
    sd["state"][0]["momentum_buffer"].data[:] = 7  # the loaded state is a copy
    assert np.all(opt32.state[b]["momentum_buffer"].data != 7)


def test_flat_state_encodes_every_kind_of_value():
    t = dg.tensor(np.arange(3.0))
    obj = {"state": {0: {"step": 3, "buf": t, "h": [t, None, 1.5]}, 2: {"a": np.array(2.0, np.float32)}},
           "x": (1, "s", float("inf"), float("-inf")), "c": {(1, 2): "tuple key", "k": True}, "n": np.float64(0.25)}
    arrays, meta = optim.state_to_flat(obj)
    text = json.dumps(meta, allow_nan=False)
    back = optim.state_from_flat(arrays, json.loads(text))
    assert set(arrays) == {"state.0.buf", "state.0.h.0", "state.2.a"}
    assert arrays["state.2.a"].shape == () and arrays["state.2.a"].dtype == np.float32
    assert back["x"] == (1, "s", float("inf"), float("-inf"))
    assert back["c"] == {(1, 2): "tuple key", "k": True} and back["n"] == 0.25
    assert isinstance(back["state"][0]["buf"], dg.Tensor) and isinstance(back["state"][2]["a"], np.ndarray)
    np.testing.assert_array_equal(back["state"][0]["h"][0].data, np.arange(3.0))
    assert back["state"][0]["h"][1:] == [None, 1.5] and back["state"][0]["step"] == 3
    with pytest.raises(TypeError, match="state.0.fn"):
        optim.state_to_flat({"state": {0: {"fn": print}}})
    with pytest.raises(KeyError, match="missing"):
        optim.state_from_flat({}, {"__tensor__": "missing"})


# -- LBFGS -----------------------------------------------------------------------------------------------------

LS_RNG = np.random.default_rng(5)
LS_A = LS_RNG.standard_normal((30, 6)) @ np.diag([1, 2, 5, 10, 0.5, 3.0])  # condition number ~ 400
LS_B = LS_RNG.standard_normal(30)
LS_W0 = LS_RNG.standard_normal(6)
LS_C0 = np.array(0.3)


def least_squares(lib, dtype=np.float64, steps=3, state_from=None, **kwargs):
    """Run LBFGS on ½‖A w + c − b‖² (two parameters: w and the 0-d c); return every evaluated point."""
    w = lib.tensor(LS_W0.astype(dtype), requires_grad=True)
    c = lib.tensor(LS_C0.astype(dtype), requires_grad=True)
    opt = lib.optim.LBFGS([w, c], **kwargs)
    At, bt = lib.tensor(LS_A.astype(dtype)), lib.tensor(LS_B.astype(dtype))
    points = []

    def closure():
        opt.zero_grad()
        r = (At * w).sum(dim=1) + c - bt
        loss = 0.5 * (r * r).sum()
        loss.backward()
        points.append(np.concatenate([np.array(w.detach().numpy()).ravel(), np.array(c.detach().numpy()).ravel()]))
        return loss

    for _ in range(steps):
        opt.step(closure)
    return np.array(points), opt, (w, c)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(history_size=3, max_iter=7),
    dict(lr=0.8, history_size=4, max_iter=5, line_search_fn="strong_wolfe"),
    dict(max_iter=4, max_eval=6, line_search_fn="strong_wolfe"),
])
def test_lbfgs_iterates_agree_with_torch(kwargs):
    torch = pytest.importorskip("torch")
    ours, opt, _ = least_squares(dg, **kwargs)
    theirs, topt, _ = least_squares(torch, **kwargs)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)
    state, tstate = opt.state[opt._params[0]], topt.state[topt._params[0]]
    assert (state["n_iter"], state["func_evals"]) == (tstate["n_iter"], tstate["func_evals"])


def test_lbfgs_converges_to_the_least_squares_solution():
    _, _, (w, c) = least_squares(dg, steps=3, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                                 tolerance_change=1e-15)
    Ab = np.hstack([LS_A, np.ones((30, 1))])
    sol = np.linalg.lstsq(Ab, LS_B, rcond=None)[0]
    np.testing.assert_allclose(np.append(w.data, c.data), sol, rtol=1e-7, atol=1e-9)


def test_lbfgs_state_dict_round_trip_continues_exactly():
    kwargs = dict(history_size=4, max_iter=3)
    ref, _, _ = least_squares(dg, steps=4, **kwargs)

    points, opt, (w, c) = least_squares(dg, steps=2, **kwargs)
    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict())
    meta = json.loads(json.dumps(meta, allow_nan=False))
    w2 = dg.tensor(w.data.copy(), requires_grad=True)
    c2 = dg.tensor(c.data.copy(), requires_grad=True)
    opt2 = optim.LBFGS([w2, c2], **kwargs)
    opt2.load_state_dict(optim.optimizer_state_from_flat(arrays, meta))
    At, bt = dg.tensor(LS_A), dg.tensor(LS_B)
    more = []

    def closure():
        opt2.zero_grad()
        r = (At * w2).sum(dim=1) + c2 - bt
        loss = 0.5 * (r * r).sum()
        loss.backward()
        more.append(np.append(w2.data, c2.data))
        return loss

    for _ in range(2):
        opt2.step(closure)
    np.testing.assert_array_equal(np.vstack([points, more]), ref)


def test_lbfgs_float32_and_errors():
    _, opt, (w, c) = least_squares(dg, dtype=np.float32, steps=2)
    assert w.dtype == np.float32 and c.dtype == np.float32
    state = opt.state[w]
    assert state["d"].dtype == np.float32 and all(s.dtype == np.float32 for s in state["old_dirs"])
    with pytest.raises(RuntimeError, match="closure"):
        opt.step(None)
    a, b = dg.tensor(np.ones(2), requires_grad=True), dg.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])


# -- with the rest of the library ---------------------------------------------------------------------------------
def test_captured_training_step_replays_optimizer_and_hooks_exactly():
    """deltagrad.capture repeats optimizer.zero_grad/step (and so the step hooks) at every replay."""
    def run(captured):
        ps = dg_params()
        opt = optim.Adam(ps, lr=0.01, amsgrad=True)

        def halve_grads(o, args, kwargs):
            for p in ps:
                p.grad.data *= 0.5

        opt.register_step_pre_hook(halve_grads)

        def step(x, y):
            opt.zero_grad()
            loss = mlp_loss(ps, x, y)
            loss.backward()
            opt.step()
            return loss

        fn = dg.capture(step) if captured else step
        losses = [float(fn(dg.tensor(X + 0.01 * k), dg.tensor(Y))) for k in range(6)]
        return losses, [p.data.copy() for p in ps]

    (l1, p1), (l2, p2) = run(False), run(True)
    assert l1 == l2
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


def test_with_nn_modules(tmp_path):
    if not hasattr(dg.nn, "Linear"):
        pytest.skip("nn.Linear is not available yet")
    dg.manual_seed(0)
    model = dg.nn.Linear(3, 2).double()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    x, y = dg.tensor(X), dg.tensor(Y)
    before = model.weight.data.copy()
    for _ in range(3):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        sched.step()
    assert not np.allclose(model.weight.data, before)
    assert len(opt.state) == 2 and opt.param_groups[0]["lr"] == pytest.approx(0.01)


def test_subclass_calling_super_step_runs_hooks_once():
    class ClippedSGD(optim.SGD):
        def step(self, closure=None):
            for g in self.param_groups:
                for p in g["params"]:
                    np.clip(p.grad.data, -1, 1, out=p.grad.data)
            return super().step(closure)

    w = dg.tensor(np.array([3.0, 0.1]), requires_grad=True)
    opt = ClippedSGD([w], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    (w * w).sum().backward()
    opt.step()
    assert calls == ["pre", "post"]
    np.testing.assert_allclose(w.data, [3.0 - 0.1, 0.1 - 0.1 * 0.2])



def test_sgd_group_mixing_dtypes_updates_each_in_its_own_dtype():
    rng = np.random.default_rng(3)
    vals = [rng.standard_normal(4).astype(dt) for dt in (np.float32, np.float64, np.float32)]
    grads = [rng.standard_normal(4).astype(dt) for dt in (np.float64, np.float64, np.float32)]
    params = [dg.tensor(v.copy(), requires_grad=True) for v in vals]
    opt = dg.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    want, bufs = [v.copy() for v in vals], [None] * 3
    for _ in range(3):
        for p, g in zip(params, grads):
            p.grad = dg.tensor(g)
        opt.step()
        for i, (v, g) in enumerate(zip(want, grads)):  # the update written out, in the parameter's dtype
            g = g.astype(v.dtype)
            bufs[i] = g.copy() if bufs[i] is None else bufs[i] * 0.9 + g
            v -= 0.1 * (g + 0.9 * bufs[i])
    for p, v, w in zip(params, vals, want):
        assert p.dtype == v.dtype and opt.state[p]["momentum_buffer"].dtype == v.dtype
        np.testing.assert_allclose(p.data, w, rtol=1e-6 if v.dtype == np.float32 else 1e-14)
