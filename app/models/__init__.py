"""The model: one ResNet-50 backbone, an ImageNet-1k head and a CIFAR-10 head."""
