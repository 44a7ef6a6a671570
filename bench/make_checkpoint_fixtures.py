"""Writes tests/fixtures/checkpoints/: reference networks in their own formats, with their embeddings.

Run with PyTorch in a separate environment (never kerasface's):

    python3 -m venv /work/torchenv && /work/torchenv/bin/pip install torch numpy onnx
    /work/torchenv/bin/python bench/make_checkpoint_fixtures.py [OUT_DIR [NAME ...]]

The networks are written here in PyTorch from the reference code's
architecture (cited per class), with random weights and random batch-norm
statistics (tests/convert/seeded.py), and evaluated on fixed random images
(0-255, RGB, channels last in the .npz) after each source's own
normalisation. Files:

- iresnet_small.pth / _legacy.pth / .onnx: arcface_torch IResNet with the
  iresnet18 layout (2, 2, 2, 2) at widths (8, 16, 16, 32), 32x32 input (a
  2x2 last map, so the flatten order matters), 16-d embedding; the ONNX is
  `torch.onnx.export` with its default constant folding (batch norms after
  convolutions folded, initializers named by number);
- mobilefacenet.pth / .onnx: arcface_torch MobileFaceNet(scale=1,
  blocks=(1, 4, 6, 2)), full size, 112x112, 128-d;
- mobilefacenet_x2.pth: arcface_torch's published "mbf" layout,
  MobileFaceNet(scale=2, blocks=(1, 4, 6, 2)), 512-d, its tensors in half
  precision, at 64x64 (a 4x4 GDC kernel instead of 7x7);
- sphere_small_legacy.pth / sphere_small.pth: sphere20a's layout (1, 2, 4, 1)
  at widths (8, 8, 16, 16), 112x96, 16-d, 10 classes in fc6, fed BGR; every
  convolution has a non-zero bias, the residual ones included, as in the
  port;
- facenet_reference.npz: facenet-pytorch InceptionResnetV1, full size, at
  80x80: its keys and shapes and its embeddings; the tests draw the same
  weights from the seed (the .pth would be 92 MB).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "convert"))
from seeded import seeded_state  # noqa: E402

torch.set_num_threads(2)


# === insightface recognition/arcface_torch/backbones/iresnet.py (widths as arguments) ===


class IBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-5)
            )

    def forward(self, x):
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = self.downsample(x) if self.downsample is not None else x
        return out + identity


class IResNet(nn.Module):
    def __init__(self, layers, widths=(64, 128, 256, 512), num_features=512, input_size=112):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        inplanes = widths[0]
        for stage, (planes, blocks) in enumerate(zip(widths, layers), start=1):
            modules = []
            for index in range(blocks):
                modules.append(IBasicBlock(inplanes, planes, 2 if index == 0 else 1))
                inplanes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*modules))
        self.bn2 = nn.BatchNorm2d(widths[-1], eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        side = input_size // 16
        self.fc = nn.Linear(widths[-1] * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


# === insightface recognition/arcface_torch/backbones/mobilefacenet.py (scale=1) ===


class ConvBlock(nn.Module):
    def __init__(self, in_c, out_c, kernel=1, stride=1, padding=0, groups=1, prelu=True):
        super().__init__()
        modules = [nn.Conv2d(in_c, out_c, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(out_c)]
        if prelu:
            modules.append(nn.PReLU(out_c))
        self.layers = nn.Sequential(*modules)

    def forward(self, x):
        return self.layers(x)


class DepthWise(nn.Module):
    def __init__(self, in_c, out_c, residual, stride, groups):
        super().__init__()
        self.residual = residual
        self.layers = nn.Sequential(
            ConvBlock(in_c, groups),
            ConvBlock(groups, groups, 3, stride, 1, groups=groups),
            ConvBlock(groups, out_c, prelu=False),
        )

    def forward(self, x):
        return x + self.layers(x) if self.residual else self.layers(x)


class Residual(nn.Module):
    def __init__(self, c, num_block, groups):
        super().__init__()
        self.layers = nn.Sequential(*[DepthWise(c, c, True, 1, groups) for _ in range(num_block)])

    def forward(self, x):
        return self.layers(x)


class GDC(nn.Module):
    def __init__(self, num_features, kernel=7):
        super().__init__()
        self.layers = nn.Sequential(
            ConvBlock(512, 512, kernel, 1, 0, groups=512, prelu=False),
            nn.Flatten(),
            nn.Linear(512, num_features, bias=False),
            nn.BatchNorm1d(num_features),
        )

    def forward(self, x):
        return self.layers(x)


class MobileFaceNet(nn.Module):
    # `scale` multiplies the stem's and the blocks' outputs only; the hidden
    # widths (`groups`), the 64 groups of the second conv and conv_sep's 512
    # are fixed, as in arcface_torch (whose `get_mbf` uses scale=2).
    def __init__(self, num_features=128, blocks=(1, 4, 6, 2), scale=1, gdc_kernel=7):
        super().__init__()
        s = scale
        self.layers = nn.ModuleList(
            [
                ConvBlock(3, 64 * s, 3, 2, 1),
                ConvBlock(64 * s, 64 * s, 3, 1, 1, groups=64),
                DepthWise(64 * s, 64 * s, False, 2, 128),
                Residual(64 * s, blocks[1], 128),
                DepthWise(64 * s, 128 * s, False, 2, 256),
                Residual(128 * s, blocks[2], 256),
                DepthWise(128 * s, 128 * s, False, 2, 512),
                Residual(128 * s, blocks[3], 256),
            ]
        )
        self.conv_sep = ConvBlock(128 * s, 512)
        self.features = GDC(num_features, gdc_kernel)

    def forward(self, x):
        for module in self.layers:
            x = module(x)
        return self.features(self.conv_sep(x))


# === clcarwin/sphereface_pytorch net_sphere.py sphere20a (widths and units as arguments) ===


class Sphere(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512), units=(1, 2, 4, 1), feature=512, classnum=10574, size=(112, 96)):
        super().__init__()
        self.plan = []
        in_c = 3
        for stage, (width, count) in enumerate(zip(widths, units), start=1):
            names = [f"{stage}_1"]
            setattr(self, f"conv{stage}_1", nn.Conv2d(in_c, width, 3, 2, 1))
            setattr(self, f"relu{stage}_1", nn.PReLU(width))
            for j in range(2, 2 + 2 * count):
                setattr(self, f"conv{stage}_{j}", nn.Conv2d(width, width, 3, 1, 1))
                setattr(self, f"relu{stage}_{j}", nn.PReLU(width))
                names.append(f"{stage}_{j}")
            self.plan.append(names)
            in_c = width
        self.fc5 = nn.Linear(widths[-1] * (size[0] // 16) * (size[1] // 16), feature)
        self.fc6_weight = nn.Parameter(torch.zeros(feature, classnum))  # AngleLinear.weight, (in, out)

    def forward(self, x):
        for names in self.plan:
            first, rest = names[0], names[1:]
            x = getattr(self, f"relu{first}")(getattr(self, f"conv{first}")(x))
            for a, b in zip(rest[::2], rest[1::2]):
                y = getattr(self, f"relu{a}")(getattr(self, f"conv{a}")(x))
                x = x + getattr(self, f"relu{b}")(getattr(self, f"conv{b}")(y))
        return self.fc5(x.flatten(1))

    def state_dict_like_port(self):
        state = self.state_dict()
        state["fc6.weight"] = state.pop("fc6_weight")
        return state


# === timesler/facenet-pytorch models/inception_resnet_v1.py ===


class BasicConv2d(nn.Module):
    def __init__(self, in_planes, out_planes, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_planes, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Block(nn.Module):
    def __init__(self, channels, width, branches, scale, relu=True):
        super().__init__()
        self.scale, self.relu = scale, relu
        for index, branch in enumerate(branches):
            setattr(self, f"branch{index}", branch)
        self.count = len(branches)
        self.conv2d = nn.Conv2d(width, channels, 1)

    def forward(self, x):
        out = torch.cat([getattr(self, f"branch{i}")(x) for i in range(self.count)], 1)
        out = self.conv2d(out) * self.scale + x
        return F.relu(out) if self.relu else out


def block35():
    return Block(256, 96, [
        BasicConv2d(256, 32, 1),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, 1, 1)),
        nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, 1, 1), BasicConv2d(32, 32, 3, 1, 1)),
    ], 0.17)


def block17():
    return Block(896, 256, [
        BasicConv2d(896, 128, 1),
        nn.Sequential(BasicConv2d(896, 128, 1), BasicConv2d(128, 128, (1, 7), 1, (0, 3)),
                      BasicConv2d(128, 128, (7, 1), 1, (3, 0))),
    ], 0.10)


def block8(scale=0.20, relu=True):
    return Block(1792, 384, [
        BasicConv2d(1792, 192, 1),
        nn.Sequential(BasicConv2d(1792, 192, 1), BasicConv2d(192, 192, (1, 3), 1, (0, 1)),
                      BasicConv2d(192, 192, (3, 1), 1, (1, 0))),
    ], scale, relu)


class Mixed6a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, 2)
        self.branch1 = nn.Sequential(BasicConv2d(256, 192, 1), BasicConv2d(192, 192, 3, 1, 1), BasicConv2d(192, 256, 3, 2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Mixed7a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, 2))
        self.branch1 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, 2))
        self.branch2 = nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, 1, 1), BasicConv2d(256, 256, 3, 2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionResnetV1(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = BasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*[block35() for _ in range(5)])
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*[block17() for _ in range(10)])
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*[block8() for _ in range(5)])
        self.block8 = block8(1.0, relu=False)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x):
        for name in ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
                     "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8"):
            x = getattr(self, name)(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.normalize(self.last_bn(self.last_linear(x)), p=2, dim=1)


# === Writing ===


def randomise(module, seed, fix=None):
    """Seeded random weights and batch-norm statistics (tests/convert/seeded.py); `fix` edits the dict."""
    state = module.state_dict()
    spec = [(k, tuple(v.shape)) for k, v in state.items()]
    values = seeded_state(spec, seed)
    if fix:
        fix(values)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in values.items()}, strict=True)
    module.eval()
    return spec


def images(count, height, width, seed):
    return np.random.RandomState(seed).uniform(0, 255, (count, height, width, 3)).astype(np.float32)


def run(module, pixels, scale, offset, bgr=False):
    x = pixels[..., ::-1] if bgr else pixels
    x = torch.from_numpy(np.ascontiguousarray(x * scale + offset).transpose(0, 3, 1, 2))
    with torch.no_grad():
        return module(x).numpy()


def save_all(module, out, name, pixels, embeddings, legacy=True, zip_=True, onnx=True, state=None, extra=None):
    state = state if state is not None else module.state_dict()
    if zip_:
        torch.save(state, out / f"{name}.pth")
    if legacy:
        torch.save(state, out / f"{name}_legacy.pth", _use_new_zipfile_serialization=False)
    if onnx:
        x = torch.zeros(1, 3, *pixels.shape[1:3])
        torch.onnx.export(module, x, str(out / f"{name}.onnx"), input_names=["input.1"], output_names=["embedding"],
                          opset_version=11, dynamo=False)
    np.savez(out / f"{name}_reference.npz", images=pixels, embeddings=embeddings, **(extra or {}))


INSIGHTFACE = (1 / 127.5, -1.0)
FIXED = (1 / 128, -127.5 / 128)


def write_iresnet_small(out):
    net = IResNet((2, 2, 2, 2), (8, 16, 16, 32), num_features=16, input_size=32)
    randomise(net, 1, fix=lambda s: s["features.weight"].fill(1.0))  # frozen at 1 in arcface_torch
    pixels = images(4, 32, 32, 11)
    save_all(net, out, "iresnet_small", pixels, run(net, pixels, *INSIGHTFACE))


def write_mobilefacenet(out):
    net = MobileFaceNet(128)
    randomise(net, 2)
    pixels = images(2, 112, 112, 12)
    save_all(net, out, "mobilefacenet", pixels, run(net, pixels, *INSIGHTFACE), legacy=False)


def write_mobilefacenet_x2(out):
    # get_mbf(scale=2) with its 512-d embedding, at 64x64 (a 4x4 GDC kernel: small images); saved in
    # half precision (a model shared after `.half()`), which halves the file; the reference embeddings
    # are the float32 network holding those rounded weights.
    net = MobileFaceNet(512, scale=2, gdc_kernel=4)

    def tame(state):
        # He-scaled weights and PReLU slopes near 1 grow the activations by ~sqrt(2) a layer (1e8 at
        # the end); batch-norm scales around 0.6 keep the embedding near 1, so that errors show.
        for key in state:
            if key.endswith(".weight") and key.replace(".weight", ".running_mean") in state:
                state[key] *= 0.6

    randomise(net, 5, fix=tame)
    net = net.half().float()
    pixels = images(2, 64, 64, 15)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    save_all(net, out, "mobilefacenet_x2", pixels, run(net, pixels, *INSIGHTFACE), legacy=False, onnx=False,
             state=state)


def write_sphere_small(out):
    # Every convolution of the port has a trained bias, the residual ones included.
    net = Sphere((8, 8, 16, 16), (1, 2, 4, 1), feature=16, classnum=10)
    randomise(net, 3)
    pixels = images(3, 112, 96, 13)
    save_all(net, out, "sphere_small", pixels, run(net, pixels, *FIXED, bgr=True), onnx=False,
             state=net.state_dict_like_port())


def write_facenet(out):
    net = InceptionResnetV1()
    spec = randomise(net, 4)
    pixels = images(2, 80, 80, 14)
    np.savez(out / "facenet_reference.npz", images=pixels, embeddings=run(net, pixels, *FIXED), seed=np.array(4),
             spec=np.array(json.dumps(spec)))


WRITERS = {
    "iresnet_small": write_iresnet_small,
    "mobilefacenet": write_mobilefacenet,
    "mobilefacenet_x2": write_mobilefacenet_x2,
    "sphere_small": write_sphere_small,
    "facenet": write_facenet,
}


def main(out, only=()):
    """Writes every fixture, or only the groups named in `only` (keys of `WRITERS`)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name, write in WRITERS.items():
        if not only or name in only:
            write(out)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(list(out.iterdir()))} files, {total / 1e6:.2f} MB, in {out}")


if __name__ == "__main__":
    # python bench/make_checkpoint_fixtures.py [OUT_DIR [NAME ...]]
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "fixtures" / "checkpoints", sys.argv[2:])
