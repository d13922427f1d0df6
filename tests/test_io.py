"""deltagrad.save / load: exact safetensors round trips, atomic writes, and clear refusals of bad files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import deltagrad as dg
from deltagrad.io import (
    CheckpointFileError,
    PickleRefusedError,
    StateDictMismatchError,
    check_state_dict,
    load_into,
    load_metadata,
)


def sample_state() -> dict:
    rng = np.random.default_rng(3)
    return {
        "layer.weight": dg.tensor(rng.standard_normal((4, 3)).astype(np.float32)),
        "layer.bias": dg.tensor(rng.standard_normal(4)),
        "transposed": dg.tensor(np.arange(12.0).reshape(3, 4).T),        # not C-contiguous
        "half": np.linspace(-2, 2, 5).astype(np.float16),
        "steps": np.array(7, np.int64),                                   # 0-d
        "counts": np.arange(5, dtype=np.int32),
        "bytes": np.arange(4, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((2, 0), np.float64),
        "a_last_name_first": dg.tensor(np.ones(1)),
    }


def test_round_trip_is_exact_and_ordered(tmp_path):
    sd = sample_state()
    path = tmp_path / "model.safetensors"
    dg.save(sd, path)
    out = dg.load(path)
    assert list(out) == list(sd)  # the order in which the entries were saved
    for k, v in sd.items():
        a = v.data if isinstance(v, dg.Tensor) else v
        assert isinstance(out[k], dg.Tensor)
        assert out[k].dtype == a.dtype and out[k].shape == a.shape, k
        np.testing.assert_array_equal(out[k].data, a)
        assert out[k].data.flags.writeable and not out[k].requires_grad
    out["layer.bias"].data[0] = 123.0  # the loaded arrays belong to the caller, not to the file
    assert dg.load(path)["layer.bias"].data[0] != 123.0


def test_file_is_plain_safetensors_and_reads_others_files(tmp_path):
    sd = sample_state()
    path = tmp_path / "model.safetensors"
    dg.save(sd, str(path), metadata={"epoch": "3", "config": '{"lr": 0.1}'})
    raw = safetensors.numpy.load_file(path)
    assert set(raw) == set(sd)
    np.testing.assert_array_equal(raw["transposed"], np.arange(12.0).reshape(3, 4).T)
    assert load_metadata(path) == {"epoch": "3", "config": '{"lr": 0.1}'}

    other = tmp_path / "other.safetensors"  # written by the safetensors library itself, no key order recorded
    safetensors.numpy.save_file({"b": np.ones(3, np.float32), "a": np.zeros((2, 2))}, other)
    out = dg.load(other)
    assert set(out) == {"a", "b"} and out["b"].dtype == np.float32
    assert load_metadata(other) == {}


def test_torch_reads_it_and_we_read_torchs(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    dg.save({"w": dg.tensor(np.arange(6.0).reshape(2, 3))}, tmp_path / "a.safetensors")
    assert torch.equal(st_torch.load_file(tmp_path / "a.safetensors")["w"], torch.arange(6.0, dtype=torch.float64)
                       .reshape(2, 3))
    st_torch.save_file({"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}, tmp_path / "t.safetensors")
    out = dg.load(tmp_path / "t.safetensors")
    np.testing.assert_array_equal(out["fc.weight"].data, np.ones((2, 3), np.float32))


class FakeModule:
    """Anything with state_dict()/load_state_dict() (as deltagrad.nn.Module has)."""

    def __init__(self, w, b):
        self.w, self.b = dg.tensor(w, requires_grad=True), dg.tensor(b, requires_grad=True)
        self.loaded = None

    def state_dict(self):
        return {"w": self.w, "b": self.b}

    def load_state_dict(self, sd, strict=True):
        self.loaded = (dict(sd), strict)
        with dg.no_grad():
            self.w.data[...] = sd["w"].data
            self.b.data[...] = sd["b"].data


def test_module_like_objects(tmp_path):
    m = FakeModule(np.ones((2, 3)), np.zeros(2))
    dg.save(m, tmp_path / "m.safetensors")
    m2 = FakeModule(np.zeros((2, 3)), np.ones(2))
    load_into(m2, tmp_path / "m.safetensors")
    np.testing.assert_array_equal(m2.w.data, np.ones((2, 3)))
    assert m2.loaded[1] is True
    out = dg.load(tmp_path / "m.safetensors", expected=m2)
    assert list(out) == ["w", "b"]


def test_load_into_a_state_dict_in_place_casts_dtype(tmp_path):
    dg.save({"w": np.arange(3.0), "extra": np.ones(1)}, tmp_path / "c.safetensors")
    target = {"w": dg.tensor(np.zeros(3, np.float32))}
    with pytest.raises(StateDictMismatchError, match='Unexpected key.*"extra"'):
        load_into(target, tmp_path / "c.safetensors")
    result = load_into(target, tmp_path / "c.safetensors", strict=False)
    assert result.unexpected_keys == ["extra"] and result.missing_keys == []
    assert target["w"].dtype == np.float32
    np.testing.assert_array_equal(target["w"].data, [0, 1, 2])


def test_expected_keys_and_shapes_name_the_offending_key(tmp_path):
    path = tmp_path / "m.safetensors"
    dg.save({"fc.weight": np.ones((3, 4)), "fc.bias": np.ones(3)}, path)
    with pytest.raises(StateDictMismatchError, match=r'size mismatch for "fc.weight".*\(3, 4\).*\(4, 3\)') as e:
        dg.load(path, expected={"fc.weight": np.ones((4, 3)), "fc.bias": np.ones(3)})
    assert str(path) in str(e.value) and e.value.shape_mismatches == [("fc.weight", (3, 4), (4, 3))]
    with pytest.raises(StateDictMismatchError, match='Missing key.*"fc2.weight"') as e:
        dg.load(path, expected={"fc.weight": (3, 4), "fc.bias": (3,), "fc2.weight": (1,)})
    assert e.value.missing_keys == ["fc2.weight"]
    with pytest.raises(StateDictMismatchError, match='Unexpected key.*"fc.bias"'):
        dg.load(path, expected=["fc.weight"])
    assert list(dg.load(path, expected=["fc.weight", "fc.bias"])) == ["fc.weight", "fc.bias"]
    # non-strict comparison ignores key sets but never shapes
    assert check_state_dict({"fc.weight": (3, 4), "x": None}, dg.load(path), strict=False).missing_keys == ["x"]
    with pytest.raises(StateDictMismatchError, match="fc.weight"):
        check_state_dict({"fc.weight": (3, 5)}, dg.load(path), strict=False)


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="'epoch'"):
        dg.save({"w": np.ones(2), "epoch": 3}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="keys must be strings"):
        dg.save({1: np.ones(2)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="'n'.*json.dumps"):
        dg.save({"w": np.ones(2)}, tmp_path / "x.safetensors", metadata={"n": 3})
    with pytest.raises(TypeError, match="complex128"):
        dg.save({"z": np.ones(2, complex)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="state dict"):
        dg.save([np.ones(2)], tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        dg.save({"w": np.ones(2)}, tmp_path / "no_such_folder" / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    dg.save({"w": np.ones(3)}, path)
    with pytest.raises(TypeError):
        dg.save({"w": np.zeros(3), "bad": object()}, path)  # fails before anything is written
    np.testing.assert_array_equal(dg.load(path)["w"].data, np.ones(3))
    dg.save({"w": np.full(3, 2.0)}, path)  # replaces the old file
    np.testing.assert_array_equal(dg.load(path)["w"].data, np.full(3, 2.0))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.safetensors"]  # no temporary files left behind
    assert os.stat(path).st_mode & 0o644 == 0o644  # an ordinary file, not mkstemp's private mode


# -- bad files -------------------------------------------------------------------------------------------------
class Trap:
    """Unpickling this would create a file: proof that a pickle was executed."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickles_are_refused_never_executed(tmp_path, protocol):
    trap = tmp_path / "executed"
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": Trap(trap)}, protocol=protocol))
    with pytest.raises(PickleRefusedError, match="weights.pkl.*pickle") as e:
        dg.load(path)
    assert e.value.filename == str(path)
    assert not trap.exists()


def test_protocol_0_pickle_is_refused(tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=0))
    with pytest.raises(CheckpointFileError, match="old.pkl"):
        dg.load(path)


def test_pytorch_checkpoints_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "model.pt")
    with pytest.raises(PickleRefusedError, match=r"model\.pt.*zip.*never unpickled"):
        dg.load(tmp_path / "model.pt")
    torch.save({"w": torch.ones(2)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(PickleRefusedError, match=r"legacy\.pth.*pickle"):
        dg.load(tmp_path / "legacy.pth")


def test_missing_truncated_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        dg.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        dg.load(tmp_path)

    good = tmp_path / "good.safetensors"
    dg.save({"w": np.arange(100.0), "b": np.ones(3, np.float32)}, good)
    data = good.read_bytes()

    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-40])
    with pytest.raises(CheckpointFileError, match="cut.safetensors: truncated"):
        dg.load(cut)
    cut.write_bytes(data[:30])
    with pytest.raises(CheckpointFileError, match="cut.safetensors: truncated"):
        dg.load(cut)
    cut.write_bytes(data[:5])
    with pytest.raises(CheckpointFileError, match="cut.safetensors: truncated"):
        dg.load(cut)

    bad = tmp_path / "bad.safetensors"
    n = int.from_bytes(data[:8], "little")
    bad.write_bytes(data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:])
    with pytest.raises(CheckpointFileError, match="bad.safetensors: corrupt safetensors header"):
        dg.load(bad)
    bad.write_bytes(data.replace(b'"F64"', b'"F65"'))
    with pytest.raises(CheckpointFileError, match="bad.safetensors.*unknown dtype"):
        dg.load(bad)
    bad.write_bytes(data.replace(b'"shape":[100]', b'"shape":[101]'))
    with pytest.raises(CheckpointFileError, match="bad.safetensors"):
        dg.load(bad)

    text = tmp_path / "notes.txt"
    text.write_text("these are not weights, just some text that is long enough")
    with pytest.raises(CheckpointFileError, match="notes.txt: not a safetensors file"):
        dg.load(text)
    npy = tmp_path / "w.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointFileError, match=r"w\.npy.*NumPy"):
        dg.load(npy)
    with pytest.raises(CheckpointFileError, match="notes.txt"):
        load_metadata(text)


def test_training_state_round_trip(tmp_path):
    w = dg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = dg.optim.Adam([w], lr=0.1)
    sched = dg.optim.lr_scheduler.ReduceLROnPlateau(opt)
    (w * w).sum().backward()
    opt.step()
    sched.step(1.0)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": 3, "rng": np.arange(4)}
    path = tmp_path / "train_state.safetensors"
    dg.io.save_state(state, path, metadata={"note": "hello"})
    assert load_metadata(path) == {"note": "hello"}
    back = dg.io.load_state(path)
    assert back["epoch"] == 3 and back["scheduler"]["mode_worse"] == float("inf")
    assert isinstance(back["rng"], np.ndarray) and back["rng"].tolist() == [0, 1, 2, 3]
    opt2 = dg.optim.Adam([dg.tensor(np.zeros(2), requires_grad=True)], lr=0.5)
    opt2.load_state_dict(back["optimizer"])
    (p2,) = opt2.param_groups[0]["params"]
    np.testing.assert_array_equal(opt2.state[p2]["exp_avg_sq"].data, opt.state[w]["exp_avg_sq"].data)
    assert opt2.param_groups[0]["lr"] == 0.1
    dg.save({"w": np.ones(2)}, tmp_path / "weights.safetensors")
    with pytest.raises(CheckpointFileError, match="weights.safetensors: no training state"):
        dg.io.load_state(tmp_path / "weights.safetensors")


def test_nn_model_round_trip_and_torch_interchange(tmp_path):
    if not hasattr(dg.nn, "Linear"):
        pytest.skip("nn.Linear is not available yet")
    dg.manual_seed(0)
    model = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.ReLU(), dg.nn.Linear(4, 2))
    path = tmp_path / "mlp.safetensors"
    dg.save(model, path)
    assert list(dg.load(path)) == list(model.state_dict())
    fresh = dg.nn.Sequential(dg.nn.Linear(3, 4), dg.nn.ReLU(), dg.nn.Linear(4, 2))
    load_into(fresh, path)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)
    wrong = dg.nn.Sequential(dg.nn.Linear(3, 5), dg.nn.ReLU(), dg.nn.Linear(5, 2))
    with pytest.raises(StateDictMismatchError, match='size mismatch for "0.weight"'):
        load_into(wrong, path)

    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    tmodel.load_state_dict(st_torch.load_file(path))  # same names, same (out × in) layout
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(model(dg.tensor(x)).detach().numpy(), tmodel(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


# -- checksums and special files ------------------------------------------------------------------------------------
def test_a_flipped_bit_in_the_data_is_an_error_not_another_model(tmp_path):
    path = tmp_path / "w.safetensors"
    dg.save({"w": dg.tensor(np.arange(6.0))}, path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointFileError, match=r"w\.safetensors: checksum mismatch"):
        dg.load(path)
    assert "deltagrad.sha256" not in load_metadata(path)  # the checksum is the file's own business


def test_the_checksum_keeps_the_file_plain_safetensors(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    sd = sample_state()
    path = tmp_path / "m.safetensors"
    dg.save(sd, path, metadata={"note": "x"})
    raw = safetensors.numpy.load_file(path)  # the library itself reads it, data section 8-byte aligned
    assert all(np.array_equal(raw[k], v.data if isinstance(v, dg.Tensor) else v) for k, v in sd.items())
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert header_len % 8 == 0
    assert torch.equal(st_torch.load_file(path)["layer.bias"], torch.from_numpy(sd["layer.bias"].data))
    assert dg.io.dumps(sd, {"note": "x"}) == path.read_bytes()
    assert list(dg.io.loads(path.read_bytes(), "m")) == list(sd)


def test_files_without_a_checksum_still_load(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, path)
    assert dg.load(path)["a"].data.tolist() == [1.0, 1.0]


def test_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    import signal

    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    signal.alarm(20)  # a blocking open would hang: fail instead
    try:
        for reader in (dg.load, load_metadata, dg.io.load_state):
            with pytest.raises(CheckpointFileError, match="not a regular file"):
                reader(fifo)
        with pytest.raises(CheckpointFileError, match="not a regular file"):
            dg.load("/dev/zero")
    finally:
        signal.alarm(0)
