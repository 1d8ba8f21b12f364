"""visionserve: ResNet-50 image classification with ImageNet-1k and CIFAR-10 heads."""

__version__ = "0.1.0"
