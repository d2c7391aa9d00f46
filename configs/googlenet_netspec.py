"""GoogLeNet in plain Python, pycaffe NetSpec style (no YAML): the same net as
configs/googlenet.yaml (train/val, or deploy with deploy=True), byte for byte."""

import sys

from caffeconf import netspec as cs

LEARN = [{"lr_mult": 1, "decay_mult": 1}, {"lr_mult": 2, "decay_mult": 0}]
INCEPTIONS = {  # n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(deploy: bool = False) -> cs.Net:
    n = cs.Net("GoogleNet")

    def conv(x, name, num_output, kernel, pad=None, stride=None, relu=None, std=0.03):
        filler = {"type": "xavier", "std": std} if deploy else {"type": "xavier"}
        n[name] = cs.Convolution(x, param=LEARN, num_output=num_output, kernel_size=kernel, pad=pad, stride=stride,
                                 weight_filler=filler, bias_filler={"type": "constant", "value": 0.2})
        n[relu or name.replace("/", "/relu_")] = cs.ReLU(n[name], in_place=True)
        return n[name]

    def inception(x, name, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj):
        branches = [conv(x, f"{name}/1x1", n1x1, 1),
                    conv(conv(x, f"{name}/3x3_reduce", n3x3_reduce, 1, std=0.09), f"{name}/3x3", n3x3, 3, pad=1),
                    conv(conv(x, f"{name}/5x5_reduce", n5x5_reduce, 1, std=0.2), f"{name}/5x5", n5x5, 5, pad=2)]
        n[f"{name}/pool"] = cs.Pooling(x, pool="MAX", kernel_size=3, stride=1, pad=1)
        branches.append(conv(n[f"{name}/pool"], f"{name}/pool_proj", pool_proj, 1, std=0.1))
        n[f"{name}/output"] = cs.Concat(*branches)
        return n[f"{name}/output"]

    def classifier(x, name, loss, loss_weight):
        n[f"{name}/classifier"] = cs.InnerProduct(x, param=LEARN, num_output=1000, weight_filler={"type": "xavier"},
                                                  bias_filler={"type": "constant", "value": 0})
        if not deploy:
            n[f"{name}/{name}"] = cs.SoftmaxWithLoss(n[f"{name}/classifier"], n.label, name=loss,
                                                     loss_weight=loss_weight)
            for k in (1, 5):
                n[f"{name}/top-{k}"] = cs.Accuracy(n[f"{name}/classifier"], n.label, include={"phase": "TEST"},
                                                   **({"top_k": 5} if k == 5 else {}))
        return n[f"{name}/classifier"]

    def auxiliary(x, name):
        n[f"{name}/ave_pool"] = cs.Pooling(x, pool="AVE", kernel_size=5, stride=3)
        conv(n[f"{name}/ave_pool"], f"{name}/conv", 128, 1)
        n[f"{name}/fc"] = cs.InnerProduct(n[f"{name}/conv"], param=LEARN, num_output=1024,
                                          weight_filler={"type": "xavier"},
                                          bias_filler={"type": "constant", "value": 0.2})
        n[f"{name}/relu_fc"] = cs.ReLU(n[f"{name}/fc"], in_place=True)
        n[f"{name}/drop_fc"] = cs.Dropout(n[f"{name}/fc"], in_place=True, dropout_ratio=0.7)
        classifier(n[f"{name}/fc"], name, f"{name}/loss", 0.3)

    if deploy:
        n.data = cs.Input(shape=[10, 3, 224, 224])
    for phase, mirror, split, batch in () if deploy else (("TRAIN", True, "train", 32), ("TEST", False, "val", 50)):
        n.data, n.label = cs.Data(ntop=2, include={"phase": phase}, backend="LMDB", batch_size=batch,
                                  source=f"examples/imagenet/ilsvrc12_{split}_lmdb",
                                  transform_param={"mirror": mirror, "crop_size": 224, "mean_value": [104, 117, 123]})
    x = conv(n.data, "conv1/7x7_s2", 64, 7, pad=3, stride=2, relu="conv1/relu_7x7", std=0.1)
    n["pool1/3x3_s2"] = cs.Pooling(x, pool="MAX", kernel_size=3, stride=2)
    n["pool1/norm1"] = cs.LRN(n["pool1/3x3_s2"], local_size=5, alpha=0.0001, beta=0.75)
    x = conv(n["pool1/norm1"], "conv2/3x3_reduce", 64, 1, std=0.1)
    n["conv2/norm2"] = cs.LRN(conv(x, "conv2/3x3", 192, 3, pad=1), local_size=5, alpha=0.0001, beta=0.75)
    x = n["pool2/3x3_s2"] = cs.Pooling(n["conv2/norm2"], pool="MAX", kernel_size=3, stride=2)
    for stage in ("3", "4", "5"):
        for block in (key for key in INCEPTIONS if key[0] == stage):
            x = inception(x, f"inception_{block}", *INCEPTIONS[block])
            if block in ("4a", "4d") and not deploy:
                auxiliary(x, f"loss{1 if block == '4a' else 2}")
        if stage != "5":
            x = n[f"pool{stage}/3x3_s2"] = cs.Pooling(x, pool="MAX", kernel_size=3, stride=2)
    n["pool5/7x7_s1"] = cs.Pooling(x, pool="AVE", kernel_size=7, stride=1)
    n["pool5/drop_7x7_s1"] = cs.Dropout(n["pool5/7x7_s1"], in_place=True, dropout_ratio=0.4)
    scores = classifier(n["pool5/7x7_s1"], "loss3", "loss3/loss3", 1)
    if deploy:
        n.prob = cs.Softmax(scores)
    return n


if __name__ == "__main__":
    sys.stdout.write(googlenet(deploy="--deploy" in sys.argv).to_net().to_prototxt())
