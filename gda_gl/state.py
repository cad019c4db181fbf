"""The interaction state: one object that the canvas, the panels and headless rendering share.

A view is reproducible: :meth:`ViewState.to_json` / :meth:`ViewState.from_json`
save and restore it (``gda-gl view --state F``, ``gda-gl render --state F``).
Observers subscribe with :meth:`ViewState.observe` and are called after every
change.  Ranges are in iterations (x) and loss (y, data units even in log
scale); ``None`` means "fit to the data".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

__all__ = ["ViewState", "COLOR_BY_CHOICES"]

COLOR_BY_CHOICES = ("none", "efficiency", "step_class", "curvature", "cockpit_alpha", "slope0", "ls_evals",
                    "grad_norm", "step_norm", "lr")


@dataclass
class ViewState:
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    log_y: bool = False
    color_by: str = "none"
    show_loose: bool = True
    show_trials: bool = True
    show_rules: bool = True
    show_envelope: bool = True
    iteration_range: tuple[int, int] | None = None
    epoch_range: tuple[int, int] | None = None
    highlight: str | None = None          # condition: overshoot, undershoot, failed, nonfinite, "efficiency<0.5"
    selected: int | None = None           # iteration whose details are shown
    follow: bool = False
    _observers: list = field(default_factory=list, repr=False, compare=False)

    def observe(self, fn: Callable[["ViewState", set], None]) -> None:
        self._observers.append(fn)

    def update(self, **changes) -> None:
        """Change fields and notify observers with the set of changed names."""
        changed = set()
        for k, v in changes.items():
            if k.startswith("_") or k not in {f.name for f in fields(self)}:
                raise AttributeError(f"ViewState has no field {k!r}")
            if k == "color_by" and v not in COLOR_BY_CHOICES:
                raise ValueError(f"unknown statistic {v!r} (choose from {', '.join(COLOR_BY_CHOICES)})")
            if getattr(self, k) != v:
                setattr(self, k, v)
                changed.add(k)
        if changed:
            for fn in list(self._observers):
                fn(self, changed)

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ViewState":
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("a view state is a JSON object")
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown view state fields: {', '.join(sorted(unknown))}")
        for k in ("x_range", "y_range", "iteration_range", "epoch_range"):
            if d.get(k) is not None:
                if not (isinstance(d[k], list) and len(d[k]) == 2):
                    raise ValueError(f"{k} must be a list of two numbers")
                d[k] = tuple(float(v) if k in ("x_range", "y_range") else int(v) for v in d[k])
        st = cls(**d)
        if st.color_by not in COLOR_BY_CHOICES:
            raise ValueError(f"unknown statistic {st.color_by!r}")
        return st

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "ViewState":
        return cls.from_json(Path(path).read_text())
