"""Plain PyTorch versions of the networks the speed benchmark times (bench only).

The same shapes as the kerasface recipes, written the way a PyTorch user
would: NCHW tensors, `nn.Conv2d` + `nn.PReLU`, uint8 images normalised inside
the forward pass, SGD with momentum and weight decay.

- `LeNetPlusPlus`: Wen et al.'s MNIST network (`kerasface.backbones.lenet`).
- `Sphere20a`: `sphere20a` of clcarwin/sphereface_pytorch (`net_sphere.py`),
  whose residual convolutions have no bias here, as in the Caffe prototxt and
  in `kerasface.backbones.sphereface` (same parameter count).
- `AngleLinear` + `AngleLoss`: sphereface_pytorch's A-Softmax head and loss
  (m = 4, lambda annealed to 5), without its forward-call counter.
- `CenterLoss`: Wen et al.'s eq. 4 update with `index_add_`.

Never imported by kerasface or its tests.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

# (x - 127.5) / 128, the SphereFace and LeNet++ recipes' normalisation.
SCALE, OFFSET = 1.0 / 128.0, -127.5 / 128.0


def conv_prelu(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias), nn.PReLU(out_channels, 0.25)
    )


class LeNetPlusPlus(nn.Module):
    """Three stages of two 5x5 PReLU convolutions and max-pooling, then `ip1`."""

    def __init__(self, embedding_dim=2, in_channels=1):
        super().__init__()
        layers, channels = [], in_channels
        for filters, (pool_size, pool_stride) in zip((32, 64, 128), ((2, 2), (2, 2), (3, 2))):
            layers += [
                conv_prelu(channels, filters, 5, padding=2),
                conv_prelu(filters, filters, 5, padding=2),
                nn.MaxPool2d(pool_size, pool_stride),
            ]
            channels = filters
        self.features = nn.Sequential(*layers)
        self.ip1 = nn.Linear(128 * 3 * 3, embedding_dim)
        self.embedding = nn.PReLU(embedding_dim, 0.25)

    def forward(self, images):
        x = self.features(images.float() * SCALE + OFFSET)
        return self.embedding(self.ip1(torch.flatten(x, 1)))


class ResidualUnit(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            conv_prelu(channels, channels, 3, padding=1, bias=False),
            conv_prelu(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x):
        return x + self.body(x)


class Sphere20a(nn.Module):
    """sphere20a: four stride-2 PReLU stages with 1, 2, 4, 1 residual units, then `fc5`."""

    def __init__(self, embedding_dim=512, input_hw=(112, 96)):
        super().__init__()
        layers, channels = [], 3
        for filters, units in zip((64, 128, 256, 512), (1, 2, 4, 1)):
            layers.append(conv_prelu(channels, filters, 3, stride=2, padding=1))
            layers += [ResidualUnit(filters) for _ in range(units)]
            channels = filters
        self.features = nn.Sequential(*layers)
        height, width = (math.ceil(side / 16) for side in input_hw)
        self.fc5 = nn.Linear(512 * height * width, embedding_dim)

    def forward(self, images):
        x = self.features(images.float() * SCALE + OFFSET)
        return self.fc5(torch.flatten(x, 1))


class AngleLinear(nn.Module):
    """sphereface_pytorch's A-Softmax layer: (||x|| cos(theta), ||x|| psi(theta)) per class."""

    def __init__(self, in_features, out_features, margin=4):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5))
        self.margin = margin
        self.cos_multiple = [
            lambda x: x**0,
            lambda x: x**1,
            lambda x: 2 * x**2 - 1,
            lambda x: 4 * x**3 - 3 * x,
            lambda x: 8 * x**4 - 8 * x**2 + 1,
            lambda x: 16 * x**5 - 20 * x**3 + 5 * x,
        ][margin]

    def forward(self, x):
        weight = self.weight.renorm(2, 1, 1e-5).mul(1e5)
        x_norm = x.pow(2).sum(1).pow(0.5)
        w_norm = weight.pow(2).sum(0).pow(0.5)
        cos_theta = (x.mm(weight) / x_norm.view(-1, 1) / w_norm.view(1, -1)).clamp(-1, 1)
        cos_m_theta = self.cos_multiple(cos_theta)
        theta = cos_theta.detach().acos()
        k = (self.margin * theta / 3.14159265).floor()
        phi_theta = (-1.0) ** k * cos_m_theta - 2 * k
        return cos_theta * x_norm.view(-1, 1), phi_theta * x_norm.view(-1, 1)


class AngleLoss(nn.Module):
    """sphereface_pytorch's loss: the true class's logit is (lambda cos + psi) / (1 + lambda)."""

    def __init__(self, lambda_base=1000.0, lambda_gamma=0.12, lambda_power=1.0, lambda_min=5.0):
        super().__init__()
        self.lambda_args = lambda_base, lambda_gamma, lambda_power, lambda_min
        self.iteration = 0

    def forward(self, outputs, labels):
        cos_theta, phi_theta = outputs
        base, gamma, power, minimum = self.lambda_args
        lam = max(minimum, base * (1 + gamma * self.iteration) ** -power)
        self.iteration += 1
        target = F.one_hot(labels, cos_theta.shape[1]).bool()
        logits = torch.where(target, (lam * cos_theta + phi_theta) / (1 + lam), cos_theta)
        return F.cross_entropy(logits, labels)


class LinearSoftmax(nn.Module):
    """The plain softmax head: `nn.Linear` logits and cross-entropy."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.fc(x)


class CenterLoss(nn.Module):
    """weight/2 mean ||x_i - c_{y_i}||^2; centres move by eq. 4 (alpha) on every training call."""

    def __init__(self, num_classes, embedding_dim, alpha=0.5, weight=0.1):
        super().__init__()
        self.register_buffer("centers", torch.zeros(num_classes, embedding_dim))
        self.alpha, self.weight = alpha, weight

    def forward(self, embeddings, labels):
        offsets = self.centers[labels] - embeddings
        loss = self.weight * 0.5 * offsets.pow(2).sum(1).mean()
        if self.training:
            with torch.no_grad():
                sums = torch.zeros_like(self.centers).index_add_(0, labels, offsets)
                counts = torch.bincount(labels, minlength=len(self.centers)).unsqueeze(1)
                self.centers -= self.alpha * sums / (1 + counts)
        return loss


class Trainer:
    """One SGD step of backbone + head (+ centre loss), as a PyTorch training loop runs it."""

    def __init__(self, backbone, head, loss=None, center_loss=None, learning_rate=0.01):
        self.backbone, self.head = backbone, head
        self.loss = loss or nn.CrossEntropyLoss()
        self.center_loss = center_loss
        parameters = list(backbone.parameters()) + list(head.parameters())
        self.optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9, weight_decay=5e-4)
        self.memory_format = torch.contiguous_format

    def to(self, device, memory_format=torch.contiguous_format):
        """Moves the model; `torch.channels_last` stores images and filters as NHWC (faster with oneDNN)."""
        for module in (self.backbone, self.head, self.loss, self.center_loss):
            if module is not None:
                module.to(device)
        self.backbone.to(memory_format=memory_format)
        self.memory_format = memory_format

    def step(self, images, labels):
        self.optimizer.zero_grad(set_to_none=True)
        embeddings = self.backbone(images.contiguous(memory_format=self.memory_format))
        loss = self.loss(self.head(embeddings), labels)
        if self.center_loss is not None:
            loss = loss + self.center_loss(embeddings, labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def fit(self, images, labels, batch_size, steps, on_step_end=None):
        """`steps` steps over shuffled batches of uint8 NCHW `images`; returns the last loss.

        `on_step_end()` is called after each step, once its loss is known.
        """
        order = torch.randperm(len(images), device=images.device)
        for step in range(steps):
            index = order[torch.arange(step * batch_size, (step + 1) * batch_size, device=images.device) % len(images)]
            loss = self.step(images[index], labels[index]).item()
            if on_step_end is not None:
                on_step_end()
        return loss


def lenetpp(num_classes=10, center_loss_weight=0.0):
    backbone = LeNetPlusPlus()
    center_loss = CenterLoss(num_classes, 2, weight=center_loss_weight) if center_loss_weight else None
    return Trainer(backbone, LinearSoftmax(2, num_classes), center_loss=center_loss)


def sphere20a(num_classes=10572):
    return Trainer(Sphere20a(), AngleLinear(512, num_classes), AngleLoss(), learning_rate=0.1)
