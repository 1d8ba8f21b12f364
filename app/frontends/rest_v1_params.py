"""The /v1/predict parameters, `heads` and `top_k`: each given at most once, then checked."""

from __future__ import annotations

from app.errors import ApiError, Problems
from app.settings import HEADS, MAX_TOP_K

PARAMETERS = ("heads", "top_k")
JSON_FIELDS = ("instances", *PARAMETERS)


class Parameters:
    """`heads` and `top_k` as the request gave them: each at most once, in the query or the body."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.sources: dict[str, str] = {}

    def give(self, key: str, value: object, source: str) -> None:
        if key in self.sources:
            raise repeated(key, self.sources[key], source)
        self.values[key] = value
        self.sources[key] = source

    def get(self, key: str) -> object:
        return self.values.get(key)


def repeated(key: str, first: str, second: str) -> ApiError:
    """The 400 for `key` given a second time; `first` and `second` say where (query, form, JSON body)."""
    where = f"twice in the {first}" if first == second else f"in the {first} and in the {second}"
    return ApiError(
        Problems.REPEATED_PARAMETER,
        f"{key!r} is given more than once ({where}); give it once",
        accepted=f"each of {', '.join(JSON_FIELDS)} at most once, in the query or the body",
    )


def parse_heads(raw: object) -> frozenset[str]:
    """'imagenet,cifar10' -> {'imagenet', 'cifar10'}; default imagenet."""
    if raw is None:
        return frozenset({"imagenet"})
    names = [name.strip() for name in str(raw).split(",")]
    if not names or any(name not in HEADS for name in names):
        raise ApiError(Problems.UNKNOWN_HEAD, f"heads={raw!r} names an unknown head", accepted=list(HEADS))
    return frozenset(names)


def parse_top_k(raw: object, default: int) -> int:
    if raw is None:
        return default
    try:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or not 1 <= value <= MAX_TOP_K:
        raise ApiError(
            Problems.INVALID_TOP_K,
            f"top_k={raw!r} is not an integer from 1 to {MAX_TOP_K}",
            accepted={"min": 1, "max": MAX_TOP_K},
        )
    return value
