"""Arenas for the robot world: walls, obstacles, a start pose, and the grid coverage is counted on.

An arena is a ``width`` × ``height`` rectangle (metres, origin bottom-left, y up) closed by
four outer walls, holding three kinds of obstacle:

* ``circles``  ``[x, y, r]``: round posts;
* ``boxes``    ``[x0, y0, x1, y1]``: solid axis-aligned rectangles;
* ``walls``    ``[x0, y0, x1, y1]``: thin wall segments (inner walls, doors between rooms).

Arena files (JSON, format ``spikeforge.arena`` version 1)
---------------------------------------------------------
::

    {
      "format": "spikeforge.arena", "version": 1,
      "name": "two-rooms",                  // optional, default: the file name
      "size": [4.0, 4.0],                   // width, height in metres (0.5 .. 100)
      "start": [0.5, 0.5, 90.0],            // robot start: x, y (m), heading (degrees, 0 = +x, CCW)
      "circles": [[2.0, 2.0, 0.3]],         // optional
      "boxes": [[1.0, 3.0, 1.5, 3.5]],      // optional, x0 < x1, y0 < y1
      "walls": [[2.0, 0.0, 2.0, 1.5]]       // optional
    }

The examples shipped in ``toolchain/robot/arenas/`` load by name (:func:`load_arena` ``("two-rooms")``);
:func:`random_arena` draws one from a seed.

Coverage grid
-------------
Coverage is counted on a square grid of ``cell`` metres (default 0.2 m, about a robot
diameter). A cell is *free* when the robot's centre may stand at the cell centre (clear of
every obstacle by the robot radius) and that centre is reachable from the start cell through
free cells (4-connected); coverage is the fraction of free cells the robot's centre visited.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ARENA_FORMAT",
    "ARENA_VERSION",
    "Arena",
    "ArenaError",
    "arena_names",
    "load_arena",
    "nearest_obstacle",
    "random_arena",
    "save_arena",
]

log = logging.getLogger(__name__)

ARENA_FORMAT = "spikeforge.arena"
ARENA_VERSION = 1
ARENA_DIR = Path(__file__).resolve().parent / "arenas"

_MIN_SIZE, _MAX_SIZE = 0.5, 100.0


class ArenaError(ValueError):
    """An invalid arena (or arena file); the message names the field and the bad value."""


@dataclass
class Arena:
    """A 2D arena. See the module docstring for the fields and the file format.

    Parameters
    ----------
    width, height
        Size in metres.
    start
        Robot start pose ``(x, y, heading_radians)``.
    circles
        ``(n, 3)`` array of ``[x, y, r]``.
    boxes
        ``(n, 4)`` array of ``[x0, y0, x1, y1]`` with ``x0 < x1``, ``y0 < y1``.
    walls
        ``(n, 4)`` array of inner wall segments ``[x0, y0, x1, y1]``.
    name
        A label for reports and plots.
    """

    width: float
    height: float
    start: tuple[float, float, float]
    circles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    walls: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    name: str = "arena"

    def __post_init__(self) -> None:
        self.circles = np.asarray(self.circles, dtype=np.float64).reshape(-1, 3)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.walls = np.asarray(self.walls, dtype=np.float64).reshape(-1, 4)
        self.start = tuple(float(v) for v in self.start)  # type: ignore[assignment]
        self.validate()

    # ------------------------------------------------------------------ geometry
    def segments(self) -> np.ndarray:
        """Every straight edge as ``(n, 4)`` ``[x0, y0, x1, y1]``: outer walls, box edges, walls."""
        w, h = self.width, self.height
        outer = np.array([[0, 0, w, 0], [w, 0, w, h], [w, h, 0, h], [0, h, 0, 0]], dtype=np.float64)
        b = self.boxes
        edges = np.concatenate([
            np.stack([b[:, 0], b[:, 1], b[:, 2], b[:, 1]], axis=1),
            np.stack([b[:, 2], b[:, 1], b[:, 2], b[:, 3]], axis=1),
            np.stack([b[:, 2], b[:, 3], b[:, 0], b[:, 3]], axis=1),
            np.stack([b[:, 0], b[:, 3], b[:, 0], b[:, 1]], axis=1),
        ]) if len(b) else np.zeros((0, 4))
        return np.concatenate([outer, edges, self.walls])

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """Distance from each point ``(n, 2)`` to the nearest obstacle surface (≤ 0 inside one)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        d, _ = nearest_obstacle(p, self.segments()[None], self.circles[None])
        inside = (p[:, 0] <= 0) | (p[:, 0] >= self.width) | (p[:, 1] <= 0) | (p[:, 1] >= self.height)
        if len(self.boxes):
            b = self.boxes
            inside |= ((p[:, None, 0] >= b[None, :, 0]) & (p[:, None, 0] <= b[None, :, 2])
                       & (p[:, None, 1] >= b[None, :, 1]) & (p[:, None, 1] <= b[None, :, 3])).any(axis=1)
        return np.where(inside, -d, d)

    def free_cells(self, radius: float, cell: float = 0.2) -> np.ndarray:
        """Boolean grid ``(ny, nx)`` of the cells counted by coverage (see the module docstring).

        Row ``j``, column ``i`` is the cell ``[i·cell, (i+1)·cell) × [j·cell, (j+1)·cell)``.
        """
        nx_, ny_ = int(math.ceil(self.width / cell)), int(math.ceil(self.height / cell))
        xs = (np.arange(nx_) + 0.5) * cell
        ys = (np.arange(ny_) + 0.5) * cell
        gx, gy = np.meshgrid(xs, ys)
        ok = (self.clearance(np.stack([gx.ravel(), gy.ravel()], axis=1)) >= radius).reshape(ny_, nx_)
        si = min(int(self.start[0] / cell), nx_ - 1)
        sj = min(int(self.start[1] / cell), ny_ - 1)
        reach = np.zeros_like(ok)
        if not ok[sj, si]:
            # The start cell's centre may be too close to an obstacle while the start itself is
            # not: seed the fill from the free neighbours as well.
            seeds = [(sj + dj, si + di) for dj in (-1, 0, 1) for di in (-1, 0, 1)
                     if 0 <= sj + dj < ny_ and 0 <= si + di < nx_ and ok[sj + dj, si + di]]
        else:
            seeds = [(sj, si)]
        q = deque(seeds)
        for s in seeds:
            reach[s] = True
        while q:
            j, i = q.popleft()
            for dj, di in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                a, b = j + dj, i + di
                if 0 <= a < ny_ and 0 <= b < nx_ and ok[a, b] and not reach[a, b]:
                    reach[a, b] = True
                    q.append((a, b))
        return reach

    # ------------------------------------------------------------------ checks / JSON
    def validate(self) -> Arena:
        """Check sizes, obstacles and start; raise :class:`ArenaError` naming the first bad one."""
        el = f"arena {self.name!r}"
        for k, v in (("width", self.width), ("height", self.height)):
            if not (isinstance(v, int | float) and _MIN_SIZE <= v <= _MAX_SIZE):
                raise ArenaError(f"{el}: field 'size' {k} = {v!r} is out of range; allowed: "
                                 f"{_MIN_SIZE} .. {_MAX_SIZE} metres")
        for kind, arr in (("circles", self.circles), ("boxes", self.boxes), ("walls", self.walls)):
            if not np.isfinite(arr).all():
                raise ArenaError(f"{el}: field {kind!r} holds a non-finite number")
        for k, (_x, _y, r) in enumerate(self.circles.tolist()):
            if r <= 0:
                raise ArenaError(f"{el}: circles[{k}] radius = {r} is out of range; allowed: > 0")
        for k, (x0, y0, x1, y1) in enumerate(self.boxes.tolist()):
            if not (x0 < x1 and y0 < y1):
                raise ArenaError(f"{el}: boxes[{k}] = {[x0, y0, x1, y1]} must have x0 < x1 and y0 < y1")
        x, y, _ = self.start
        if not (0 < x < self.width and 0 < y < self.height) or not all(map(math.isfinite, self.start)):
            raise ArenaError(f"{el}: field 'start' = {[x, y]} is outside the arena "
                             f"(0 < x < {self.width}, 0 < y < {self.height})")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (format ``spikeforge.arena`` version 1)."""
        x, y, th = self.start
        return {
            "format": ARENA_FORMAT, "version": ARENA_VERSION, "name": self.name,
            "size": [self.width, self.height],
            "start": [x, y, round(math.degrees(th), 6)],
            "circles": self.circles.round(6).tolist(),
            "boxes": self.boxes.round(6).tolist(),
            "walls": self.walls.round(6).tolist(),
        }

    @classmethod
    def from_dict(cls, doc: Any, name: str = "arena") -> Arena:
        """Build and validate an arena from its JSON document.

        Raises
        ------
        ArenaError
            On a wrong format tag or version, a missing or unknown field, or a bad value.
        """
        if not isinstance(doc, Mapping):
            raise ArenaError(f"arena file: top level is {type(doc).__name__}; expected a JSON object")
        if doc.get("format") != ARENA_FORMAT:
            raise ArenaError(f"arena file: field 'format' = {doc.get('format')!r}; expected {ARENA_FORMAT!r}")
        if doc.get("version") != ARENA_VERSION:
            raise ArenaError(f"arena file: field 'version' = {doc.get('version')!r} is not supported; "
                             f"this spikeforge reads version {ARENA_VERSION}")
        allowed = {"format", "version", "name", "size", "start", "circles", "boxes", "walls"}
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise ArenaError(f"arena file: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
        for key in ("size", "start"):
            if key not in doc:
                raise ArenaError(f"arena file: missing field {key!r}")
        size = _numbers(doc["size"], "size", 2)
        start = _numbers(doc["start"], "start", 3)
        arrays = {}
        for kind, width in (("circles", 3), ("boxes", 4), ("walls", 4)):
            items = doc.get(kind, [])
            if not isinstance(items, list):
                raise ArenaError(f"arena file: field {kind!r} is {type(items).__name__}; expected a JSON array")
            arrays[kind] = [_numbers(it, f"{kind}[{k}]", width) for k, it in enumerate(items)]
        nm = doc.get("name", name)
        if not isinstance(nm, str) or not nm:
            raise ArenaError(f"arena file: field 'name' = {nm!r}; expected a non-empty string")
        return cls(width=size[0], height=size[1], start=(start[0], start[1], math.radians(start[2])),
                   circles=np.array(arrays["circles"]), boxes=np.array(arrays["boxes"]),
                   walls=np.array(arrays["walls"]), name=nm)


def _numbers(v: Any, what: str, n: int) -> list[float]:
    if not (isinstance(v, list) and len(v) == n
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)):
        raise ArenaError(f"arena file: field {what!r} = {json.dumps(v)}; expected {n} numbers")
    return [float(x) for x in v]


def nearest_obstacle(points: np.ndarray, segments: np.ndarray,
                     circles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to its nearest obstacle surface, and the direction to it.

    Parameters
    ----------
    points
        ``(B, 2)`` points.
    segments
        ``(B, S, 4)`` (or ``(1, S, 4)``, shared) segments ``[x0, y0, x1, y1]``.
    circles
        ``(B, C, 3)`` (or ``(1, C, 3)``) circles ``[x, y, r]``; the distance to a circle is
        negative inside it.

    Returns
    -------
    distance, direction
        ``(B,)`` each; the direction (radians) points from the point to the nearest surface
        point (to the centre, for a circle).
    """
    px, py = points[:, None, 0], points[:, None, 1]
    ax, ay = segments[..., 0], segments[..., 1]
    ex, ey = segments[..., 2] - ax, segments[..., 3] - ay
    den = ex * ex + ey * ey
    u = np.clip(((px - ax) * ex + (py - ay) * ey) / np.where(den > 0, den, 1.0), 0.0, 1.0)
    vx, vy = ax + u * ex - px, ay + u * ey - py                           # to the nearest point
    d = np.hypot(vx, vy)
    if circles.shape[1]:
        cx, cy = circles[..., 0] - px, circles[..., 1] - py
        dc = np.hypot(cx, cy) - circles[..., 2]
        vx = np.concatenate([vx, cx], axis=1)
        vy = np.concatenate([vy, cy], axis=1)
        d = np.concatenate([d, dc], axis=1)
    k = d.argmin(axis=1)
    rows = np.arange(len(points))
    return d[rows, k], np.arctan2(vy[rows, k], vx[rows, k])


def arena_names() -> list[str]:
    """Names of the example arenas shipped in ``toolchain/robot/arenas/``."""
    return sorted(p.stem for p in ARENA_DIR.glob("*.json"))


def load_arena(path_or_name: str | Path) -> Arena:
    """Read an arena file, or a shipped example by name (see :func:`arena_names`).

    Raises
    ------
    ArenaError
        With the path first, when the file cannot be read or is not a valid arena.
    """
    p = Path(path_or_name)
    if not p.exists() and (ARENA_DIR / f"{path_or_name}.json").exists():
        p = ARENA_DIR / f"{path_or_name}.json"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ArenaError(f"{p}: cannot read arena file: {e.strerror}; shipped arenas: "
                         f"{', '.join(arena_names())}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ArenaError(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    try:
        return Arena.from_dict(doc, name=p.stem)
    except ArenaError as e:
        raise ArenaError(f"{p}: {str(e).removeprefix('arena file: ')}") from None


def save_arena(arena: Arena, path: str | Path) -> None:
    """Write an arena as JSON."""
    Path(path).write_text(json.dumps(arena.to_dict(), indent=1) + "\n", encoding="utf-8")


def random_arena(seed: int | Sequence[int], width: float = 4.0, height: float = 4.0, obstacles: int = 8,
                 robot_radius: float = 0.12) -> Arena:
    """A random arena: ``obstacles`` circles and boxes, and a start pose clear of them.

    Deterministic in ``seed``. Obstacles are 0.15–0.45 m across and keep a corridor of at
    least 1.5 robot diameters between each other, the walls and the start.

    Parameters
    ----------
    seed
        Seed of the numpy Generator that draws the arena: an integer or a sequence of
        integers (e.g. ``(generation_seed, arena_index)``).
    width, height
        Size in metres.
    obstacles
        Number of obstacles (fewer when the arena is too full to place them all).
    robot_radius
        Used for the spacing rules.
    """
    if obstacles < 0:
        raise ArenaError(f"obstacles = {obstacles} is out of range; allowed: an integer >= 0")
    key = [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]
    if min(key, default=0) < 0:
        raise ArenaError(f"random arena seed = {seed!r} is out of range; allowed: integers >= 0")
    rng = np.random.default_rng([*key, 0x4A7E])
    gap = 3 * robot_radius
    margin = 2 * robot_radius
    start = (float(rng.uniform(margin + 0.1, width - margin - 0.1)),
             float(rng.uniform(margin + 0.1, height - margin - 0.1)),
             float(rng.uniform(-math.pi, math.pi)))
    placed: list[tuple[float, float, float]] = []  # bounding circles for spacing
    circles: list[list[float]] = []
    boxes: list[list[float]] = []
    for _ in range(50 * obstacles):
        if len(placed) >= obstacles:
            break
        x = float(rng.uniform(0, width))
        y = float(rng.uniform(0, height))
        if rng.random() < 0.5:
            r = float(rng.uniform(0.08, 0.22))
            shape = ("c", [x, y, r])
            bound = r
        else:
            hw, hh = (float(v) for v in rng.uniform(0.08, 0.3, 2))
            shape = ("b", [x - hw, y - hh, x + hw, y + hh])
            bound = math.hypot(hw, hh)
        if not (gap < x - bound and x + bound < width - gap and gap < y - bound and y + bound < height - gap):
            continue
        if math.hypot(x - start[0], y - start[1]) < bound + gap:
            continue
        if any(math.hypot(x - px, y - py) < bound + pb + gap for px, py, pb in placed):
            continue
        placed.append((x, y, bound))
        (circles if shape[0] == "c" else boxes).append(shape[1])
    if len(placed) < obstacles:
        log.info("random_arena(seed=%s): placed %d of %d obstacles", key, len(placed), obstacles)
    return Arena(width=width, height=height, start=start, circles=np.array(circles),
                 boxes=np.array(boxes), name="random-" + "-".join(map(str, key)))


def as_arenas(arenas: Arena | Sequence[Arena]) -> list[Arena]:
    """A list of arenas from one or many."""
    return [arenas] if isinstance(arenas, Arena) else list(arenas)
