"""Runtimes: what runs the network. Each takes N x 224 x 224 x 3 uint8 pixels and returns one softmax per head."""
