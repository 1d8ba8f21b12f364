"""The OpenVINO runtime: the torch network converted once, uint8 NHWC in with normalisation in the graph.

The converted model is kept in the model cache under a key made of the weights' identity and the versions that
produced it, so other weights never load a stale model; OpenVINO's own CACHE_DIR beside it keeps the compiled
blob. A warm start reads both and skips conversion and most of compilation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from openvino import properties
from openvino.preprocess import PrePostProcessor

from app.models.network import MEAN_255, STD_255, HeadInfo, Network
from app.runtimes.base import RuntimeInfo
from app.runtimes.choice import OPENVINO_PRECISIONS, openvino_precision

log = logging.getLogger("visionserve")
CACHE_FORMAT = 1  # bump when the converted graph changes shape
INPUT_SIZE = 224


class OpenVinoRuntime:
    """One compiled model and one infer request, used from the one inference thread."""

    def __init__(self, compiled: ov.CompiledModel, info: RuntimeInfo) -> None:
        self.info = info
        self._request = compiled.create_infer_request()
        self._outputs = compiled.outputs

    def forward(self, pixels: np.ndarray) -> list[np.ndarray]:
        results = self._request.infer({0: pixels}, share_inputs=True)
        return [results[output] for output in self._outputs]


def build(
    network: Network, heads: dict[str, HeadInfo], *, precision: str, threads: int, cache: Path | None
) -> OpenVinoRuntime:
    """Convert (or read from the cache), compile at the chosen precision, report what OpenVINO actually uses."""
    core = ov.Core()
    capabilities = tuple(core.get_property("CPU", properties.device.capabilities))
    chosen = openvino_precision(precision, capabilities)
    folder = cache / cache_key(heads) if cache is not None else None
    model = _cached_or_converted(network, folder)
    config = {
        properties.hint.inference_precision: OPENVINO_PRECISIONS[chosen],
        properties.hint.performance_mode: properties.hint.PerformanceMode.LATENCY,
        properties.num_streams: 1,  # one batch in flight: all threads work on it
        properties.inference_num_threads: threads,
    }
    if folder is not None and isinstance(model, str):  # the IR is in the cache: the compiled blob can be too
        config[properties.cache_dir] = str(folder / "compiled")
    compiled = core.compile_model(model, "CPU", config)
    actual = compiled.get_property(properties.hint.inference_precision).get_type_name()  # f32, bf16, f16
    used = {value: name for name, value in OPENVINO_PRECISIONS.items()}.get(actual, actual)
    return OpenVinoRuntime(compiled, RuntimeInfo("openvino", used, "cpu", capabilities, threads))


def cache_key(heads: dict[str, HeadInfo]) -> str:
    """The identity of what the converted model computes: every head's weights, and the converting versions."""
    weights = {
        name: head.weights.sha256 or f"{head.weights.kind}:{head.weights.source}" for name, head in heads.items()
    }
    identity = {"format": CACHE_FORMAT, "weights": weights, "openvino": ov.__version__, "torch": torch.__version__}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def _cached_or_converted(network: Network, folder: Path | None) -> ov.Model | str:
    """The model, or the path of its cached IR (compiling from a path lets OpenVINO find its compiled blob)."""
    if folder is not None and (folder / "model.xml").is_file():
        log.info("openvino: the converted model comes from the cache %s", folder)
        return str(folder / "model.xml")
    model = convert(network)
    if folder is not None and _store(model, folder):
        return str(folder / "model.xml")  # the next start compiles the same file and finds the same blob
    return model


def convert(network: Network) -> ov.Model:
    """torch.export -> OpenVINO, batch dynamic, uint8 NHWC input normalised inside the graph."""
    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    batch = torch.export.Dim("batch", min=1, max=1024)
    exported = torch.export.export(network.eval(), (example,), dynamic_shapes=({0: batch},))
    model = ov.convert_model(exported)
    model.reshape({model.inputs[0]: ov.PartialShape([-1, 3, INPUT_SIZE, INPUT_SIZE])})
    for output, name in zip(model.outputs, network.names, strict=True):
        output.get_tensor().set_names({name})
    steps = PrePostProcessor(model)
    steps.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    steps.input().model().set_layout(ov.Layout("NCHW"))
    steps.input().preprocess().convert_element_type(ov.Type.f32).mean(list(MEAN_255)).scale(list(STD_255))
    return steps.build()


def _store(model: ov.Model, folder: Path) -> bool:
    """Write the IR next to the folder, then move it into place: a reader never sees half a model."""
    scratch: Path | None = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
        ov.save_model(model, scratch / "model.xml", compress_to_fp16=False)
        with contextlib.suppress(OSError):  # another worker stored it first: theirs is the same model
            os.rename(scratch, folder)
        return (folder / "model.xml").is_file()
    except (OSError, RuntimeError) as exc:  # OpenVINO reports a full or read-only disk as RuntimeError
        log.warning("openvino: cannot write the model cache in %s (%s); every start will convert", folder, exc)
        return False
    finally:
        if scratch is not None and scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
