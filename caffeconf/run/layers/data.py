"""Layers that start a net: Input (blobs fed by the caller), DummyData, and the
database readers, whose tops the caller feeds too: `caffeconf.train.data` reads
their LMDB, image lists and HDF5 files when training or testing."""

from __future__ import annotations

import dataclasses

from ...caffe.facts import FED_TYPES
from ...inspect.shapes import net_inputs
from ...ir import Layer, Net
from ..fillers import fill
from ..params import Params
from .registry import LayerContext, Op, register

def _fed(ctx: LayerContext) -> Op:
    """A layer whose tops come from outside the net when caffeconf runs it."""
    def forward(bottoms, blobs):
        raise ctx.error("its tops must be fed as inputs")  # the interpreter feeds them instead

    return Op(forward=forward)


for _type in FED_TYPES:
    register(_type)(_fed)


def declared_shapes(layer_fields, tops) -> list[tuple[int, ...]] | None:
    """The shapes an Input layer declares for its tops (one shape for all, or one each)."""
    shapes = [tuple(shape.get("dim", ())) for shape in layer_fields.get("input_param", {}).get("shape", ())]
    if not shapes:
        return None
    return shapes * len(tops) if len(shapes) == 1 else shapes


def inputs_as_layer(net: Net) -> Net:
    """A net that kept net-level inputs (a fork's caffe.proto from before the Input layer, as
    PSPNet's and Faster R-CNN's) with them as the leading Input layer its runner feeds, as BVLC's
    upgrade would make it; other nets as they are."""
    inputs = net_inputs(net)
    if not inputs or None in inputs.values():
        return net
    shapes = [{"dim": list(shape)} for shape in inputs.values()]
    layer = Layer("input", "Input", (), tuple(inputs), {"input_param": {"shape": shapes}})
    fields = {k: v for k, v in net.fields.items() if k not in ("input", "input_shape", "input_dim")}
    return dataclasses.replace(net, layers=(layer, *net.layers), fields=fields)


@register("DummyData")
def dummy_data(ctx: LayerContext) -> Op:
    p = ctx.param("dummy_data_param")
    tops = len(ctx.layer.tops)
    shapes = _dummy_shapes(ctx, p, tops)
    fillers = list(p["data_filler"])
    if len(fillers) not in (0, 1, tops):
        raise ctx.error(f"dummy_data_param has {len(fillers)} data_filler entries; give 0, 1 or {tops}")
    fillers = fillers or [Params.of("FillerParameter", None)]
    fillers = fillers * tops if len(fillers) == 1 else fillers

    def forward(bottoms, blobs):
        # Caffe refills every forward pass (constant fillers give the same data each time).
        return [fill(shape, spec, ctx.generator) for shape, spec in zip(shapes, fillers)]

    return Op(forward=forward)


def _dummy_shapes(ctx: LayerContext, p: Params, tops: int) -> list[tuple[int, ...]]:
    shapes = [tuple(shape["dim"]) for shape in p["shape"]]
    legacy = [list(p[name]) for name in ("num", "channels", "height", "width")]
    if shapes and any(legacy):
        raise ctx.error("give dummy_data_param.shape or num/channels/height/width, not both")
    if not shapes:
        if any(len(values) not in (1, tops) for values in legacy):
            raise ctx.error("dummy_data_param needs num, channels, height and width, "
                            f"each with 1 or {tops} values")
        shapes = [tuple(values[i] if len(values) > 1 else values[0] for values in legacy)
                  for i in range(tops)]
    if len(shapes) not in (1, tops):
        raise ctx.error(f"dummy_data_param has {len(shapes)} shapes; give 1 or {tops}")
    return shapes * tops if len(shapes) == 1 else shapes
