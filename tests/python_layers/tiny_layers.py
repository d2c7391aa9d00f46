"""Python layers for tests/test_python_layers.py, written against pycaffe's layer interface."""

import json

import numpy as np

import caffe


class Affine(caffe.Layer):
    """top = scale * bottom + shift (param_str: JSON {"scale": s, "shift": b}); in TRAIN, plus 1000."""

    def setup(self, bottom, top):
        params = json.loads(self.param_str)
        self.scale, self.shift = params["scale"], params.get("shift", 0.0)
        self.phase_offset = 1000.0 if self.phase == caffe.TRAIN else 0.0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.scale * bottom[0].data + self.shift + self.phase_offset

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self.scale * top[0].diff


class HalfSquaredDistance(caffe.Layer):
    """A loss: sum((a - b)^2) / (2 num), as Caffe's EuclideanLoss; gradients to both bottoms."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise ValueError("needs two bottoms")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise ValueError("bottoms differ in size")
        self.difference = np.zeros_like(bottom[0].data)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.difference[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.difference ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for index, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[index]:
                bottom[index].diff[...] = sign * top[0].diff[0] * self.difference / bottom[index].num


class Ramp(caffe.Layer):
    """A data layer: top 0 is 0, 1, 2, ... in the shape param_str gives ("2,3"); top 1 (if any) its
    row sums. Counts its passes, so that a test can see Caffe's call order."""

    calls = []

    def setup(self, bottom, top):
        self.shape = tuple(int(d) for d in self.param_str.split(","))
        Ramp.calls.append("setup")

    def reshape(self, bottom, top):
        top[0].reshape(*self.shape)
        if len(top) > 1:
            top[1].reshape(self.shape[0], 1)
        Ramp.calls.append("reshape")

    def forward(self, bottom, top):
        top[0].data[...] = np.arange(top[0].count, dtype=np.float32).reshape(top[0].shape)
        if len(top) > 1:
            top[1].data[...] = top[0].data.sum(axis=1, keepdims=True)
        Ramp.calls.append("forward")

    def backward(self, top, propagate_down, bottom):
        pass


class Broken(caffe.Layer):
    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].shape)

    def forward(self, bottom, top):
        self.fail(bottom[0].count)

    def fail(self, count):
        raise ValueError(f"broken on purpose ({count} values)")

    def backward(self, top, propagate_down, bottom):
        pass


class Shapeless(caffe.Layer):
    """Forgets to shape its top."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
