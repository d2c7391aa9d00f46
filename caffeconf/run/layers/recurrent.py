"""Recurrent layers: LSTM, RNN and the one-step LSTMUnit, as Caffe's unrolled nets compute them.

Caffe builds LSTM and RNN as an unrolled net over T timesteps; here each is one loop over
time with the same arithmetic. Bottoms are x (T x N x ...), cont (T x N; 0 starts a new
sequence), an optional x_static (N x ...) and, with expose_hidden, the initial states.
The blobs are the unrolled net's owned params in layer order:
LSTM W_xc, b_c, [W_xc_static], W_hc; RNN W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o.
recurrent_param.debug_info only makes Caffe log the unrolled net; it changes nothing here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from .registry import BlobSpec, LayerContext, Op, register


@dataclass(frozen=True)
class _Recurrence:
    """What distinguishes LSTM from RNN in the shared machinery."""

    gates: int          # rows of W_x* per hidden unit: 4 for LSTM, 1 for RNN
    states: int         # recurrent blobs: (h, c) for LSTM, (h,) for RNN


LSTM = _Recurrence(gates=4, states=2)
RNN = _Recurrence(gates=1, states=1)


# ------------------------------------------------------------------ LSTMUnit

def lstm_step(c_prev, gate_input, cont):
    """Caffe's LSTMUnit on (N, H) c_prev, (N, 4H) gate input [i, f, o, g] and (N,) cont."""
    i, f, o, g = gate_input.chunk(4, dim=-1)
    cont = cont.unsqueeze(-1)
    # Caffe sets the forget gate to exactly 0 where cont is 0, not cont * sigmoid.
    forget = torch.where(cont == 0, torch.zeros_like(f), cont * torch.sigmoid(f))
    c = forget * c_prev + torch.sigmoid(i) * torch.tanh(g)
    return c, torch.sigmoid(o) * torch.tanh(c)


@register("LSTMUnit")
def lstm_unit(ctx: LayerContext) -> Op:
    if len(ctx.layer.bottoms) != 3 or len(ctx.layer.tops) != 2:
        raise ctx.error("it takes 3 bottoms (c_prev, gate input, cont) and makes 2 tops (c, h), "
                        f"got {len(ctx.layer.bottoms)} and {len(ctx.layer.tops)}")

    def forward(bottoms, blobs):
        c_prev, gate_input, cont = bottoms
        _check_unit_shapes(ctx, c_prev.shape, gate_input.shape, cont.shape)
        # Caffe never sends a gradient to the sequence indicators.
        c, h = lstm_step(c_prev[0], gate_input[0], cont[0].detach())
        return [c.unsqueeze(0), h.unsqueeze(0)]

    return Op(forward=forward)


def _check_unit_shapes(ctx: LayerContext, c_prev, gate_input, cont) -> None:
    if len(c_prev) != 3 or len(gate_input) != 3 or len(cont) != 2:
        raise ctx.error(f"bottoms must be 1 x N x H, 1 x N x 4H and 1 x N, got "
                        f"{tuple(c_prev)}, {tuple(gate_input)} and {tuple(cont)}")
    if c_prev[0] != 1 or gate_input[0] != 1 or cont[0] != 1:
        raise ctx.error("each bottom must hold a single timestep (first axis 1)")
    if not c_prev[1] == gate_input[1] == cont[1]:
        raise ctx.error(f"bottoms disagree on the number of streams: "
                        f"{c_prev[1]}, {gate_input[1]} and {cont[1]}")
    if gate_input[2] != 4 * c_prev[2]:
        raise ctx.error(f"the gate input has {gate_input[2]} channels, but 4 x {c_prev[2]} are needed")


# ------------------------------------------------------------- LSTM and RNN

def _recurrent_op(ctx: LayerContext, kind: _Recurrence, steps) -> Op:
    p = ctx.param("recurrent_param")
    hidden, expose = p["num_output"], p["expose_hidden"]
    if hidden <= 0:
        raise ctx.error("recurrent_param.num_output must be positive")
    static = _has_static_input(ctx, kind, expose)
    # Without expose_hidden, Caffe starts each forward from the previous forward's last state.
    carried: list[torch.Tensor] = []
    timesteps: list[int] = []

    def specs(shapes):
        x_inputs = _input_count(ctx, shapes[0], 2, "x")
        blobs = [BlobSpec((kind.gates * hidden, x_inputs), p["weight_filler"]),
                 BlobSpec((kind.gates * hidden,), p["bias_filler"], "bias")]
        if static:
            static_inputs = _input_count(ctx, shapes[2], 1, "x_static")
            blobs.append(BlobSpec((kind.gates * hidden, static_inputs), p["weight_filler"]))
        blobs.append(BlobSpec((kind.gates * hidden, hidden), p["weight_filler"]))
        if kind is RNN:
            blobs += [BlobSpec((hidden, hidden), p["weight_filler"]), BlobSpec((hidden,), p["bias_filler"], "bias")]
        return blobs

    def forward(bottoms, blobs):
        x, cont = bottoms[0], bottoms[1].detach()
        _check_sequence(ctx, x, cont, timesteps)
        x_side = blobs[:2 + static]
        gate_x = F.linear(x.flatten(2), x_side[0], x_side[1])
        if static:
            gate_x = gate_x + _static_term(ctx, bottoms[2], x.shape[1], x_side[2])
        initial = (_exposed_states(ctx, bottoms[2 + static:], x, hidden) if expose
                   else _carried_states(carried, kind.states, x, hidden))
        output, final = steps(gate_x, cont, initial, blobs[2 + static:])
        final = [state.detach() for state in final]  # Caffe sends no gradient across batches
        if not expose:
            carried[:] = final
            return [output]
        return [output, *(state.unsqueeze(0) for state in final)]

    return Op(forward=forward, blob_specs=specs)


def _has_static_input(ctx: LayerContext, kind: _Recurrence, expose: bool) -> bool:
    """Caffe's rule: bottoms beyond x, cont and the exposed states mean one x_static."""
    required = 2 + (kind.states if expose else 0)
    bottoms, tops = len(ctx.layer.bottoms), len(ctx.layer.tops)
    names = "x, cont, [x_static]" + (", h_0, c_0" if kind is LSTM else ", h_0") * expose
    if bottoms not in (required, required + 1):
        raise ctx.error(f"it takes bottoms {names}: {required} or {required + 1}, got {bottoms}")
    if tops != 1 + (kind.states if expose else 0):
        what = "the output and the last states" if expose else "one top (set expose_hidden for the states)"
        raise ctx.error(f"it makes {what}: {1 + kind.states * expose} top(s), got {tops}")
    return bottoms == required + 1


def _input_count(ctx: LayerContext, shape, axis: int, what: str) -> int:
    """The inner-product fan-in from `axis` on (Caffe's InnerProduct needs that axis to exist)."""
    if len(shape) <= axis:
        raise ctx.error(f"{what} needs more than {axis} axes, got shape {tuple(shape)}")
    return math.prod(shape[axis:])


def _check_sequence(ctx: LayerContext, x, cont, timesteps: list[int]) -> None:
    if x.dim() < 3:
        raise ctx.error(f"x must be T x N x ..., with at least 3 axes; got {tuple(x.shape)}")
    if tuple(cont.shape) != tuple(x.shape[:2]):
        raise ctx.error(f"cont must be T x N = {tuple(x.shape[:2])}, got {tuple(cont.shape)}")
    # Caffe unrolls the net once, for the first forward's T.
    if timesteps and timesteps[0] != x.shape[0]:
        raise ctx.error(f"the number of timesteps changed from {timesteps[0]} to {x.shape[0]}; "
                        "Caffe unrolls a recurrent layer for a fixed T")
    timesteps[:] = [x.shape[0]]


def _static_term(ctx: LayerContext, x_static, streams: int, weight):
    if x_static.dim() < 2 or x_static.shape[0] != streams:
        raise ctx.error(f"x_static must be N x ... with N = {streams}, got {tuple(x_static.shape)}")
    return F.linear(x_static.flatten(1), weight)


def _exposed_states(ctx: LayerContext, states, x, hidden: int) -> list[torch.Tensor]:
    expected = (1, x.shape[1], hidden)
    for state in states:
        if tuple(state.shape) != expected:
            raise ctx.error(f"an initial hidden state must be 1 x N x num_output = {expected}, "
                            f"got {tuple(state.shape)}")
    # Caffe shares only the data of the exposed states: no gradient reaches h_0 or c_0.
    return [state[0].detach() for state in states]


def _carried_states(carried: list[torch.Tensor], count: int, x, hidden: int) -> list[torch.Tensor]:
    """The last forward's states; zeros at first, and for new streams when N grows (Caffe
    reallocates, zeroed); when N shrinks Caffe's smaller blob keeps the first N streams."""
    streams = x.shape[1]
    if not carried or carried[0].shape[0] < streams:
        return [x.new_zeros(streams, hidden) for _ in range(count)]
    return [state[:streams].to(x) for state in carried]


def _lstm_steps(gate_x, cont, initial, blobs):
    """h_t, c_t = LSTMUnit(c_{t-1}, W_hc (cont_t h_{t-1}) + gate_x_t, cont_t); output all h_t."""
    (hidden_weight,) = blobs
    h, c = initial
    outputs = []
    for t in range(gate_x.shape[0]):
        gate_input = F.linear(h * cont[t].unsqueeze(-1), hidden_weight) + gate_x[t]
        c, h = lstm_step(c, gate_input, cont[t])
        outputs.append(h)
    return torch.stack(outputs), [h, c]


def _rnn_steps(gate_x, cont, initial, blobs):
    """h_t = tanh(W_hh (cont_t h_{t-1}) + gate_x_t); output o_t = tanh(W_ho h_t + b_o)."""
    hidden_weight, output_weight, output_bias = blobs
    (h,) = initial
    states = []
    for t in range(gate_x.shape[0]):
        h = torch.tanh(F.linear(h * cont[t].unsqueeze(-1), hidden_weight) + gate_x[t])
        states.append(h)
    return torch.tanh(F.linear(torch.stack(states), output_weight, output_bias)), [h]


register("LSTM")(partial(_recurrent_op, kind=LSTM, steps=_lstm_steps))
register("RNN")(partial(_recurrent_op, kind=RNN, steps=_rnn_steps))
