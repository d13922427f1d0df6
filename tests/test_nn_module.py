"""Module machinery: registration, iteration, modes, state dicts, conversion, hooks, containers, repr.

These use small modules written with elementwise ops (y = tanh(w ∘ x + b)), so they test the machinery
alone; the layers have their own file.
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.nn import Parameter


class Scale(nn.Module):
    """y = tanh(w ∘ x + b): a per-feature layer, enough to exercise the machinery."""

    def __init__(self, n, dtype="float64"):
        super().__init__()
        self.n = n
        self.weight = Parameter(dg.tensor(np.linspace(0.5, 1.5, n), dtype=dtype))
        self.bias = Parameter(dg.tensor(np.linspace(-0.2, 0.3, n), dtype=dtype))
        self.register_buffer("steps", dg.tensor(np.array(0)))
        self.register_buffer("scratch", dg.zeros(n, dtype=dtype), persistent=False)

    def forward(self, x):
        return dg.tanh(x * self.weight + self.bias)

    def extra_repr(self):
        return f"n={self.n}"


class Mix(nn.Module):
    """Two inputs, one output: y = a ∘ b + a."""

    def forward(self, a, b):
        return a * b + a


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(Scale(3), Scale(3))
        self.head = Scale(3)

    def forward(self, x):
        return self.head(self.body(x))


def x64(*shape, seed=0):
    return dg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


# ---- Parameter ------------------------------------------------------------------------------------------------


def test_parameter_is_a_leaf_tensor_requiring_grad():
    data = dg.zeros(2, 3)
    p = Parameter(data)
    assert isinstance(p, dg.Tensor) and p.requires_grad and p.is_leaf
    assert p.data is data.data  # shares memory, as torch.nn.Parameter does
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not Parameter(dg.zeros(2), requires_grad=False).requires_grad
    assert Parameter().shape == (0,) and Parameter().dtype == np.float32
    y = (p * 2 + 1).sum()
    y.backward()
    assert type(p * 2) is dg.Tensor
    np.testing.assert_array_equal(p.grad.data, np.full((2, 3), 2.0))
    q = copy.deepcopy(p)
    assert isinstance(q, Parameter) and q.data is not p.data and q.requires_grad


# ---- registration ---------------------------------------------------------------------------------------------


def test_registration_by_assignment():
    m = Scale(3)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in m.named_buffers()] == ["steps", "scratch"]
    assert m.weight is m._parameters["weight"]
    w = Parameter(dg.ones(3, dtype="float64"))
    m.weight = w  # re-assigning keeps the registration order
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"] and m.weight is w
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = dg.ones(3)
    m.bias = None
    assert m.bias is None and [n for n, _ in m.named_parameters()] == ["weight"]
    m.steps = dg.tensor(np.array(5))
    assert int(m.steps) == 5
    with pytest.raises(TypeError, match="as buffer 'steps'"):
        m.steps = 3
    m.extra = Parameter(dg.zeros(1))
    assert [n for n, _ in m.named_parameters()] == ["weight", "extra"]
    del m.extra
    assert [n for n, _ in m.named_parameters()] == ["weight"] and not hasattr(m, "extra")
    m.head = Scale(1)
    m.head = None  # a declared child that is absent
    assert m.head is None and list(m.children()) == []
    m.head = Parameter(dg.zeros(1))  # the name moves from the children to the parameters
    assert isinstance(m.head, Parameter) and "head" not in m._modules
    with pytest.raises(AttributeError, match="'Scale' object has no attribute 'nothing'"):
        _ = m.nothing


def test_register_errors():
    m = Scale(2)
    with pytest.raises(KeyError, match="contain '.'"):
        m.register_parameter("a.b", Parameter(dg.zeros(1)))
    with pytest.raises(TypeError, match="parameter 'c'"):
        m.register_parameter("c", dg.zeros(1))
    with pytest.raises(KeyError, match="attribute 'n' already exists"):
        m.register_buffer("n", dg.zeros(1))
    x = x64(2)
    p = Parameter(dg.zeros(2, dtype="float64"))
    p._node = (x * 2)._node  # simulate a non-leaf parameter
    with pytest.raises(ValueError, match="non-leaf"):
        m.register_parameter("e", p)

    class Early(nn.Module):
        def __init__(self):
            self.w = Parameter(dg.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match='Module \\[Module\\] is missing the required "forward"'):
        nn.Module()(1)


def test_iteration_names_and_sharing():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "head"]
    assert [n for n, _ in net.named_children()] == ["body", "head"]
    assert list(net.children()) == [net.body, net.head]
    assert len(list(net.modules())) == 5
    assert [n for n, _ in net.named_buffers()] == ["body.0.steps", "body.0.scratch", "body.1.steps",
                                                    "body.1.scratch", "head.steps", "head.scratch"]
    assert len(list(net.parameters(recurse=False))) == 0
    assert len(list(net.head.parameters())) == 2
    assert net.get_submodule("body.1") is net.body[1]
    assert net.get_parameter("body.1.bias") is net.body[1].bias
    with pytest.raises(AttributeError, match="no submodule `x`"):
        net.get_submodule("body.x")
    # a shared module: parameters once, state_dict under both names (as PyTorch)
    shared = Scale(2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "0.steps", "1.weight", "1.bias", "1.steps"]
    assert [n for n, _ in seq.named_modules(remove_duplicate=False)] == ["", "0", "1"]


def test_train_eval_requires_grad_apply():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="bool"):
        net.train("no")
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Scale", "Scale", "Sequential", "Scale", "Net"]


def test_zero_grad():
    net = Net()
    net(x64(4, 3)).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and np.any(g.data != 0) for g in grads)
    net.zero_grad(set_to_none=False)
    assert all(p.grad is g and np.all(g.data == 0) for p, g in zip(net.parameters(), grads))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# ---- state dict ---------------------------------------------------------------------------------------------------


def test_state_dict_detached_sharing_memory():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["body.0.weight", "body.0.bias", "body.0.steps", "body.1.weight", "body.1.bias",
                        "body.1.steps", "head.weight", "head.bias", "head.steps"]  # non-persistent left out
    assert all(not t.requires_grad and type(t) is dg.Tensor for t in sd.values())
    with dg.no_grad():
        net.head.weight.mul_(2)
    np.testing.assert_array_equal(sd["head.weight"].data, net.head.weight.data)
    assert net.state_dict(keep_vars=True)["head.weight"] is net.head.weight


def test_load_state_dict_roundtrip_and_dtype():
    src, dst = Net(), Net().float()
    with dg.no_grad():
        for p in src.parameters():
            p.mul_(-3.0)
    src.head.steps.fill_(7)
    w = dst.head.weight
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert dst.head.weight is w and w.dtype == np.float32  # copied in place, dtype kept
    np.testing.assert_allclose(w.data, src.head.weight.data, rtol=1e-6)
    assert int(dst.head.steps) == 7
    # NumPy arrays are accepted too (e.g. from a safetensors file or torch's .numpy())
    dst.load_state_dict({k: v.data * 0 + 1 for k, v in src.state_dict().items()})
    assert np.all(dst.head.bias.data == 1)


def test_load_state_dict_errors_name_the_key():
    net = Net()
    sd = net.state_dict()
    before = {k: v.data.copy() for k, v in sd.items()}
    bad = dict(sd)
    del bad["body.1.bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "body.1.bias"'):
        net.load_state_dict(bad)
    bad = dict(sd, **{"head.extra": dg.zeros(1)})
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "head.extra"'):
        net.load_state_dict(bad)
    bad = dict(sd, **{"head.weight": dg.zeros(4)})
    with pytest.raises(RuntimeError, match="size mismatch for head.weight: copying a param with shape \\(4,\\) "
                                           "from checkpoint, the shape in current model is \\(3,\\)"):
        net.load_state_dict({k: (v * 0 if k != "head.weight" else v) for k, v in bad.items()})
    for k, v in net.state_dict().items():  # a failed load changed nothing
        np.testing.assert_array_equal(v.data, before[k])
    bad = dict(sd, **{"head.bias": "zeros"})
    with pytest.raises(RuntimeError, match='parameter named "head.bias"'):
        net.load_state_dict(bad)
    partial = {"head.weight": dg.zeros(3, dtype="float64"), "other": dg.zeros(1)}
    res = net.load_state_dict(partial, strict=False)
    assert "head.bias" in res.missing_keys and res.unexpected_keys == ["other"]
    assert np.all(net.head.weight.data == 0)
    with pytest.raises(RuntimeError, match="size mismatch for head.weight"):  # even when not strict
        net.load_state_dict({"head.weight": dg.zeros(5)}, strict=False)


def test_float_double_keep_identity():
    net = Net()
    net(x64(2, 3)).sum().backward()
    params = list(net.parameters())
    assert net.float() is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32 for p in params)
    assert net.head.scratch.dtype == np.float32 and net.head.steps.dtype == np.int64  # ints untouched
    out = net(dg.randn(2, 3))
    assert out.dtype == np.float32
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters()) and net.head.steps.dtype == np.int64
    assert net.to("cpu") is net and net.to(dg.float32).head.weight.dtype == np.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(dg.int64)
    with pytest.raises(ValueError, match="CPU"):
        net.to(device="cuda")


def test_deepcopy():
    net = Net()
    twin = copy.deepcopy(net)
    assert all(a is not b and np.array_equal(a.data, b.data) for a, b in zip(net.parameters(), twin.parameters()))
    assert isinstance(twin.head.weight, Parameter)
    x = x64(2, 3)
    np.testing.assert_array_equal(net(x).data, twin(x).data)


# ---- forward hooks ---------------------------------------------------------------------------------------------


def test_forward_hooks_and_handles():
    m = Scale(3)
    x = x64(2, 3)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append((args[0].data.copy(), out.data.copy())))
    out = m(x)
    np.testing.assert_allclose(out.data, np.tanh(np.broadcast_to(m.bias.data, (2, 3))))
    assert np.all(calls[0][0] == 0)
    h1.remove()
    h3 = m.register_forward_hook(lambda mod, args, out: out * 10)
    out = m(x)
    np.testing.assert_allclose(out.data, 10 * np.tanh(x.data * m.weight.data + m.bias.data))
    h2.remove()
    h3.remove()
    assert not m._forward_hooks and not m._forward_pre_hooks
    order = []
    m.register_forward_hook(lambda *a: order.append("a"))
    m.register_forward_hook(lambda *a: order.append("b"), prepend=True)
    m.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] + 1,), kwargs), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(sorted(kwargs)), with_kwargs=True)
    m(x)
    assert order == ["b", "a", []]
    with m.register_forward_hook(lambda *a: order.append("ctx")):
        m(x)
    m(x)
    assert order.count("ctx") == 1


# ---- backward hooks ----------------------------------------------------------------------------------------------


def torch_scale(torch, m):
    class TScale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(m.weight.data.copy()))
            self.bias = torch.nn.Parameter(torch.tensor(m.bias.data.copy()))

        def forward(self, x):
            return torch.tanh(x * self.weight + self.bias)

    return TScale()


def test_full_backward_hook_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(Scale(3), Scale(3), Scale(3))
    with dg.no_grad():
        ours[1].weight.mul_(-2.0)
    theirs = torch.nn.Sequential(*[torch_scale(torch, m) for m in ours])
    rec_o, rec_t = {}, {}
    for i in range(3):
        ours[i].register_full_backward_hook(lambda mod, gi, go, i=i: rec_o.__setitem__(i, (gi, go)))
        theirs[i].register_full_backward_hook(lambda mod, gi, go, i=i: rec_t.__setitem__(i, (gi, go)))
    x = x64(4, 3)
    xt = torch.tensor(x.data.copy(), requires_grad=True)
    v = np.random.default_rng(5).standard_normal((4, 3))
    ours(x).backward(dg.tensor(v))
    theirs(xt).backward(torch.tensor(v))
    for i in range(3):
        (gi_o, go_o), (gi_t, go_t) = rec_o[i], rec_t[i]
        assert len(gi_o) == len(gi_t) == 1 and len(go_o) == len(go_t) == 1
        np.testing.assert_allclose(go_o[0].data, go_t[0].numpy(), rtol=1e-12)
        np.testing.assert_allclose(gi_o[0].data, gi_t[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-12)


def test_backward_hook_input_without_grad_and_replacement():
    torch = pytest.importorskip("torch")
    m = Scale(3)
    t = torch_scale(torch, m)
    seen_o, seen_t = [], []
    m.register_full_backward_hook(lambda mod, gi, go: seen_o.append((gi, go)))
    t.register_full_backward_hook(lambda mod, gi, go: seen_t.append((gi, go)))
    x = dg.tensor(np.random.default_rng(1).standard_normal((2, 3)))  # no grad needed at the input
    m(x).sum().backward()
    with warnings.catch_warnings():  # torch notes that the hook fires from the output side here
        warnings.simplefilter("ignore")
        t(torch.tensor(x.data)).sum().backward()
    assert seen_o[0][0] == (None,) and seen_t[0][0] == (None,)
    np.testing.assert_allclose(seen_o[0][1][0].data, seen_t[0][1][0].numpy())
    # a returned grad_input replaces dL/dx
    m2 = Scale(3)
    m2.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0 + 1,))
    x = x64(2, 3)
    (m2(x) * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    # a backward pre-hook sees and may replace dL/d(output)
    m3 = Scale(3)
    m3.register_full_backward_pre_hook(lambda mod, go: (go[0] * 0,))
    x = x64(2, 3)
    (m3(x) * 5).sum().backward()
    assert np.all(x.grad.data == 0) and np.all(m3.weight.grad.data == 0)


def test_backward_hook_two_inputs_matches_torch():
    torch = pytest.importorskip("torch")

    class TMix(torch.nn.Module):
        def forward(self, a, b):
            return a * b + a

    ours, theirs = Mix(), TMix()
    rec = {}
    ours.register_full_backward_hook(lambda m, gi, go: rec.__setitem__("o", (gi, go)))
    theirs.register_full_backward_hook(lambda m, gi, go: rec.__setitem__("t", (gi, go)))
    a, b = x64(2, 3, seed=1), dg.tensor(np.random.default_rng(2).standard_normal((3,)), requires_grad=True)
    at, bt = (torch.tensor(t.data.copy(), requires_grad=True) for t in (a, b))
    ours(dg.tanh(a), b).sum().backward()
    theirs(torch.tanh(at), bt).sum().backward()
    for k in range(2):
        np.testing.assert_allclose(rec["o"][0][k].data, rec["t"][0][k].numpy(), rtol=1e-12)
    np.testing.assert_allclose(rec["o"][1][0].data, rec["t"][1][0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad.data, at.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, bt.grad.numpy(), rtol=1e-12)
    # replacing one of two inputs' gradients
    m = Mix()
    m.register_full_backward_hook(lambda mod, gi, go: (None, gi[1] * 0))
    a, b = x64(3, seed=3), x64(3, seed=4)
    m(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.data, b.data + 1)
    assert np.all(b.grad.data == 0)


def test_backward_hooks_skip_under_no_grad_and_allow_double_backward():
    m = Scale(3)
    calls = []
    m.register_full_backward_hook(lambda mod, gi, go: calls.append(1))
    with dg.no_grad():
        m(x64(2, 3))
    x = x64(2, 3)
    (g,) = dg.autograd.grad(m(x).sum(), [x], create_graph=True)
    (gg,) = dg.autograd.grad(g.sum(), [x])
    assert len(calls) == 1
    # d/dx Σ w(1 − tanh²(wx + b)) = Σ −2 w² tanh(z)(1 − tanh²(z))
    y = np.tanh(x.data * m.weight.data + m.bias.data)
    np.testing.assert_allclose(gg.data, -2 * m.weight.data**2 * y * (1 - y**2), rtol=1e-12)


# ---- containers and repr -------------------------------------------------------------------------------------------


def test_sequential_container():
    a, b, c = Scale(2), Scale(2), Scale(2)
    s = nn.Sequential(a, b)
    assert len(s) == 2 and s[0] is a and s[-1] is b and list(s) == [a, b]
    s.append(c)
    assert s[2] is c and isinstance(s[1:], nn.Sequential) and list(s[1:]) == [b, c]
    assert [n for n, _ in s[1:].named_children()] == ["1", "2"]
    del s[0]
    assert list(s._modules) == ["0", "1"] and s[0] is b
    assert getattr(s, "0") is b and not hasattr(s, "2")  # attribute access follows the renumbering
    s.insert(0, a)
    assert list(s) == [a, b, c]
    s.insert(-1, Scale(2))
    assert list(s)[-1] is c and len(s) == 4
    s[1] = c
    assert s[1] is c
    with pytest.raises(IndexError, match="out of range"):
        s[9]
    named = nn.Sequential(OrderedDict([("first", a), ("second", b)]))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias", "second.weight",
                                                        "second.bias"]
    x = x64(3, 2)
    np.testing.assert_array_equal(named(x).data, b(a(x)).data)
    s.extend([Scale(2)])
    assert len(s) == 5


def test_module_list_and_dict():
    ml = nn.ModuleList([Scale(2) for _ in range(3)])
    assert len(ml) == 3 and [n for n, _ in ml.named_parameters()][:2] == ["0.weight", "0.bias"]
    ml.append(Scale(2))
    ml += [Scale(2)]
    assert len(ml) == 5 and isinstance(ml[1:3], nn.ModuleList)
    del ml[1]
    assert list(ml._modules) == ["0", "1", "2", "3"]
    ml.insert(1, Scale(4))
    assert ml[1].n == 4 and len(ml) == 5
    with pytest.raises(TypeError, match="iterable of modules"):
        ml.extend(Scale(2))
    md = nn.ModuleDict({"enc": Scale(2), "dec": Scale(3)})
    assert list(md) == ["enc", "dec"] and "dec" in md and md["dec"].n == 3
    md["mid"] = Scale(1)
    assert list(md.keys()) == ["enc", "dec", "mid"]
    assert [n for n, _ in md.named_parameters()][-1] == "mid.bias"
    assert md.pop("enc").n == 2 and len(md) == 2 and not hasattr(md, "enc")
    with pytest.raises(KeyError):
        del md["enc"]
    md.update([("z", Scale(1))])
    assert list(md) == ["dec", "mid", "z"]
    with pytest.raises(ValueError, match="element #0"):
        md.update([Scale(1)])


def test_parameter_list_and_dict_register_like_torch():
    torch = pytest.importorskip("torch")

    def holder_of(lib, make):
        holder = lib.Module()
        holder.ws = lib.ParameterList([make(2, 3), make(3)])
        holder.ws.append(make(1))
        holder.named = lib.ParameterDict({"gamma": make(2)})
        holder.named["beta"] = make(2)
        return holder

    def ours(*shape):
        return dg.tensor(np.ones(shape))          # plain tensors become Parameters, as in torch

    def theirs(*shape):
        return torch.ones(shape, dtype=torch.float64)

    holder, t_holder = holder_of(nn, ours), holder_of(torch.nn, theirs)
    assert list(holder.state_dict()) == list(t_holder.state_dict())
    assert [n for n, _ in holder.named_parameters()] == [n for n, _ in t_holder.named_parameters()]
    assert all(isinstance(p, Parameter) and p.requires_grad for p in holder.parameters())
    opt = dg.optim.SGD(holder.parameters(), lr=0.5)
    loss = sum((p * p).sum() for p in holder.ws) + holder.named["gamma"].sum()
    loss.backward()
    opt.step()
    np.testing.assert_allclose(holder.ws[0].data, np.zeros((2, 3)))           # 1 − 0.5 · 2
    np.testing.assert_allclose(holder.named["gamma"].data, [0.5, 0.5])
    copy = holder_of(nn, ours)
    copy.load_state_dict(holder.state_dict())
    np.testing.assert_array_equal(copy.named["gamma"].data, [0.5, 0.5])


def test_parameter_list_and_dict_behave_as_containers():
    pl = nn.ParameterList([Parameter(dg.zeros(2)), Parameter(dg.ones(3))])
    assert len(pl) == 2 and pl[-1].shape == (3,) and isinstance(pl[:1], nn.ParameterList)
    shared = Parameter(dg.zeros(4))
    pl[0] = shared
    assert pl[0] is shared and [p.shape for p in pl] == [(4,), (3,)]
    pl += [dg.zeros(1)]
    assert len(pl) == 3 and isinstance(pl[2], Parameter)
    with pytest.raises(IndexError, match="out of range"):
        pl[3]
    with pytest.raises(TypeError, match="holds Parameters"):
        pl.append("w")
    with pytest.raises(TypeError, match="iterable of parameters"):
        pl.extend(dg.zeros(3))
    pd = nn.ParameterDict([("a", dg.zeros(1)), ("b", dg.zeros(2))])
    assert list(pd) == ["a", "b"] and "b" in pd and pd.get("c") is None and len(pd) == 2
    assert pd.pop("a").shape == (1,) and list(pd.keys()) == ["b"] and not hasattr(pd, "a")
    with pytest.raises(KeyError):
        del pd["a"]
    with pytest.raises(KeyError, match="can't be empty or contain"):
        pd["x.y"] = dg.zeros(1)
    with pytest.raises(ValueError, match="element #0"):
        pd.update([dg.zeros(1)])
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == []


def test_repr():
    net = Net()
    assert repr(Scale(3)) == "Scale(n=3)"
    assert repr(net) == (
        "Net(\n"
        "  (body): Sequential(\n"
        "    (0): Scale(n=3)\n"
        "    (1): Scale(n=3)\n"
        "  )\n"
        "  (head): Scale(n=3)\n"
        ")"
    )
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(nn.ModuleList()) == "ModuleList()"
    assert repr(nn.ModuleList([Scale(2), Scale(2), Scale(3), Scale(2)])) == (
        "ModuleList(\n  (0-1): 2 x Scale(n=2)\n  (2): Scale(n=3)\n  (3): Scale(n=2)\n)")
    nested = nn.ModuleList([nn.Sequential(Scale(1))] * 2)
    assert repr(nested) == "ModuleList(\n  (0-1): 2 x Sequential(\n    (0): Scale(n=1)\n  )\n)"


def test_docstring_examples_run():
    """The ``>>>`` examples in the nn docstrings are real: run them as doctests."""
    import doctest
    import importlib

    for name in ["module", "container", "linear", "conv", "pooling", "activation", "normalization", "dropout",
                 "flatten", "loss", "init", "parameter"]:
        mod = importlib.import_module(f"deltagrad.nn.{name}")
        globs = {**vars(nn), **vars(mod), "deltagrad": dg, "tanh": dg.tanh}
        result = doctest.testmod(mod, extraglobs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, f"deltagrad.nn.{name}: {result.failed} docstring example(s) failed"
