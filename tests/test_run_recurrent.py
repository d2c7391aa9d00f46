"""LSTM, RNN and LSTMUnit in the runner, against numpy step-by-step references written from Caffe's
unrolled-net formulas (gate order i, f, o, g; cont scales the previous state; 0 starts a sequence)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from caffeconf.errors import CaffeconfError  # noqa: E402
from caffeconf.ir import Layer, Net  # noqa: E402
from caffeconf.run.interpreter import CaffeNet  # noqa: E402
from caffeconf.caffe.weights import StoredBlob  # noqa: E402
from caffeconf.inspect.shapes import infer_shapes  # noqa: E402

RNG = np.random.default_rng(7)
T, N, HIDDEN = 5, 3, 4
# Sequences start at t=0 and again mid-batch (a 0 after 1s), per stream.
CONT = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=np.float32)


def normal(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def input_layer(name, value):
    return Layer(name, "Input", (), (name,), {"input_param": {"shape": [{"dim": list(np.shape(value))}]}})


def build(layer_type, fields, inputs, tops, phase="TEST", blobs=None):
    """A net of Input layers feeding one layer called 'l' (its blobs set to `blobs` when given);
    returns the model and its feed."""
    layer = Layer("l", layer_type, tuple(inputs), tuple(tops), dict(fields))
    weights = {"l": [StoredBlob(b.ravel(), b.shape, legacy=False) for b in blobs]} if blobs else None
    model = CaffeNet(Net("t", (*(input_layer(n, v) for n, v in inputs.items()), layer)), phase=phase,
                     weights=weights)
    feed = {n: torch.from_numpy(np.asarray(v, dtype=np.float32)) for n, v in inputs.items()}
    return model, feed


def run_with_blobs(layer_type, fields, inputs, tops, blobs):
    """One forward with the layer's blobs set to `blobs`; returns the named tops as arrays."""
    model, feed = build(layer_type, fields, inputs, tops, blobs=blobs)
    with torch.no_grad():
        out = model(feed, keep_all=True)
    return [out[t].numpy() for t in tops]


def recurrent_fields(expose=False):
    return {"recurrent_param": {"num_output": HIDDEN, "expose_hidden": expose,
                                "weight_filler": {"type": "gaussian", "std": 0.5},
                                "bias_filler": {"type": "gaussian", "std": 0.5}}}


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- references

def lstm_unit_reference(c_prev, gates, cont):
    """One stream, one step of Caffe's LSTMUnit."""
    i, f, o, g = np.split(gates, 4)
    forget = 0.0 if cont == 0 else cont * sigmoid(f)
    c = forget * c_prev + sigmoid(i) * np.tanh(g)
    return c, sigmoid(o) * np.tanh(c)


def lstm_reference(x, cont, blobs, x_static=None, h0=None, c0=None):
    w_xc, b_c, *rest = [b.astype(np.float64) for b in blobs]
    w_static, w_hc = rest if x_static is not None else (None, rest[0])
    h = np.zeros((N, HIDDEN)) if h0 is None else h0[0].astype(np.float64)
    c = np.zeros((N, HIDDEN)) if c0 is None else c0[0].astype(np.float64)
    out = np.zeros((T, N, HIDDEN))
    for t in range(T):
        for n in range(N):
            gates = w_xc @ x[t, n].ravel() + b_c + w_hc @ (cont[t, n] * h[n])
            if x_static is not None:
                gates += w_static @ x_static[n].ravel()
            c[n], h[n] = lstm_unit_reference(c[n], gates, cont[t, n])
            out[t, n] = h[n]
    return out, h, c


def rnn_reference(x, cont, blobs, x_static=None, h0=None):
    w_xh, b_h, *rest = [b.astype(np.float64) for b in blobs]
    w_static, w_hh, w_ho, b_o = rest if x_static is not None else (None, *rest)
    h = np.zeros((N, HIDDEN)) if h0 is None else h0[0].astype(np.float64)
    out = np.zeros((T, N, HIDDEN))
    for t in range(T):
        for n in range(N):
            total = w_hh @ (cont[t, n] * h[n]) + w_xh @ x[t, n].ravel() + b_h
            if x_static is not None:
                total += w_static @ x_static[n].ravel()
            h[n] = np.tanh(total)
            out[t, n] = np.tanh(w_ho @ h[n] + b_o)
    return out, h


def lstm_blobs(inputs, static_inputs=None):
    blobs = [normal(4 * HIDDEN, inputs), normal(4 * HIDDEN)]
    blobs += [normal(4 * HIDDEN, static_inputs)] if static_inputs else []
    return blobs + [normal(4 * HIDDEN, HIDDEN)]


def rnn_blobs(inputs, static_inputs=None):
    blobs = [normal(HIDDEN, inputs), normal(HIDDEN)]
    blobs += [normal(HIDDEN, static_inputs)] if static_inputs else []
    return blobs + [normal(HIDDEN, HIDDEN), normal(HIDDEN, HIDDEN), normal(HIDDEN)]


# ---------------------------------------------------------------- forward

X = normal(T, N, 2, 3)          # the input is flattened from axis 2: 6 inputs
X_STATIC = normal(N, 5)


@pytest.mark.parametrize("static", [False, True])
def test_lstm_matches_the_reference(static):
    blobs = lstm_blobs(6, 5 if static else None)
    inputs = {"x": X, "cont": CONT, **({"x_static": X_STATIC} if static else {})}
    (h,) = run_with_blobs("LSTM", recurrent_fields(), inputs, ["h"], blobs)
    expected, _, _ = lstm_reference(X, CONT, blobs, X_STATIC if static else None)
    close(h, expected)


@pytest.mark.parametrize("static", [False, True])
def test_rnn_matches_the_reference(static):
    blobs = rnn_blobs(6, 5 if static else None)
    inputs = {"x": X, "cont": CONT, **({"x_static": X_STATIC} if static else {})}
    (o,) = run_with_blobs("RNN", recurrent_fields(), inputs, ["o"], blobs)
    expected, _ = rnn_reference(X, CONT, blobs, X_STATIC if static else None)
    close(o, expected)


def test_lstm_expose_hidden_takes_and_returns_the_states():
    blobs = lstm_blobs(6, 5)
    h0, c0 = normal(1, N, HIDDEN), normal(1, N, HIDDEN)
    cont = CONT.copy()
    cont[0] = [1, 0, 1]  # streams 0 and 2 continue from h0, c0
    inputs = {"x": X, "cont": cont, "x_static": X_STATIC, "h0": h0, "c0": c0}
    h, h_last, c_last = run_with_blobs("LSTM", recurrent_fields(expose=True), inputs,
                                       ["h", "hT", "cT"], blobs)
    expected, expected_h, expected_c = lstm_reference(X, cont, blobs, X_STATIC, h0, c0)
    close(h, expected)
    close(h_last, expected_h[None])
    close(c_last, expected_c[None])


def test_rnn_expose_hidden_takes_and_returns_the_state():
    blobs = rnn_blobs(6)
    h0 = normal(1, N, HIDDEN)
    cont = CONT.copy()
    cont[0] = [1, 1, 0]
    o, h_last = run_with_blobs("RNN", recurrent_fields(expose=True), {"x": X, "cont": cont, "h0": h0},
                               ["o", "hT"], blobs)
    expected, expected_h = rnn_reference(X, cont, blobs, h0=h0)
    close(o, expected)
    close(h_last, expected_h[None])


def test_without_expose_hidden_the_state_carries_into_the_next_forward():
    blobs = lstm_blobs(6)
    model, feed = build("LSTM", recurrent_fields(), {"x": X, "cont": CONT}, ["h"], blobs=blobs)
    continuing = CONT.copy()
    continuing[0] = [1, 0, 1]  # streams 0 and 2 go on from the first forward's last state
    second_x = normal(T, N, 2, 3)
    with torch.no_grad():
        model(feed)
        h = model({"x": torch.from_numpy(second_x), "cont": torch.from_numpy(continuing)})["h"]
    _, h_first, c_first = lstm_reference(X, CONT, blobs)
    expected, _, _ = lstm_reference(second_x, continuing, blobs, h0=h_first[None], c0=c_first[None])
    close(h.numpy(), expected)


def test_lstm_unit_matches_the_reference():
    c_prev, gates = normal(1, N, HIDDEN), normal(1, N, 4 * HIDDEN)
    cont = np.array([[1, 0, 0.5]], dtype=np.float32)
    model, feed = build("LSTMUnit", {}, {"c_prev": c_prev, "gates": gates, "cont": cont}, ["c", "h"])
    with torch.no_grad():
        out = model(feed)
    for n in range(N):
        expected_c, expected_h = lstm_unit_reference(c_prev[0, n].astype(np.float64),
                                                     gates[0, n].astype(np.float64), cont[0, n])
        close(out["c"][0, n].numpy(), expected_c)
        close(out["h"][0, n].numpy(), expected_h)


# ---------------------------------------------------------------- backward

def test_backward_reaches_every_blob_and_the_inputs_but_not_cont():
    inputs = {"x": X, "cont": CONT, "x_static": X_STATIC}
    for layer_type, top in (("LSTM", "h"), ("RNN", "o")):
        model, feed = build(layer_type, recurrent_fields(), inputs, [top], phase="TRAIN")
        feed = {name: value.requires_grad_() for name, value in feed.items()}
        model(feed)[top].square().sum().backward()
        for blob in model.layer_blobs[len(feed)]:
            assert blob.grad is not None and torch.isfinite(blob.grad).all() and blob.grad.abs().sum() > 0
        for name in ("x", "x_static"):
            assert torch.isfinite(feed[name].grad).all() and feed[name].grad.abs().sum() > 0
        assert feed["cont"].grad is None  # Caffe never backpropagates to the sequence indicators


def test_exposed_states_get_no_gradient_as_in_caffe():
    h0, c0 = normal(1, N, HIDDEN), normal(1, N, HIDDEN)
    model, feed = build("LSTM", recurrent_fields(expose=True),
                        {"x": X, "cont": np.ones_like(CONT), "h0": h0, "c0": c0}, ["h", "hT", "cT"],
                        phase="TRAIN")
    feed = {name: value.requires_grad_() for name, value in feed.items()}
    out = model(feed)
    assert not out["hT"].requires_grad and not out["cT"].requires_grad
    out["h"].sum().backward()
    assert feed["h0"].grad is None and feed["c0"].grad is None
    assert torch.isfinite(feed["x"].grad).all()


# ---------------------------------------------------------------- shapes and fillers

@pytest.mark.parametrize("layer_type", ["LSTM", "RNN"])
@pytest.mark.parametrize("static", [False, True])
def test_blob_and_top_shapes_agree_with_infer_shapes(layer_type, static):
    inputs = {"x": X, "cont": CONT, **({"x_static": X_STATIC} if static else {})}
    model, feed = build(layer_type, recurrent_fields(), inputs, ["y"])
    with torch.no_grad():
        out = model(feed)
    inferred = infer_shapes(model.net).layers[-1]
    assert tuple(tuple(b.shape) for b in model.layer_blobs[len(feed)]) == inferred.params
    assert (tuple(out["y"].shape),) == inferred.tops == ((T, N, HIDDEN),)


def test_fillers_are_recurrent_params():
    fields = {"recurrent_param": {"num_output": HIDDEN, "weight_filler": {"type": "constant", "value": 0.5},
                                  "bias_filler": {"type": "constant", "value": 2.0}}}
    model, feed = build("RNN", fields, {"x": X, "cont": CONT}, ["o"])
    with torch.no_grad():
        model(feed)
    values = [float(b.detach().unique()) for b in model.layer_blobs[len(feed)]]
    assert values == [0.5, 2.0, 0.5, 0.5, 2.0]  # W_xh, b_h, W_hh, W_ho, b_o


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("layer_type,fields,inputs,tops,message", [
    ("LSTM", {}, {"x": X, "cont": CONT}, ["h"], "recurrent_param.num_output must be positive"),
    ("LSTM", recurrent_fields(), {"x": X}, ["h"], r"it takes bottoms x, cont, \[x_static\]: 2 or 3, got 1"),
    ("LSTM", recurrent_fields(expose=True), {"x": X, "cont": CONT}, ["h", "hT", "cT"],
     r"it takes bottoms x, cont, \[x_static\], h_0, c_0: 4 or 5, got 2"),
    ("RNN", recurrent_fields(expose=True), {"x": X, "cont": CONT, "h0": np.zeros((1, N, HIDDEN))}, ["o"],
     r"it makes the output and the last states: 2 top\(s\), got 1"),
    ("RNN", recurrent_fields(), {"x": X[:, :, 0, 0], "cont": CONT}, ["o"], "x needs more than 2 axes"),
    ("RNN", recurrent_fields(), {"x": X, "cont": CONT[:, :2]}, ["o"], r"cont must be T x N = \(5, 3\)"),
    ("RNN", recurrent_fields(expose=True), {"x": X, "cont": CONT, "h0": np.zeros((1, N, 2))}, ["o", "hT"],
     r"an initial hidden state must be 1 x N x num_output = \(1, 3, 4\), got \(1, 3, 2\)"),
    ("LSTMUnit", {}, {"c": np.zeros((1, N, 2)), "x": np.zeros((1, N, 6)), "cont": CONT[:1]}, ["c2", "h"],
     "the gate input has 6 channels, but 4 x 2 are needed"),
])
def test_bad_layers_are_reported(layer_type, fields, inputs, tops, message):
    with pytest.raises(CaffeconfError, match=f"layer 'l' \\({layer_type}\\): {message}"):
        model, feed = build(layer_type, fields, inputs, tops)
        model(feed)


def test_a_changed_number_of_timesteps_is_an_error_as_in_caffe():
    model, feed = build("RNN", recurrent_fields(), {"x": X, "cont": CONT}, ["o"])
    with torch.no_grad():
        model(feed)
        with pytest.raises(CaffeconfError, match="number of timesteps changed from 5 to 4"):
            model({"x": feed["x"][:4], "cont": feed["cont"][:4]})
