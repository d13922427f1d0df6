"""The layers: gradcheck in float64 (input and parameters), and agreement with PyTorch 2.13 given the same
weights (copied by state-dict name): outputs, input gradients, parameter gradients and BatchNorm running
statistics to 1e-7 relative; state-dict keys and reprs identical for the same architecture."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.testing import gradcheck

RTOL, ATOL = 1e-7, 1e-10


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def copy_weights(ours, theirs):
    """Load torch's state dict into ours by name: the test that the keys and layouts agree."""
    sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(sd), "state_dict keys differ from torch's"
    ours.load_state_dict({k: v.detach().numpy() for k, v in sd.items()})


def compare(ours, theirs, x, seed=1, check_grads=True):
    """Forward, then backward of a random vector: output, input grad and parameter grads agree."""
    torch = pytest.importorskip("torch")
    xo = dg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg="forward")
    if not check_grads:
        return yo, yt
    v = randn(*yo.shape, seed=seed)
    yo.backward(dg.tensor(v))
    yt.backward(torch.tensor(v))
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg="input grad")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, theirs_params[name].grad.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"grad of {name}")
    return yo, yt


def check_gradients(module, x):
    """gradcheck of module(x) with respect to x and every parameter (float64)."""
    xo = dg.tensor(x, requires_grad=True)
    params = list(module.parameters())
    assert gradcheck(lambda inp, *ps: module(inp), [xo, *params])


# ---- each layer against torch, with the same weights ----------------------------------------------------------

# (ours, torch, input shape); built lazily so that the torch module is only touched when torch is present
LAYERS = {
    "linear": (lambda: nn.Linear(5, 3), lambda t: t.nn.Linear(5, 3), (4, 5)),
    "linear_nobias_3d": (lambda: nn.Linear(4, 2, bias=False), lambda t: t.nn.Linear(4, 2, bias=False), (2, 3, 4)),
    "conv1d": (lambda: nn.Conv1d(2, 3, 3), lambda t: t.nn.Conv1d(2, 3, 3), (2, 2, 7)),
    "conv1d_args": (lambda: nn.Conv1d(2, 2, 2, stride=2, padding=1, dilation=2, bias=False),
                    lambda t: t.nn.Conv1d(2, 2, 2, stride=2, padding=1, dilation=2, bias=False), (2, 2, 9)),
    "conv2d": (lambda: nn.Conv2d(2, 3, 3), lambda t: t.nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    "conv2d_rect": (lambda: nn.Conv2d(2, 3, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                    lambda t: t.nn.Conv2d(2, 3, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                    (2, 2, 5, 6)),
    "conv2d_groups": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
                      lambda t: t.nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 5, 5)),
    "conv1d_reflect": (lambda: nn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect"),
                       lambda t: t.nn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect"), (2, 2, 7)),
    "conv2d_circular": (lambda: nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="circular"),
                        lambda t: t.nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="circular"), (1, 2, 5, 6)),
    "conv2d_replicate_same": (lambda: nn.Conv2d(2, 2, (2, 3), padding="same", padding_mode="replicate"),
                              lambda t: t.nn.Conv2d(2, 2, (2, 3), padding="same", padding_mode="replicate"),
                              (1, 2, 5, 6)),
    "conv2d_unbatched": (lambda: nn.Conv2d(1, 2, 2), lambda t: t.nn.Conv2d(1, 2, 2), (1, 4, 4)),
    "maxpool1d": (lambda: nn.MaxPool1d(2), lambda t: t.nn.MaxPool1d(2), (2, 3, 8)),
    "maxpool1d_args": (lambda: nn.MaxPool1d(3, stride=2, padding=1),
                       lambda t: t.nn.MaxPool1d(3, stride=2, padding=1), (2, 2, 9)),
    "maxpool2d": (lambda: nn.MaxPool2d(2), lambda t: t.nn.MaxPool2d(2), (2, 3, 6, 6)),
    "maxpool2d_args": (lambda: nn.MaxPool2d((3, 2), stride=(2, 1), padding=1),
                       lambda t: t.nn.MaxPool2d((3, 2), stride=(2, 1), padding=1), (2, 2, 7, 5)),
    "avgpool1d": (lambda: nn.AvgPool1d(3, stride=2), lambda t: t.nn.AvgPool1d(3, stride=2), (2, 3, 9)),
    "avgpool2d": (lambda: nn.AvgPool2d(2), lambda t: t.nn.AvgPool2d(2), (2, 3, 6, 6)),
    "avgpool2d_pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1),
                      lambda t: t.nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    "avgpool2d_exclude_pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                              lambda t: t.nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                       count_include_pad=False), (2, 2, 6, 6)),
    "avgpool2d_divisor": (lambda: nn.AvgPool2d(2, divisor_override=3), lambda t: t.nn.AvgPool2d(2, divisor_override=3),
                          (1, 2, 4, 4)),
    "flatten": (lambda: nn.Flatten(), lambda t: t.nn.Flatten(), (2, 3, 4, 5)),
    "flatten_dims": (lambda: nn.Flatten(0, 2), lambda t: t.nn.Flatten(0, 2), (2, 3, 4, 5)),
    "unflatten": (lambda: nn.Unflatten(1, (3, 4)), lambda t: t.nn.Unflatten(1, (3, 4)), (2, 12)),
    "identity": (lambda: nn.Identity(3, k=1), lambda t: t.nn.Identity(3, k=1), (2, 3)),
    "relu": (lambda: nn.ReLU(), lambda t: t.nn.ReLU(), (3, 4)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), lambda t: t.nn.LeakyReLU(0.2), (3, 4)),
    "tanh": (lambda: nn.Tanh(), lambda t: t.nn.Tanh(), (3, 4)),
    "sigmoid": (lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid(), (3, 4)),
    "softmax": (lambda: nn.Softmax(dim=1), lambda t: t.nn.Softmax(dim=1), (3, 4)),
    "softmax_0": (lambda: nn.Softmax(dim=0), lambda t: t.nn.Softmax(dim=0), (3, 4)),
    "log_softmax": (lambda: nn.LogSoftmax(dim=-1), lambda t: t.nn.LogSoftmax(dim=-1), (2, 3, 4)),
    "batchnorm1d": (lambda: nn.BatchNorm1d(3), lambda t: t.nn.BatchNorm1d(3), (6, 3)),
    "batchnorm1d_3d": (lambda: nn.BatchNorm1d(3), lambda t: t.nn.BatchNorm1d(3), (4, 3, 5)),
    "batchnorm1d_nobias": (lambda: nn.BatchNorm1d(3, bias=False), lambda t: t.nn.BatchNorm1d(3, bias=False),
                           (5, 3)),
    "batchnorm2d": (lambda: nn.BatchNorm2d(2), lambda t: t.nn.BatchNorm2d(2), (3, 2, 3, 4)),
    "batchnorm3d": (lambda: nn.BatchNorm3d(2), lambda t: t.nn.BatchNorm3d(2), (2, 2, 3, 2, 3)),
    "conv3d": (lambda: nn.Conv3d(2, 3, 2), lambda t: t.nn.Conv3d(2, 3, 2), (2, 2, 3, 4, 4)),
    "conv3d_args": (lambda: nn.Conv3d(4, 2, (1, 2, 3), stride=(1, 2, 1), padding=(0, 1, 1), dilation=(2, 1, 1),
                                      groups=2, bias=False),
                    lambda t: t.nn.Conv3d(4, 2, (1, 2, 3), stride=(1, 2, 1), padding=(0, 1, 1), dilation=(2, 1, 1),
                                          groups=2, bias=False), (1, 4, 3, 4, 5)),
    "conv3d_reflect_same": (lambda: nn.Conv3d(1, 2, 3, padding="same", padding_mode="reflect"),
                            lambda t: t.nn.Conv3d(1, 2, 3, padding="same", padding_mode="reflect"), (1, 1, 3, 4, 4)),
    "maxpool3d": (lambda: nn.MaxPool3d(2), lambda t: t.nn.MaxPool3d(2), (1, 2, 4, 4, 6)),
    "maxpool3d_args": (lambda: nn.MaxPool3d((2, 3, 2), stride=(1, 2, 2), padding=1, ceil_mode=True),
                       lambda t: t.nn.MaxPool3d((2, 3, 2), stride=(1, 2, 2), padding=1, ceil_mode=True),
                       (1, 2, 3, 5, 4)),
    "avgpool3d": (lambda: nn.AvgPool3d(2), lambda t: t.nn.AvgPool3d(2), (1, 2, 4, 4, 6)),
    "avgpool3d_pad": (lambda: nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False),
                      lambda t: t.nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 5, 5)),
}


def build(name, torch):
    make_ours, make_theirs, shape = LAYERS[name]
    ours, theirs = make_ours().double(), make_theirs(torch).double()
    # perturb torch's parameters so that BatchNorm's γ = 1, β = 0 defaults do not hide mistakes
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.tensor(randn(*p.shape, seed=9)) * 0.3)
    copy_weights(ours, theirs)
    return ours, theirs, shape


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs, shape = build(name, torch)
    assert repr(ours) == repr(theirs)
    compare(ours, theirs, randn(*shape, seed=2))
    for key, value in theirs.state_dict().items():  # buffers (BatchNorm running statistics) too
        np.testing.assert_allclose(ours.state_dict()[key].data, value.numpy(), rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradcheck(name):
    make_ours, _, shape = LAYERS[name]
    module = make_ours().double()
    x = randn(*shape, seed=3)
    if "maxpool" in name:  # distinct values: no ties at the kinks of max
        x = x + np.arange(x.size).reshape(shape) * 1e-2
    check_gradients(module, x)


def test_default_dtype_and_dtype_argument():
    for m in (nn.Linear(3, 2), nn.Conv1d(1, 2, 3), nn.Conv2d(1, 2, 3), nn.BatchNorm1d(3), nn.BatchNorm2d(2)):
        assert all(t.dtype == np.float32 for t in m.parameters())
        assert all(t.dtype == np.float32 for n, t in m.named_buffers() if n != "num_batches_tracked")
    for m in (nn.Linear(3, 2, dtype=dg.float64), nn.Conv2d(1, 2, 3, dtype="float64"),
              nn.BatchNorm2d(2, dtype=np.float64)):
        assert all(t.dtype == np.float64 for t in m.parameters())
    assert nn.BatchNorm1d(2).num_batches_tracked.dtype == np.int64
    fc = nn.Linear(3, 2)
    assert fc(dg.randn(4, 3)).dtype == np.float32


def test_default_initialization_bounds():
    dg.manual_seed(0)
    fc = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (fc.weight, fc.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.95 * bound
    # kaiming_uniform_(a=√5): Var = bound² / 3
    assert abs(fc.weight.data.var() / (bound**2 / 3) - 1) < 0.02
    conv = nn.Conv2d(6, 16, 5)
    bound = 1 / math.sqrt(6 * 25)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert conv.weight.shape == (16, 6, 5, 5) and nn.Conv1d(2, 4, 3).weight.shape == (4, 2, 3)
    bn = nn.BatchNorm2d(3)
    assert np.all(bn.weight.data == 1) and np.all(bn.bias.data == 0)
    assert np.all(bn.running_mean.data == 0) and np.all(bn.running_var.data == 1)
    dg.manual_seed(5)
    a = nn.Linear(3, 3).weight.data.copy()
    dg.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Linear(3, 3).weight.data)


# ---- BatchNorm: running statistics, train then eval ---------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
                                    {"track_running_stats": False}])
@pytest.mark.parametrize("dims", [1, 2])
def test_batchnorm_running_stats_train_then_eval(kwargs, dims):
    torch = pytest.importorskip("torch")
    ours = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(3, **kwargs).double()
    theirs = (torch.nn.BatchNorm1d if dims == 1 else torch.nn.BatchNorm2d)(3, **kwargs).double()
    copy_weights(ours, theirs)
    shape = (5, 3) if dims == 1 else (4, 3, 2, 3)
    for step in range(3):
        x = randn(*shape, seed=10 + step) * (step + 1) + step
        compare(ours, theirs, x, seed=step)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key].data, value.numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"{key} after step {step}")
    if kwargs.get("track_running_stats", True):
        assert int(ours.num_batches_tracked) == 3
    ours.eval()
    theirs.eval()
    before = {k: v.data.copy() for k, v in ours.state_dict().items()}
    compare(ours, theirs, randn(*shape, seed=20), seed=7)
    for k, v in ours.state_dict().items():  # eval mode leaves the statistics alone
        np.testing.assert_array_equal(v.data, before[k])
    check_gradients(ours, randn(*shape, seed=21))


def test_batchnorm_errors_and_repr():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="expected 4D input \\(got 2D input"):
        bn(dg.zeros(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(dg.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="input has 4 channels"):
        bn(dg.zeros(2, 4, 3, 3))
    assert repr(nn.BatchNorm1d(8)) == ("BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                       "track_running_stats=True)")
    assert list(nn.BatchNorm1d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]
    bn = nn.BatchNorm1d(2)
    bn(dg.randn(4, 2))
    bn.reset_parameters()
    assert int(bn.num_batches_tracked) == 0 and np.all(bn.running_var.data == 1)


# ---- Dropout: train and eval -----------------------------------------------------------------------------------


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    x = dg.ones(200, 500)
    dg.manual_seed(3)
    y = drop(x).data
    kept = y != 0
    assert abs(1 - kept.mean() - 0.25) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert y.dtype == np.float32
    dg.manual_seed(3)
    np.testing.assert_array_equal(drop(x).data, y)  # the global generator drives the mask
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).data, x.data)
    x = dg.tensor(randn(4, 5), requires_grad=True)
    drop.train()
    dg.manual_seed(1)
    out = drop(x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data, (out.data != 0) / 0.75)
    assert np.all(nn.Dropout(0.0)(x).data == x.data)
    assert np.all(nn.Dropout(1.0)(x).data == 0)
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"


def test_dropout_gradcheck_with_fixed_mask():
    drop = nn.Dropout(0.4)
    x = dg.tensor(randn(3, 4), requires_grad=True)

    def fn(inp):
        dg.manual_seed(0)
        return drop(inp)

    assert gradcheck(fn, [x])


# ---- whole architectures ---------------------------------------------------------------------------------------


def lenet(nn_):
    return nn_.Sequential(
        nn_.Conv2d(1, 6, 5, padding=2), nn_.ReLU(), nn_.MaxPool2d(2),
        nn_.Conv2d(6, 16, 5), nn_.ReLU(), nn_.MaxPool2d(2),
        nn_.Flatten(),
        nn_.Linear(400, 120), nn_.ReLU(), nn_.Linear(120, 84), nn_.ReLU(), nn_.Linear(84, 10),
    )


def mlp(nn_):
    return nn_.Sequential(OrderedDict([
        ("fc1", nn_.Linear(4, 8)), ("bn", nn_.BatchNorm1d(8)), ("act1", nn_.Tanh()), ("drop", nn_.Dropout(0.3)),
        ("fc2", nn_.Linear(8, 8)), ("act2", nn_.Sigmoid()), ("out", nn_.Linear(8, 3)), ("logp", nn_.LogSoftmax(1)),
    ]))


def test_lenet_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = lenet(nn).double(), lenet(torch.nn).double()
    assert list(ours.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias",
                                       "9.weight", "9.bias", "11.weight", "11.bias"]
    copy_weights(ours, theirs)
    assert repr(ours) == repr(theirs)
    compare(ours, theirs, randn(2, 1, 28, 28, seed=4))


def test_mlp_matches_torch_in_eval_mode_and_custom_module_keys():
    torch = pytest.importorskip("torch")
    ours, theirs = mlp(nn).double(), mlp(torch.nn).double()
    copy_weights(ours, theirs)
    assert repr(ours) == repr(theirs)
    ours.train()
    theirs.train()
    ours.drop.p = theirs.drop.p = 0.0  # the masks come from different generators
    compare(ours, theirs, randn(6, 4, seed=5))
    ours.eval()
    theirs.eval()
    ours.drop.p = theirs.drop.p = 0.3
    compare(ours, theirs, randn(6, 4, seed=6))

    def make(nn_):
        class Net(nn_.Module):
            def __init__(self):
                super().__init__()
                self.features = nn_.Sequential(nn_.Conv1d(1, 4, 3), nn_.BatchNorm1d(4), nn_.ReLU())
                self.heads = nn_.ModuleDict({"a": nn_.Linear(24, 2), "b": nn_.Linear(24, 1, bias=False)})
                self.blocks = nn_.ModuleList([nn_.Linear(2, 2) for _ in range(2)])

            def forward(self, x):
                h = self.features(x).flatten(1)
                out = self.heads["a"](h)
                for block in self.blocks:
                    out = block(out)
                return out * self.heads["b"](h)

        return Net()

    ours, theirs = make(nn).double(), make(torch.nn).double()
    copy_weights(ours, theirs)
    compare(ours, theirs, randn(3, 1, 8, seed=8))
    assert repr(ours) == repr(theirs)


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), torch.nn.Conv2d(3, 8, 3, stride=2, padding=1,
                                                                              bias=False)),
        (nn.Conv1d(3, 8, 3, dilation=2), torch.nn.Conv1d(3, 8, 3, dilation=2)),
        (nn.Conv2d(3, 8, 3, padding="same"), torch.nn.Conv2d(3, 8, 3, padding="same")),
        (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), torch.nn.MaxPool2d(3, stride=2, padding=1,
                                                                                 ceil_mode=True)),
        (nn.AvgPool1d(4), torch.nn.AvgPool1d(4)),
        (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        (nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
        (nn.Softmax(), torch.nn.Softmax()),
        (nn.Identity(), torch.nn.Identity()),
        (nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 2, bias=False)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_conv_padding_strings_match_torch():
    torch = pytest.importorskip("torch")
    for padding, k in (("same", 3), ("same", (2, 3)), ("valid", 3)):
        ours = nn.Conv2d(2, 2, k, padding=padding).double()
        theirs = torch.nn.Conv2d(2, 2, k, padding=padding).double()
        copy_weights(ours, theirs)
        compare(ours, theirs, randn(1, 2, 5, 6, seed=11))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be"):
        nn.Conv2d(2, 2, 3, padding="full")


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="Linear: deltagrad runs on the CPU"):
        nn.Linear(2, 2, device="cuda")
    assert nn.Conv2d(1, 1, 2, device="cpu").weight.shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv1d(1, 1, 2, padding_mode="mirror")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 2, groups=2)
    with pytest.raises(ValueError, match="reflect padding \\(3, 3\\) must be smaller"):
        nn.Conv1d(1, 1, 3, padding=3, padding_mode="reflect")(dg.zeros(1, 1, 3))
    with pytest.raises(ValueError, match="in_features must be a non-negative int"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match="kernel_size must be an int or a tuple of 2 ints"):
        nn.Conv2d(1, 1, (2, 2, 2))
    with pytest.raises(ValueError, match="stride must be positive"):
        nn.Conv1d(1, 1, 2, stride=0)
    with pytest.raises(ValueError, match="out_channels must be a positive int"):
        nn.Conv2d(1, 0, 2)


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(dg.zeros(2, 4))
    np.testing.assert_allclose(y.data, 0.25)


def test_float_double_on_layers():
    net = lenet(nn)
    params = list(net.parameters())
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    out = net(dg.tensor(randn(1, 1, 28, 28)))
    assert out.dtype == np.float64
    net.float()
    assert net(dg.randn(1, 1, 28, 28)).dtype == np.float32


def test_hooks_record_forward_and_backward_signals_like_torch():
    """What the "explain" tools record per layer: the forward signal x(l) and the backward signals
    dL/dx(l) (grad_output) and dL/dx(l-1) (grad_input), through forward and full backward hooks."""
    torch = pytest.importorskip("torch")

    def net(nn_):
        return nn_.Sequential(nn_.Linear(3, 5), nn_.Tanh(), nn_.Linear(5, 4), nn_.ReLU(), nn_.Linear(4, 2))

    ours, theirs = net(nn).double(), net(torch.nn).double()
    copy_weights(ours, theirs)
    records = {"o": {}, "t": {}}
    for key, model in (("o", ours), ("t", theirs)):
        for i, layer in enumerate(model):
            layer.register_forward_hook(lambda m, a, out, i=i, key=key: records[key].__setitem__(("fwd", i), out))
            layer.register_full_backward_hook(
                lambda m, gi, go, i=i, key=key: records[key].__setitem__(("bwd", i), (gi, go)))
    x = randn(6, 3, seed=12)
    y = randn(6, 2, seed=13)
    xo = dg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    nn.MSELoss()(ours(xo), dg.tensor(y)).backward()
    torch.nn.MSELoss()(theirs(xt), torch.tensor(y)).backward()
    assert set(records["o"]) == set(records["t"]) and len(records["o"]) == 10
    for i in range(5):
        np.testing.assert_allclose(records["o"][("fwd", i)].data, records["t"][("fwd", i)].detach().numpy(),
                                   rtol=RTOL, atol=ATOL)
        (gi_o, go_o), (gi_t, go_t) = records["o"][("bwd", i)], records["t"][("bwd", i)]
        np.testing.assert_allclose(go_o[0].data, go_t[0].numpy(), rtol=RTOL, atol=ATOL, err_msg=f"grad_output {i}")
        np.testing.assert_allclose(gi_o[0].data, gi_t[0].numpy(), rtol=RTOL, atol=ATOL, err_msg=f"grad_input {i}")


def test_maxpool_return_indices_and_ceil_mode_match_torch():
    torch = pytest.importorskip("torch")
    x = randn(2, 3, 7, 7, seed=14)
    out, idx = nn.MaxPool2d(3, stride=2, ceil_mode=True, return_indices=True)(dg.tensor(x))
    t_out, t_idx = torch.nn.MaxPool2d(3, stride=2, ceil_mode=True, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(out.data, t_out.numpy())
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
    out, idx = nn.MaxPool1d(2, return_indices=True)(dg.tensor(x[:, :, 0]))
    t_out, t_idx = torch.nn.MaxPool1d(2, return_indices=True)(torch.tensor(x[:, :, 0]))
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
