"""Start-up failures explained in one line with their fix (app/startup.py), the traceback only at debug."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from starlette.types import Message, Receive, Scope, Send

from app.models.weights import WeightsError, load_backbone_state
from app.runtimes.base import UnsupportedError
from app.settings import SettingsError
from app.startup import QuietStartupFailure, explain


def test_offline_imagenet_weights_say_what_was_looked_for_and_every_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(url: str, dst: str, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as caught:
        load_backbone_state("imagenet", "", seed=0)
    message = explain(caught.value)
    assert message is not None
    assert str(tmp_path / "checkpoints") in message and "https://download.pytorch.org/models/" in message
    assert "VISIONSERVE_WEIGHTS=/path/to/file.pth" in message
    assert "`make run-random`" in message and "config.weights" in message
    assert "cifar_head" not in message


def test_a_cifar_head_error_names_the_cifar_head_settings(tmp_path: Path) -> None:
    message = explain(WeightsError("cifar_head: nope", "cifar_head"))
    assert message is not None and message.startswith("cifar_head: nope ")
    assert "VISIONSERVE_CIFAR_HEAD=/path/to/head.pt" in message and "config.cifar_head" in message
    assert "make run-random" not in message


@pytest.mark.parametrize("error", [UnsupportedError("device=cuda ..."), SettingsError("port: ...")])
def test_a_setting_error_says_where_settings_live(error: Exception) -> None:
    message = explain(error)
    assert message is not None and message.startswith(str(error))
    assert "VISIONSERVE_<NAME>" in message and "config.<name>" in message


def test_a_fault_of_the_server_keeps_its_traceback() -> None:
    assert explain(ZeroDivisionError("division by zero")) is None


@dataclass
class _Worker:
    start_failure: str | None


async def _failing_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "lifespan.startup.failed", "message": "Traceback (most recent call last): ..."})


def _sent(worker: _Worker, debug: bool) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    app = QuietStartupFailure(_failing_lifespan, worker=worker, debug=debug)
    asyncio.run(app({"type": "lifespan"}, receive, send))
    return sent


def test_an_explained_failure_is_not_repeated_as_a_traceback() -> None:
    assert _sent(_Worker("weights: ..."), debug=False) == [{"type": "lifespan.startup.failed", "message": ""}]


@pytest.mark.parametrize(("worker", "debug"), [(_Worker("weights: ..."), True), (_Worker(None), False)])
def test_the_traceback_stays_at_debug_and_for_unexplained_failures(worker: _Worker, debug: bool) -> None:
    assert _sent(worker, debug)[0]["message"].startswith("Traceback")
