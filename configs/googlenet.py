"""GoogLeNet built in Python with configs/googlenet.yaml's modules: the same net as the config
(train/val, or deploy with deploy=True), byte for byte. Run it to print the prototxt."""

import sys
from pathlib import Path

from caffeconf import netspec as cs

HERE = Path(__file__).resolve().parent
INCEPTIONS = {  # n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}
PARAMS = ("n1x1", "n3x3_reduce", "n3x3", "n5x5_reduce", "n5x5", "pool_proj")


def googlenet(deploy: bool = False) -> cs.Net:
    lib = cs.modules(HERE / "googlenet.yaml", stage="deploy" if deploy else None)
    n = cs.Net("GoogleNet")
    if deploy:
        n.data = cs.Input(shape=[10, 3, 224, 224])
    for phase, mirror, split, batch in () if deploy else (("TRAIN", True, "train", 32), ("TEST", False, "val", 50)):
        n.data, n.label = cs.Data(ntop=2, include={"phase": phase}, backend="LMDB", batch_size=batch,
                                  source=f"examples/imagenet/ilsvrc12_{split}_lmdb",
                                  transform_param={"mirror": mirror, "crop_size": 224, "mean_value": [104, 117, 123]})
    x = lib.conv(n.data, name="conv1/7x7_s2", num_output=64, kernel=7, pad=3, stride=2, relu="conv1/relu_7x7", std=0.1)
    n["pool1/3x3_s2"] = cs.Pooling(x, pool="MAX", kernel_size=3, stride=2)
    n["pool1/norm1"] = cs.LRN(n["pool1/3x3_s2"], local_size=5, alpha=0.0001, beta=0.75)
    x = lib.conv(n["pool1/norm1"], name="conv2/3x3_reduce", num_output=64, kernel=1, relu="conv2/relu_3x3_reduce",
                 std=0.1)
    x = lib.conv(x, name="conv2/3x3", num_output=192, kernel=3, pad=1, relu="conv2/relu_3x3")
    n["conv2/norm2"] = cs.LRN(x, local_size=5, alpha=0.0001, beta=0.75)
    x = n["pool2/3x3_s2"] = cs.Pooling(n["conv2/norm2"], pool="MAX", kernel_size=3, stride=2)
    for stage in ("3", "4", "5"):
        for block in (key for key in INCEPTIONS if key[0] == stage):
            x = lib.inception(x, name=f"inception_{block}", **dict(zip(PARAMS, INCEPTIONS[block])))
            if block in ("4a", "4d") and not deploy:
                lib.auxiliary(x, n.label, name=f"loss{1 if block == '4a' else 2}")
        if stage != "5":
            x = n[f"pool{stage}/3x3_s2"] = cs.Pooling(x, pool="MAX", kernel_size=3, stride=2)
    n["pool5/7x7_s1"] = cs.Pooling(x, pool="AVE", kernel_size=7, stride=1)
    n["pool5/drop_7x7_s1"] = cs.Dropout(n["pool5/7x7_s1"], in_place=True, dropout_ratio=0.4)
    scores = lib.head(n["pool5/7x7_s1"], None if deploy else n.label, name="loss3")
    if deploy:
        n.prob = cs.Softmax(scores)
    return n


if __name__ == "__main__":
    sys.stdout.write(googlenet(deploy="--deploy" in sys.argv).to_net().to_prototxt())
