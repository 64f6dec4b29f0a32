"""The robot world: differential-drive robots with NeoN-like sensors in 2D arenas.

The robot follows NeoN (Mitchell et al., "NeoN: Neuromorphic control for autonomous robotic
navigation", IRIS 2017): a LIDAR on a servo read at 30° steps gives 5 distance readings, two
bump switches sit on the front, and a bias and a random input complete the 9 network inputs;
4 outputs drive the left and right motors forward and backward.

Sensor vector (:data:`SENSOR_NAMES`, every value in [0, 1])
    0–4  LIDAR proximity at +60°, +30°, 0°, −30°, −60° from the heading (left to right):
         ``1 − gap / lidar_range`` where ``gap`` is the free distance from the robot's rim
         along the ray (0: nothing within range, 1: touching);
    5–6  bump switches left / right: 1 when the last move was blocked by an obstacle on that
         side of the front half (both when dead ahead);
    7    bias, always 1;
    8    random, uniform in [0, 1) from the episode's seeded Generator.

Motor vector (:data:`MOTOR_NAMES`, each clipped to [0, 1])
    left forward, left backward, right forward, right backward; a wheel's speed is
    ``(forward − backward) · max_speed``.

Kinematics and collisions
    Each control step of ``dt`` seconds turns the robot by ``ω·dt`` with
    ``ω = (v_r − v_l) / wheel_base`` and moves it ``(v_l + v_r)/2 · dt`` along the mid-step
    heading. A move that would bring the robot's disc into an obstacle is *blocked*: the robot
    keeps its position (the turn still happens) — one *collision* is counted when a blocked
    step follows a free one, and ``contact_steps`` counts every blocked step.

Metrics
    ``coverage`` (fraction of the arena's free grid cells the robot's centre visited, see
    :mod:`spikeforge.toolchain.robot.arena`), ``collisions``, ``contact_steps``, ``distance`` (metres).

One :class:`World` steps many robots at once (each in its own arena, vectorised over robots,
rays and obstacles in numpy), so a population of controllers is evaluated in one pass; a
robot's trajectory does not depend on which other robots share its batch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from .arena import Arena, as_arenas, nearest_obstacle

__all__ = [
    "MOTOR_NAMES",
    "N_MOTORS",
    "N_SENSORS",
    "SENSOR_NAMES",
    "Controller",
    "Episode",
    "Robot",
    "World",
    "cast_rays",
    "run_episode",
]

log = logging.getLogger(__name__)

SENSOR_NAMES = ("lidar_l60", "lidar_l30", "lidar_0", "lidar_r30", "lidar_r60",
                "bump_left", "bump_right", "bias", "random")
MOTOR_NAMES = ("left_forward", "left_backward", "right_forward", "right_backward")
N_SENSORS = len(SENSOR_NAMES)
N_MOTORS = len(MOTOR_NAMES)

_FAR = 1.0e6          # padding obstacles live here
_RANDOM_CHUNK = 256   # random inputs are drawn per robot in blocks of this many steps


@dataclass(frozen=True)
class Robot:
    """Robot and sensor parameters (SI units; angles in degrees).

    The defaults are a small tracked robot like NeoN's: 24 cm across, 25 cm/s top speed, a
    LIDAR whose proximity reading spans 1 m past the rim, 10 control steps per second.
    """

    radius: float = 0.12
    wheel_base: float = 0.22
    max_speed: float = 0.25
    dt: float = 0.1
    lidar_range: float = 1.0
    lidar_angles: tuple[float, ...] = (60.0, 30.0, 0.0, -30.0, -60.0)
    cell: float = 0.2

    def __post_init__(self) -> None:
        for name in ("radius", "wheel_base", "max_speed", "dt", "lidar_range", "cell"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"Robot: field {name!r} = {v!r} is out of range; allowed: a number > 0")
        if len(self.lidar_angles) != 5:
            raise ValueError(f"Robot: lidar_angles has {len(self.lidar_angles)} angles; the sensor "
                             "vector holds exactly 5 LIDAR readings")


class Controller(Protocol):
    """What drives a robot: a sensor vector in, a motor vector out.

    ``reset(seed)`` starts an episode; ``act(sensors)`` takes the :data:`SENSOR_NAMES` vector
    (shape ``(9,)``) and returns the :data:`MOTOR_NAMES` vector (shape ``(4,)``, values in
    [0, 1]).
    """

    def reset(self, seed: int) -> None: ...

    def act(self, sensors: np.ndarray) -> np.ndarray: ...


def cast_rays(origin: np.ndarray, angles: np.ndarray, segments: np.ndarray, circles: np.ndarray,
              max_range: float) -> np.ndarray:
    """Distance along each ray to the first obstacle, capped at ``max_range``.

    Parameters
    ----------
    origin
        ``(B, 2)`` ray origins.
    angles
        ``(B, R)`` absolute ray angles (radians).
    segments
        ``(B, S, 4)`` segments ``[x0, y0, x1, y1]`` each robot sees.
    circles
        ``(B, C, 3)`` circles ``[x, y, r]``.
    max_range
        Cap (and the value of a ray that hits nothing).

    Returns
    -------
    numpy.ndarray
        ``(B, R)`` distances.
    """
    dx, dy = np.cos(angles)[..., None], np.sin(angles)[..., None]         # (B,R,1)
    ox, oy = origin[:, None, None, 0], origin[:, None, None, 1]           # (B,1,1)
    ax, ay = segments[:, None, :, 0], segments[:, None, :, 1]             # (B,1,S)
    ex, ey = segments[:, None, :, 2] - ax, segments[:, None, :, 3] - ay
    den = dx * ey - dy * ex                                               # (B,R,S)
    qx, qy = ax - ox, ay - oy
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qx * ey - qy * ex) / den
        u = (qx * dy - qy * dx) / den
    hit = (den != 0) & (t >= 0) & (u >= 0) & (u <= 1)
    best = np.where(hit, t, np.inf).min(axis=2, initial=np.inf)
    if circles.shape[1]:
        fx = ox - circles[:, None, :, 0]
        fy = oy - circles[:, None, :, 1]
        b = fx * dx + fy * dy
        disc = b * b - (fx * fx + fy * fy - circles[:, None, :, 2] ** 2)
        with np.errstate(invalid="ignore"):
            tc = -b - np.sqrt(disc)
        tc = np.where((disc >= 0) & (tc >= 0), tc, np.inf)
        best = np.minimum(best, tc.min(axis=2))
    return np.minimum(best, max_range)


@dataclass
class Episode:
    """One robot's run: metrics and (when recorded) its trajectory.

    Attributes
    ----------
    arena
        The arena it ran in.
    steps
        Control steps taken.
    coverage, collisions, contact_steps, distance
        The metrics (module docstring).
    trajectory
        ``(steps + 1, 3)`` poses ``x, y, heading`` (start first).
    blocked
        ``(steps,)`` True where that step's move was blocked.
    seconds
        Wall time of the episode.
    """

    arena: Arena
    steps: int
    coverage: float
    collisions: int
    contact_steps: int
    distance: float
    trajectory: np.ndarray = field(repr=False)
    blocked: np.ndarray = field(repr=False)
    seconds: float = 0.0

    def summary(self) -> dict[str, float | int | str]:
        """The metrics as a JSON-ready dict."""
        return {"arena": self.arena.name, "steps": self.steps, "coverage": round(self.coverage, 4),
                "collisions": self.collisions, "contact_steps": self.contact_steps,
                "distance": round(self.distance, 3)}


class World:
    """Many robots, each in its own arena, stepped together.

    Parameters
    ----------
    arenas
        One arena per robot (or one arena for a single robot).
    seeds
        One seed per robot (or one for all): it seeds the robot's random input.
    robot
        Robot and sensor parameters (shared).
    record
        Keep every pose (for plots and trajectory comparisons).
    """

    def __init__(self, arenas: Arena | Sequence[Arena], seeds: int | Sequence[int] = 0,
                 robot: Robot | None = None, record: bool = False) -> None:
        arenas = as_arenas(arenas)
        if not arenas:
            raise ValueError("World needs at least one arena")
        b = len(arenas)
        seeds = [int(seeds)] * b if isinstance(seeds, int | np.integer) else [int(s) for s in seeds]
        if len(seeds) != b:
            raise ValueError(f"got {len(seeds)} seeds for {b} robots; give one per robot, or one for all")
        if min(seeds) < 0:
            raise ValueError(f"seed = {min(seeds)} is out of range; allowed: an integer >= 0")
        self.robot = robot or Robot()
        for a in {id(a): a for a in arenas}.values():
            gap = float(a.clearance(np.array([a.start[:2]]))[0])
            if gap < self.robot.radius:
                raise ValueError(f"arena {a.name!r}: the start {list(a.start[:2])} is {gap:.3f} m from an "
                                 f"obstacle; the robot (radius {self.robot.radius} m) does not fit there: "
                                 "move the start")
        self.arenas = arenas
        self.n = b
        # Geometry per robot, padded to the largest arena with obstacles far away.
        uniq: dict[int, int] = {}
        for a in arenas:
            uniq.setdefault(id(a), len(uniq))
        distinct = [a for a in {id(a): a for a in arenas}.values()]
        segs = [a.segments() for a in distinct]
        circ = [a.circles for a in distinct]
        smax = max(len(s) for s in segs)
        cmax = max(len(c) for c in circ)
        seg_pad = np.full((len(distinct), smax, 4), _FAR)
        circ_pad = np.zeros((len(distinct), cmax, 3))
        circ_pad[:, :, :2] = _FAR
        for k, (s, c) in enumerate(zip(segs, circ, strict=True)):
            seg_pad[k, : len(s)] = s
            circ_pad[k, : len(c)] = c
        which = np.array([uniq[id(a)] for a in arenas])
        self._seg = seg_pad[which]
        self._circ = circ_pad[which]
        # Coverage grids, padded to the largest.
        r = self.robot
        grids = [a.free_cells(r.radius, r.cell) for a in distinct]
        gy = max(g.shape[0] for g in grids)
        gx = max(g.shape[1] for g in grids)
        free = np.zeros((len(distinct), gy, gx), dtype=bool)
        for k, g in enumerate(grids):
            free[k, : g.shape[0], : g.shape[1]] = g
        self._free = free[which].reshape(b, -1)
        self._n_free = np.maximum(self._free.sum(axis=1), 1)
        self._gshape = (gy, gx)
        self._lidar = np.radians(np.asarray(r.lidar_angles, dtype=np.float64))
        self.seeds = seeds
        self.record = record
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Put every robot back at its arena's start; clear the metrics; restart the random inputs."""
        self._rngs = [np.random.default_rng([s, 0x5E45]) for s in self.seeds]
        self._chunk = -1
        self.pose = np.array([a.start for a in self.arenas], dtype=np.float64)
        self.t = 0
        self.visited = np.zeros((self.n, self._gshape[0] * self._gshape[1]), dtype=bool)
        self.collisions = np.zeros(self.n, dtype=np.int64)
        self.contact_steps = np.zeros(self.n, dtype=np.int64)
        self.distance = np.zeros(self.n)
        self.bump = np.zeros((self.n, 2))
        self._was_blocked = np.zeros(self.n, dtype=bool)
        self.poses: list[np.ndarray] = [self.pose.copy()] if self.record else []
        self.blocked_log: list[np.ndarray] = []
        self._visit()

    def _visit(self) -> None:
        c = self.robot.cell
        i = np.clip((self.pose[:, 0] / c).astype(np.int64), 0, self._gshape[1] - 1)
        j = np.clip((self.pose[:, 1] / c).astype(np.int64), 0, self._gshape[0] - 1)
        self.visited[np.arange(self.n), j * self._gshape[1] + i] = True

    @property
    def coverage(self) -> np.ndarray:
        """``(B,)`` fraction of free cells visited."""
        return (self.visited & self._free).sum(axis=1) / self._n_free

    def sensors(self) -> np.ndarray:
        """``(B, 9)`` sensor vectors (:data:`SENSOR_NAMES`) at the current step."""
        r = self.robot
        angles = self.pose[:, 2:3] + self._lidar[None, :]
        d = cast_rays(self.pose[:, :2], angles, self._seg, self._circ, r.lidar_range + r.radius)
        prox = np.clip(1.0 - (d - r.radius) / r.lidar_range, 0.0, 1.0)
        chunk, k = divmod(self.t, _RANDOM_CHUNK)
        while self._chunk < chunk:  # one block per chunk of steps, even if a chunk was skipped
            self._rand = np.stack([g.random(_RANDOM_CHUNK) for g in self._rngs])
            self._chunk += 1
        out = np.empty((self.n, N_SENSORS))
        out[:, :5] = prox
        out[:, 5:7] = self.bump
        out[:, 7] = 1.0
        out[:, 8] = self._rand[:, k]
        return out

    def step(self, motors: np.ndarray) -> np.ndarray:
        """Apply ``(B, 4)`` motor vectors for one control step; return the blocked mask ``(B,)``."""
        m = np.clip(np.asarray(motors, dtype=np.float64).reshape(self.n, N_MOTORS), 0.0, 1.0)
        r = self.robot
        vl = (m[:, 0] - m[:, 1]) * r.max_speed
        vr = (m[:, 2] - m[:, 3]) * r.max_speed
        v = 0.5 * (vl + vr)
        dth = (vr - vl) / r.wheel_base * r.dt
        mid = self.pose[:, 2] + 0.5 * dth
        new = np.empty_like(self.pose)
        new[:, 0] = self.pose[:, 0] + v * r.dt * np.cos(mid)
        new[:, 1] = self.pose[:, 1] + v * r.dt * np.sin(mid)
        new[:, 2] = np.arctan2(np.sin(self.pose[:, 2] + dth), np.cos(self.pose[:, 2] + dth))
        clear, toward = nearest_obstacle(new[:, :2], self._seg, self._circ)
        blocked = clear < r.radius
        # Bump switches: contact in the front half, left (+) or right (−) of the heading.
        rel = np.arctan2(np.sin(toward - self.pose[:, 2]), np.cos(toward - self.pose[:, 2]))
        front = blocked & (np.abs(rel) <= math.pi / 2)
        ahead = np.abs(rel) < math.radians(15)
        self.bump[:, 0] = front & ((rel > 0) | ahead)
        self.bump[:, 1] = front & ((rel < 0) | ahead)
        moved = ~blocked
        self.distance += np.where(moved, np.hypot(new[:, 0] - self.pose[:, 0], new[:, 1] - self.pose[:, 1]), 0.0)
        self.pose[moved, :2] = new[moved, :2]
        self.pose[:, 2] = new[:, 2]
        self.collisions += blocked & ~self._was_blocked
        self.contact_steps += blocked
        self._was_blocked = blocked
        self.t += 1
        self._visit()
        if self.record:
            self.poses.append(self.pose.copy())
            self.blocked_log.append(blocked.copy())
        return blocked

    def episodes(self, seconds: float = 0.0) -> list[Episode]:
        """One :class:`Episode` per robot (trajectories only when ``record`` is on)."""
        cov = self.coverage
        traj = np.stack(self.poses, axis=1) if self.record else np.zeros((self.n, 0, 3))
        blk = np.stack(self.blocked_log, axis=1) if self.record and self.blocked_log else np.zeros((self.n, 0), bool)
        return [Episode(arena=self.arenas[k], steps=self.t, coverage=float(cov[k]),
                        collisions=int(self.collisions[k]), contact_steps=int(self.contact_steps[k]),
                        distance=float(self.distance[k]), trajectory=traj[k], blocked=blk[k],
                        seconds=seconds) for k in range(self.n)]


def run_episode(controller: Controller, arena: Arena, steps: int = 600, seed: int = 0,
                robot: Robot | None = None, record: bool = True, progress: bool = False) -> Episode:
    """Drive one robot with ``controller`` for ``steps`` control steps.

    Parameters
    ----------
    controller
        Anything with ``reset(seed)`` and ``act(sensors) -> motors`` (:class:`Controller`).
    arena
        Where.
    steps
        Control steps (``steps · robot.dt`` seconds of robot time).
    seed
        Seeds the world's random input and the controller.
    robot
        Robot parameters (default :class:`Robot`).
    record
        Keep the trajectory.
    progress
        Show a progress bar (tqdm, on stderr, only when it is a terminal).
    """
    if steps < 0:
        raise ValueError(f"steps = {steps} is out of range; allowed: an integer >= 0")
    world = World(arena, seed, robot, record=record)
    controller.reset(seed)
    t0 = time.perf_counter()
    for _ in tqdm(range(steps), desc=f"episode in {arena.name}", unit="step", disable=None if progress else True,
                  leave=False):
        world.step(np.asarray(controller.act(world.sensors()[0]))[None, :])
    return world.episodes(time.perf_counter() - t0)[0]
