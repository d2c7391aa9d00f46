"""Old Caffe formats → current ones: V0/V1 `NetParameter` → V2, old `SolverParameter` → current.

The steps and their order are those of Caffe's `UpgradeNetAsNeeded` (upgrade_proto.cpp):
V0 → V1 (padding layers folded first), data transformation fields → `transform_param`,
V1 → V2, net-level inputs → an `Input` layer, BatchNorm param specs frozen. What Caffe treats
as fatal is a located `CaffeconfError`; what Caffe logs and continues past is a warning in
the `UpgradeReport`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from . import facts, prototxt
from ..errors import CaffeconfError, Diagnostic, Span, did_you_mean
from . import messages

# A V0 layer type with no V1 counterpart: the upgrade folds it into the conv or pool after it.
V0_PADDING_TYPE = "padding"
# V0 `layer.type` strings -> V1 LayerType names (any other string is fatal in Caffe).
V0_LAYER_TYPES = {
    "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION",
    "data": "DATA", "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS",
    "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA", "hdf5_output": "HDF5_OUTPUT",
    "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
    "innerproduct": "INNER_PRODUCT", "lrn": "LRN",
    "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS", "pool": "POOLING",
    "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
    "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
}

# V1 LayerType names -> V2 type strings.
V1_LAYER_TYPES = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# Where each V0 field goes in the V1 layer, by V0 layer type ("*": any type). A V0 field set
# on a type it has no entry for is dropped with an error log in Caffe (a warning here).
V0_FIELD_MOVES: dict[str, dict[str, str]] = {
    "num_output": {"conv": "convolution_param.num_output",
                   "innerproduct": "inner_product_param.num_output"},
    "biasterm": {"conv": "convolution_param.bias_term",
                 "innerproduct": "inner_product_param.bias_term"},
    "weight_filler": {"conv": "convolution_param.weight_filler",
                      "innerproduct": "inner_product_param.weight_filler"},
    "bias_filler": {"conv": "convolution_param.bias_filler",
                    "innerproduct": "inner_product_param.bias_filler"},
    "pad": {"conv": "convolution_param.pad", "pool": "pooling_param.pad"},
    "kernelsize": {"conv": "convolution_param.kernel_size", "pool": "pooling_param.kernel_size"},
    "group": {"conv": "convolution_param.group"},
    "stride": {"conv": "convolution_param.stride", "pool": "pooling_param.stride"},
    "pool": {"pool": "pooling_param.pool"},
    "dropout_ratio": {"dropout": "dropout_param.dropout_ratio"},
    "local_size": {"lrn": "lrn_param.local_size"},
    "alpha": {"lrn": "lrn_param.alpha"},
    "beta": {"lrn": "lrn_param.beta"},
    "k": {"lrn": "lrn_param.k"},
    "source": {"data": "data_param.source", "hdf5_data": "hdf5_data_param.source",
               "images": "image_data_param.source", "window_data": "window_data_param.source",
               "infogain_loss": "infogain_loss_param.source"},
    "scale": {"*": "transform_param.scale"},
    "meanfile": {"*": "transform_param.mean_file"},
    "batchsize": {"data": "data_param.batch_size", "hdf5_data": "hdf5_data_param.batch_size",
                  "images": "image_data_param.batch_size",
                  "window_data": "window_data_param.batch_size"},
    "cropsize": {"*": "transform_param.crop_size"},
    "mirror": {"*": "transform_param.mirror"},
    "rand_skip": {"data": "data_param.rand_skip", "images": "image_data_param.rand_skip"},
    "shuffle_images": {"images": "image_data_param.shuffle"},
    "new_height": {"images": "image_data_param.new_height"},
    "new_width": {"images": "image_data_param.new_width"},
    "concat_dim": {"concat": "concat_param.concat_dim"},
    "det_fg_threshold": {"window_data": "window_data_param.fg_threshold"},
    "det_bg_threshold": {"window_data": "window_data_param.bg_threshold"},
    "det_fg_fraction": {"window_data": "window_data_param.fg_fraction"},
    "det_context_pad": {"window_data": "window_data_param.context_pad"},
    "det_crop_mode": {"window_data": "window_data_param.crop_mode"},
    "hdf5_output_param": {"hdf5_output": "hdf5_output_param"},
}
# V0 fields copied as they are; `new_num` and `new_channels` Caffe never carries over.
V0_COPIED_FIELDS = ("name", "type", "blobs", "blobs_lr", "weight_decay")
V0_DROPPED_FIELDS = ("new_num", "new_channels")

# V1 data layers whose own param message once held the transformation fields.
DATA_LAYER_PARAMS = {"DATA": "data_param", "IMAGE_DATA": "image_data_param",
                     "WINDOW_DATA": "window_data_param"}
TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")

# V1 fields converted one by one; every other V1 field is a `*_param` copied as it is.
V1_CONVERTED_FIELDS = ("bottom", "top", "name", "include", "exclude", "type", "blobs", "param",
                       "blob_share_mode", "blobs_lr", "weight_decay", "loss_weight", "layer")

# The old `solver_type` enum names: the types in capitals.
SOLVER_TYPES = {name.upper(): name for name in facts.SOLVER_TYPES}


@dataclass
class UpgradeReport:
    """What an upgrade did (`steps`, in order) and what Caffe would only have logged."""

    steps: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    def warn(self, span: Span | None, message: str) -> None:
        self.warnings.append(Diagnostic(message, span, severity="warning"))

    def summary(self) -> str:
        return "; ".join(self.steps) if self.steps else "already in the current format"


@dataclass(frozen=True)
class Locator:
    """Spans of top-level fields in the text a message was read from, when there is one.

    `fixed` places everything at one span (a net written inline in a solver)."""

    source: str | None = None
    outline: prototxt.Outline | None = None
    fixed: Span | None = None

    @classmethod
    def of(cls, source: str | None) -> "Locator":
        return cls(source, prototxt.outline_file(source) if source else None)

    def field(self, name: str, index: int = 0) -> Span | None:
        if self.fixed or self.outline is None:
            return self.fixed
        found = self.outline.named(name)
        if index >= len(found):
            return None
        return Span(self.source, found[index].line, found[index].col)


# ---------------------------------------------------------------------------
# Nets


def net_version(net: messages.NetParameter) -> str:
    """"V0" (nested `layers { layer {} }`), "V1" (`layers`) or "V2" (`layer`)."""
    if any(layer.HasField("layer") for layer in net.layers):
        return "V0"
    return "V1" if len(net.layers) else "V2"


def upgrade_net(net: messages.NetParameter, source: str | None = None) -> messages.NetParameter:
    """A current (V2) copy of `net`; `source` (the file it came from) locates errors."""
    return upgrade_net_with_report(net, source)[0]


def upgrade_net_with_report(net: messages.NetParameter, source: str | None = None,
                            where: Locator | None = None) -> tuple[messages.NetParameter, UpgradeReport]:
    """The upgraded copy and what was done; `where` (or the file at `source`) places errors."""
    where = where or Locator.of(source)
    upgraded = copy.deepcopy(net)
    report = UpgradeReport()
    _refuse_mixed_layers(upgraded, where)
    for needs_step, step in _NET_STEPS:
        if needs_step(upgraded):
            before = copy.deepcopy(upgraded)
            description = step(upgraded, where, report)
            if upgraded != before:
                report.steps.append(description)
    _refuse_kept_input_dims(upgraded, where)
    return upgraded, report


def _refuse_mixed_layers(net: messages.NetParameter, where: Locator) -> None:
    if len(net.layer) and len(net.layers):
        raise CaffeconfError.at(
            where.field("layers"),
            "net mixes current 'layer' entries with legacy 'layers' entries "
            "(Caffe would upgrade the 'layers' and silently drop every 'layer')",
            hint="write every layer in one format; `caffeconf upgrade` converts a legacy net")


# -- V0 -> V1


def _upgrade_v0(net: messages.NetParameter, where: Locator, report: UpgradeReport) -> str:
    kept, folded = _fold_v0_padding(net, where)
    padding = len(net.layers) - len(kept)
    upgraded = messages.NetParameter()
    if net.HasField("name"):
        upgraded.name = net.name
    for index in kept:
        _upgrade_v0_layer(net.layers[index], folded.get(index), upgraded.layers.add(),
                          where.field("layers", index), report)
    upgraded.input.extend(net.input)
    upgraded.input_dim.extend(net.input_dim)
    if net.HasField("force_backward"):
        upgraded.force_backward = net.force_backward
    net.CopyFrom(upgraded)  # like Caffe, no other net-level field survives a V0 upgrade
    return "V0 → V1" + (f" ({padding} padding layers folded)" if padding else "")


def _fold_v0_padding(net: messages.NetParameter, where: Locator
                     ) -> tuple[list[int], dict[int, tuple[list[str], int]]]:
    """Indices of the non-padding layers, and for each one fed by a padding layer its new
    bottoms and the padding to apply (Caffe's UpgradeV0PaddingLayers)."""
    producer = {name: None for name in net.input}  # blob -> index of the layer writing it last
    kept: list[int] = []
    folded: dict[int, tuple[list[str], int]] = {}
    for index, connection in enumerate(net.layers):
        span = where.field("layers", index)
        if connection.layer.type != V0_PADDING_TYPE:
            kept.append(index)
        for slot, blob in enumerate(connection.bottom):
            if blob not in producer:
                raise CaffeconfError.at(span, f"layer '{connection.layer.name}' reads blob "
                                              f"'{blob}', which no earlier layer or input produces")
            source = producer[blob]
            if source is not None and net.layers[source].layer.type == V0_PADDING_TYPE:
                folded[index] = _fold_one_padding(connection, slot, net.layers[source], span)
        for blob in connection.top:
            producer[blob] = index
    return kept, folded


def _fold_one_padding(consumer: messages.V1LayerParameter, slot: int,
                      padding: messages.V1LayerParameter, span: Span | None
                      ) -> tuple[list[str], int]:
    name = consumer.layer.name
    if consumer.layer.type not in ("conv", "pool"):
        raise CaffeconfError.at(span, f"padding layer '{padding.layer.name}' feeds "
                                      f"'{name}' of type '{consumer.layer.type}'; Caffe folds "
                                      "padding only into 'conv' and 'pool' layers")
    if len(consumer.bottom) != 1 or len(padding.bottom) != 1 or len(padding.top) != 1:
        raise CaffeconfError.at(span, f"padding layer '{padding.layer.name}' and its consumer "
                                      f"'{name}' must each have exactly one input and output")
    bottoms = list(consumer.bottom)
    bottoms[slot] = padding.bottom[0]
    return bottoms, padding.layer.pad


def _upgrade_v0_layer(connection: messages.V1LayerParameter,
                      folded: tuple[list[str], int] | None,
                      out: messages.V1LayerParameter, span: Span | None,
                      report: UpgradeReport) -> None:
    v0 = copy.deepcopy(connection.layer)
    out.bottom.extend(folded[0] if folded else connection.bottom)
    out.top.extend(connection.top)
    if folded:
        v0.pad = folded[1]
    if not connection.HasField("layer"):
        return
    if v0.HasField("name"):
        out.name = v0.name
    if v0.HasField("type"):
        out.type = messages.V1LayerParameter.LayerType.Value(_v1_type_of(v0.type, span))
    out.blobs.extend(v0.blobs)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)
    for descriptor, value in v0.ListFields():
        moves = V0_FIELD_MOVES.get(descriptor.name)
        if moves is None:
            continue
        target = moves.get(v0.type, moves.get("*"))
        if target is None:
            report.warn(span, f"V0 field '{descriptor.name}' does not apply to layer "
                              f"'{v0.name}' of type '{v0.type}'; Caffe drops it")
            continue
        _move(descriptor, value, out, target)


def _v1_type_of(v0_type: str, span: Span | None) -> str:
    if v0_type not in V0_LAYER_TYPES:
        raise CaffeconfError.at(span, f"unknown V0 layer type '{v0_type}'",
                                hint=did_you_mean(v0_type, V0_LAYER_TYPES))
    return V0_LAYER_TYPES[v0_type]


def _move(descriptor: FieldDescriptor, value, out: Message, target: str) -> None:
    """Set `out.<target>` (a dotted path) to a V0 field's value."""
    *parents, name = target.split(".")
    for parent in parents:
        out = getattr(out, parent)
    target_field = out.DESCRIPTOR.fields_by_name[name]
    if target_field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(out, name).CopyFrom(value)
    elif target_field.type == FieldDescriptor.TYPE_ENUM:  # same value names, other enum
        setattr(out, name, target_field.enum_type.values_by_name[
            descriptor.enum_type.values_by_number[value].name].number)
    elif target_field.is_repeated:
        getattr(out, name).append(value)
    else:
        setattr(out, name, value)


# -- data transformation fields


def _old_transform_fields(layer: messages.V1LayerParameter) -> list[str]:
    type_name = messages.V1LayerParameter.LayerType.Name(layer.type)
    param_name = DATA_LAYER_PARAMS.get(type_name)
    if param_name is None:
        return []
    return [name for name in TRANSFORM_FIELDS if getattr(layer, param_name).HasField(name)]


def _upgrade_data_transformation(net: messages.NetParameter, where: Locator,
                                 report: UpgradeReport) -> str:
    for layer in net.layers:
        for name in _old_transform_fields(layer):
            param = getattr(layer, DATA_LAYER_PARAMS[messages.V1LayerParameter.LayerType.Name(
                layer.type)])
            setattr(layer.transform_param, name, getattr(param, name))
            param.ClearField(name)
    return "data transformation fields → transform_param"


# -- V1 -> V2


def _upgrade_v1(net: messages.NetParameter, where: Locator, report: UpgradeReport) -> str:
    layers = list(net.layers)
    net.ClearField("layers")
    for v1 in layers:
        _upgrade_v1_layer(v1, net.layer.add())
    return f"V1 → V2 ({len(layers)} layers)"


def _upgrade_v1_layer(v1: messages.V1LayerParameter, out: messages.LayerParameter) -> None:
    out.bottom.extend(v1.bottom)
    out.top.extend(v1.top)
    if v1.HasField("name"):
        out.name = v1.name
    out.include.extend(v1.include)
    out.exclude.extend(v1.exclude)
    if v1.HasField("type"):
        out.type = V1_LAYER_TYPES[messages.V1LayerParameter.LayerType.Name(v1.type)]
    out.blobs.extend(v1.blobs)
    share_modes = [messages.ParamSpec.DimCheckMode.Value(
        messages.V1LayerParameter.DimCheckMode.Name(mode)) for mode in v1.blob_share_mode]
    for attribute, values in (("name", v1.param), ("share_mode", share_modes),
                              ("lr_mult", v1.blobs_lr), ("decay_mult", v1.weight_decay)):
        for index, value in enumerate(values):
            while len(out.param) <= index:
                out.param.add()
            setattr(out.param[index], attribute, value)
    out.loss_weight.extend(v1.loss_weight)
    for descriptor, value in v1.ListFields():
        if descriptor.name not in V1_CONVERTED_FIELDS:
            getattr(out, descriptor.name).CopyFrom(value)


# -- net-level inputs


def _needs_input_upgrade(net: messages.NetParameter) -> bool:
    """Net-level inputs, in a dialect with the Input layer (a fork from before it, PSPNet's,
    keeps them as they are, as its Caffe does)."""
    return len(net.input) > 0 and "input_param" in messages.descriptor("LayerParameter").fields_by_name


def _refuse_kept_input_dims(net: messages.NetParameter, where: Locator) -> None:
    """What the Net::Init of a Caffe from before the Input layer CHECKs of the net-level inputs
    it keeps: input_dim or input_shape, not both, and input_dim four per input."""
    if not len(net.input_dim):
        return
    if len(net.input_shape):
        raise CaffeconfError.at(where.field("input_dim"), "net sets both input_shape and the deprecated "
                                "input_dim", hint="keep one of them")
    if len(net.input_dim) != 4 * len(net.input):
        raise CaffeconfError.at(where.field("input_dim"), f"{len(net.input)} inputs need "
                                f"{4 * len(net.input)} input_dim values (4 per input), found {len(net.input_dim)}")


def _upgrade_input(net: messages.NetParameter, where: Locator, report: UpgradeReport) -> str:
    """Legacy `input` + `input_shape`/`input_dim` become one Input layer named "input", first.
    Inputs without shapes (legacy caffemodels) are simply dropped, as Caffe does."""
    shapes = _input_shapes(net, where)
    if shapes is not None:
        layer = messages.LayerParameter(name="input", type="Input", top=list(net.input))
        layer.input_param.shape.extend(shapes)
        layers = [layer, *net.layer]
        net.ClearField("layer")
        net.layer.extend(layers)
    for name in ("input", "input_shape", "input_dim"):
        net.ClearField(name)
    return "net-level input → Input layer" if shapes is not None else "shapeless inputs dropped"


def _input_shapes(net: messages.NetParameter, where: Locator) -> list[messages.BlobShape] | None:
    count = len(net.input)
    if len(net.input_shape):  # takes precedence over input_dim, as in Caffe
        if len(net.input_shape) < count:
            raise CaffeconfError.at(where.field("input_shape"),
                                    f"{count} inputs but only {len(net.input_shape)} input_shape")
        return list(net.input_shape)[:count]
    if len(net.input_dim):
        if len(net.input_dim) < 4 * count:
            raise CaffeconfError.at(where.field("input_dim"),
                                    f"{count} inputs need {4 * count} input_dim values "
                                    f"(4 per input), found {len(net.input_dim)}")
        dims = list(net.input_dim)
        return [messages.BlobShape(dim=dims[4 * i: 4 * i + 4]) for i in range(count)]
    return None


# -- BatchNorm


def _is_old_batch_norm(layer: messages.LayerParameter) -> bool:
    # The first BatchNorm definition asked for three param specs with lr_mult 0; Caffe now
    # forces that, leaving everything else in the specs alone.
    return layer.type == "BatchNorm" and len(layer.param) == 3


def _upgrade_batch_norm(net: messages.NetParameter, where: Locator, report: UpgradeReport) -> str:
    for layer in net.layer:
        if _is_old_batch_norm(layer):
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0
    return "BatchNorm param lr_mult/decay_mult → 0"


Step = Callable[[messages.NetParameter, Locator, UpgradeReport], str]
_NET_STEPS: tuple[tuple[Callable[[messages.NetParameter], bool], Step], ...] = (
    (lambda net: net_version(net) == "V0", _upgrade_v0),
    (lambda net: any(_old_transform_fields(layer) for layer in net.layers), _upgrade_data_transformation),
    (lambda net: len(net.layers) > 0, _upgrade_v1),
    (_needs_input_upgrade, _upgrade_input),
    (lambda net: any(_is_old_batch_norm(layer) for layer in net.layer), _upgrade_batch_norm),
)


# ---------------------------------------------------------------------------
# Solvers

INLINE_NETS = ("net_param", "train_net_param")


def upgrade_solver(solver: messages.SolverParameter, source: str | None = None) -> messages.SolverParameter:
    """A current copy of `solver`, its inline nets upgraded too."""
    return upgrade_solver_with_report(solver, source)[0]


def upgrade_solver_with_report(solver: messages.SolverParameter, source: str | None = None
                               ) -> tuple[messages.SolverParameter, UpgradeReport]:
    where = Locator.of(source)
    upgraded = copy.deepcopy(solver)
    report = UpgradeReport()
    if upgraded.HasField("solver_type"):
        report.steps.append(_upgrade_solver_type(upgraded, where))
    for name in INLINE_NETS:
        if upgraded.HasField(name):
            _upgrade_inline_net(getattr(upgraded, name), name, where.field(name), report)
    for index, net in enumerate(upgraded.test_net_param):
        _upgrade_inline_net(net, f"test_net_param[{index}]",
                            where.field("test_net_param", index), report)
    return upgraded, report


def _upgrade_solver_type(solver: messages.SolverParameter, where: Locator) -> str:
    if solver.HasField("type"):
        raise CaffeconfError.at(where.field("solver_type"),
                                "solver sets both the old 'solver_type' and the new 'type'",
                                hint="keep only 'type'")
    old = messages.SolverParameter.SolverType.Name(solver.solver_type)
    solver.type = SOLVER_TYPES[old]
    solver.ClearField("solver_type")
    return f"solver_type {old} → type \"{solver.type}\""


def _upgrade_inline_net(net: messages.NetParameter, name: str, span: Span | None,
                        report: UpgradeReport) -> None:
    upgraded, net_report = upgrade_net_with_report(net, where=Locator(fixed=span))
    net.CopyFrom(upgraded)
    report.steps.extend(f"{name}: {step}" for step in net_report.steps)
    report.warnings.extend(net_report.warnings)
