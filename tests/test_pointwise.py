"""nn.Pointwise, the notes' x_out_i = h(x_in_i + b_i): against torch.tanh(x + b), against the notes' backprop
formulas, gradchecked to second order in float64, and usable in a TOML layer list."""

from __future__ import annotations

import numpy as np
import pytest

import deltagrad as dg
from deltagrad import nn
from deltagrad.testing import gradcheck, gradgradcheck


def layer_with_bias(activation, b):
    layer = nn.Pointwise(activation, len(b), dtype=dg.float64)
    with dg.no_grad():
        layer.bias.copy_(b)
    return layer


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6), (2, 4, 3, 3), (4,)])
def test_same_as_torch_tanh_of_x_plus_b(shape, rng):
    torch = pytest.importorskip("torch")
    x, b = rng.standard_normal(shape), rng.standard_normal(4)
    layer = layer_with_bias(nn.Tanh(), b)
    xd = dg.tensor(x, requires_grad=True)
    out = layer(xd)
    tx, tb = torch.tensor(x, requires_grad=True), torch.tensor(b, requires_grad=True)
    tout = torch.tanh(tx + tb.reshape((4,) + (1,) * (len(shape) - 2)) if len(shape) > 2 else tx + tb)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    v = rng.standard_normal(shape)
    out.backward(dg.tensor(v))
    tout.backward(torch.tensor(v))
    np.testing.assert_allclose(xd.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(layer.bias.grad.data, tb.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_backprop_is_the_notes_formulas(rng):
    """dL/dx_in_i = dL/dx_out_i · h'(x_in_i + b_i) and dL/db_i = the same, summed over the batch."""
    x, b, delta = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal((6, 3))
    layer = layer_with_bias("tanh", b)
    xd = dg.tensor(x, requires_grad=True)
    layer(xd).backward(dg.tensor(delta))
    h_prime = 1 - np.tanh(x + b) ** 2  # tanh' = 1 − tanh²
    np.testing.assert_allclose(xd.grad.data, delta * h_prime, rtol=1e-13)
    np.testing.assert_allclose(layer.bias.grad.data, (delta * h_prime).sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", nn.Tanh(), dg.sigmoid])
def test_gradcheck_to_second_order(activation, rng):
    layer = layer_with_bias(activation, rng.standard_normal(3))
    x = dg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    # the bias is passed as an input too: gradcheck perturbs it in place, and the layer reads it
    assert gradcheck(lambda x, b: layer(x), (x, layer.bias))
    assert gradgradcheck(lambda x, b: layer(x), (x, layer.bias))


def test_module_function_and_name_give_the_same_result_positional_or_keyword(rng):
    x, b = rng.standard_normal((5, 4)), rng.standard_normal(4)
    outs = []
    for make in (lambda: nn.Pointwise(nn.Tanh(), 4, dtype=dg.float64),
                 lambda: nn.Pointwise(dg.tanh, 4, dtype=dg.float64),
                 lambda: nn.Pointwise("tanh", 4, dtype=dg.float64),
                 lambda: nn.Pointwise(activation="tanh", num_features=4, dtype=dg.float64)):
        layer = make()
        with dg.no_grad():
            layer.bias.copy_(b)
        xd = dg.tensor(x, requires_grad=True)
        layer(xd).sum().backward()
        outs.append((layer(dg.tensor(x)).data, xd.grad.data, layer.bias.grad.data))
    for o in outs[1:]:
        for a, e in zip(o, outs[0]):
            np.testing.assert_array_equal(a, e)


def test_state_dict_and_repr():
    layer = nn.Pointwise("relu", 3)
    assert list(layer.state_dict()) == ["bias"]
    np.testing.assert_array_equal(layer.bias.data, np.zeros(3, np.float32))
    assert repr(layer) == "Pointwise(relu, num_features=3)"
    assert [n for n, _ in nn.Pointwise(nn.Tanh(), 3).named_modules()] == ["", "h"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown activation 'tanhh'"):
        nn.Pointwise("tanhh", 3)
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        nn.Pointwise("tanh", 0)
    with pytest.raises(TypeError, match="activation must be a module, a function or a name"):
        nn.Pointwise(3, 3)
    with pytest.raises(ValueError, match=r"input of shape \(2, 5\) does not have num_features=3"):
        nn.Pointwise("tanh", 3)(dg.zeros(2, 5))


def test_a_toml_layer_list_with_pointwise_trains(tmp_path):
    from deltagrad.train import toml_io
    from deltagrad.train.api import open_run, train_run

    layers = [{"type": "Flatten"}, {"type": "Linear", "in_features": 64, "out_features": 32, "bias": False},
              {"type": "Pointwise", "activation": "tanh", "num_features": 32},
              {"type": "Linear", "in_features": 32, "out_features": 10}]
    result = train_run({"model": {"layers": layers}, "train": {"epochs": 2}}, out=tmp_path / "run", quiet=True)
    assert result["test_accuracy"] > 0.8
    assert toml_io.load(tmp_path / "run" / "config.toml")["model"]["layers"][2] == layers[2]
    trainer, _ = open_run(tmp_path / "run")
    pointwise = trainer.model[2]
    assert isinstance(pointwise, nn.Pointwise) and pointwise.activation_name == "tanh"
    assert np.abs(pointwise.bias.data).max() > 1e-4  # the bias inside the nonlinearity was trained
