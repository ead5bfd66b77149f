"""Backbone: ``factory(num_classes, **params) -> torch.nn.Module`` mapping an image batch ``(N, 3, H, W)`` to
logits ``(N, num_classes)``. The engine passes ``num_classes`` (the task head's width); the other keyword
parameters are the recipe's: ``backbone: {name: tiny_cnn, params: {width: 32}}``. Any image size must work
(recipes pick their own)."""
from __future__ import annotations

import torch


class TinyCNN(torch.nn.Module):
    """``depth`` conv-BN-ReLU blocks (stride 2, ``width`` channels doubling), global average pool, a linear head."""

    def __init__(self, num_classes: int, width: int = 16, depth: int = 3, dropout: float = 0.0):
        super().__init__()
        if width < 1 or depth < 1 or not 0 <= dropout < 1:
            raise ValueError(f"tiny_cnn: width and depth must be >= 1 and dropout in [0, 1), got "
                             f"width={width}, depth={depth}, dropout={dropout}")
        layers, channels = [], 3
        for i in range(depth):
            out = width * 2 ** i
            layers += [torch.nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False),
                       torch.nn.BatchNorm2d(out), torch.nn.ReLU(inplace=True)]
            channels = out
        self.features = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(channels, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
