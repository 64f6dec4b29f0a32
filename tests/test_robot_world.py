"""The robot world: ray casting, collisions, sensors, metrics, determinism, arenas and plots."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spikeforge.toolchain.robot.arena import (
    Arena,
    ArenaError,
    arena_names,
    load_arena,
    random_arena,
    save_arena,
)
from spikeforge.toolchain.robot.world import SENSOR_NAMES, Robot, World, cast_rays, run_episode

EMPTY = Arena(width=4.0, height=4.0, start=(1.0, 1.0, 0.0), name="empty")


def _rays(arena: Arena, x: float, y: float, degrees: list[float], max_range: float = 100.0) -> np.ndarray:
    seg = arena.segments()[None]
    circ = arena.circles[None]
    return cast_rays(np.array([[x, y]]), np.radians([degrees]), seg, circ, max_range)[0]


# ----------------------------------------------------------------------------- geometry
def test_rays_against_walls_hand_computed() -> None:
    d = _rays(EMPTY, 1.0, 1.0, [0, 90, 180, 270, 45, 30])
    # right wall x=4: 3; top y=4: 3; left x=0: 1; bottom y=0: 1; corner (4,4): 3*sqrt(2);
    # 30 deg reaches x=4 first at t = 3/cos(30) (y = 1 + 1.732 < 4).
    np.testing.assert_allclose(d, [3, 3, 1, 1, 3 * math.sqrt(2), 3 / math.cos(math.radians(30))], atol=1e-9)


def test_rays_against_circle_box_and_wall() -> None:
    arena = Arena(width=4.0, height=4.0, start=(0.5, 0.5, 0.0), circles=[[3.0, 1.0, 0.5]],
                  boxes=[[1.5, 2.5, 2.5, 3.0]], walls=[[0.5, 1.5, 1.5, 1.5]])
    d = _rays(arena, 1.0, 1.0, [0, 90, 45])
    assert d[0] == pytest.approx(1.5)          # circle front at x = 2.5
    assert d[1] == pytest.approx(0.5)          # thin wall at y = 1.5
    # 45 deg from (1,1) passes (1.5,1.5) = wall end (u = 1 counts), so 0.5*sqrt(2)
    assert d[2] == pytest.approx(0.5 * math.sqrt(2))
    d = _rays(arena, 2.0, 2.0, [90, 0])
    assert d[0] == pytest.approx(0.5)          # box bottom at y = 2.5
    assert d[1] == pytest.approx(2.0)          # misses the circle (top at y = 1.5): wall x = 4
    # a ray tangent-missing the circle by 1 cm and one capped by max range
    d = _rays(arena, 1.0, 1.51, [0], max_range=100)
    assert d[0] == pytest.approx(3.0)
    assert _rays(arena, 2.0, 2.0, [0], max_range=0.7)[0] == pytest.approx(0.7)


def test_lidar_proximity_reading() -> None:
    robot = Robot(radius=0.1, lidar_range=1.0)
    arena = Arena(width=4.0, height=4.0, start=(3.4, 2.0, 0.0))   # 0.6 m to the wall, rim gap 0.5
    s = World(arena, robot=robot).sensors()[0]
    assert s[SENSOR_NAMES.index("lidar_0")] == pytest.approx(0.5)
    # +60 deg: to y = 4 at t = 2/sin 60 = 2.31 vs x = 4 at t = 0.6/cos 60 = 1.2: gap 1.1 > range
    assert s[SENSOR_NAMES.index("lidar_l60")] == 0.0
    assert s[SENSOR_NAMES.index("bias")] == 1.0
    assert 0.0 <= s[SENSOR_NAMES.index("random")] < 1.0


def test_collision_blocks_counts_and_bumps() -> None:
    robot = Robot()
    arena = Arena(width=4.0, height=4.0, start=(3.8, 2.0, 0.0))   # 8 cm from the right wall
    w = World(arena, robot=robot)
    ahead = np.array([[1.0, 0.0, 1.0, 0.0]])
    assert not w.step(ahead)[0]                # 2.5 cm forward: still clear (gap 5.5 cm)
    assert not w.step(ahead)[0]
    blocked = [bool(w.step(ahead)[0]) for _ in range(3)]
    assert blocked == [False, True, True]      # x 3.875 -> would be 3.9 > 4 - 0.12: blocked
    assert w.collisions[0] == 1 and w.contact_steps[0] == 2
    assert w.pose[0, 0] == pytest.approx(3.875)
    assert w.bump[0].tolist() == [1.0, 1.0]    # dead ahead: both switches
    s = w.sensors()[0]
    assert s[5] == 1.0 and s[6] == 1.0
    # turn in place: not blocked, switches released; a second push is a second collision
    w.step(np.array([[0.0, 1.0, 1.0, 0.0]]))
    assert w.bump[0].tolist() == [0.0, 0.0]
    w.pose[0, 2] = 0.0
    w.step(ahead)
    assert w.collisions[0] == 2


def test_bump_side_and_backing_into_a_wall() -> None:
    # heading 45 deg at the right wall: contact is to the right of the heading
    w = World(Arena(width=4.0, height=4.0, start=(3.87, 2.0, math.radians(45))))
    for _ in range(3):
        w.step(np.array([[1.0, 0.0, 1.0, 0.0]]))
    assert w.bump[0].tolist() == [0.0, 1.0]
    # reversing into a wall behind: blocked and counted, but the front switches stay off
    w = World(Arena(width=4.0, height=4.0, start=(0.13, 2.0, 0.0)))
    w.step(np.array([[0.0, 1.0, 0.0, 1.0]]))
    assert w.collisions[0] == 1 and w.bump[0].tolist() == [0.0, 0.0]


def test_kinematics_straight_and_spin() -> None:
    r = Robot()
    w = World(EMPTY, robot=r)
    for _ in range(10):
        w.step(np.array([[1.0, 0.0, 1.0, 0.0]]))
    assert w.pose[0].tolist() == pytest.approx([1.0 + 10 * r.max_speed * r.dt, 1.0, 0.0])
    assert w.distance[0] == pytest.approx(10 * r.max_speed * r.dt)
    w.step(np.array([[0.0, 1.0, 1.0, 0.0]]))   # spin left in place
    assert w.pose[0, :2].tolist() == pytest.approx([1.25, 1.0])
    assert w.pose[0, 2] == pytest.approx(2 * r.max_speed / r.wheel_base * r.dt)


# ----------------------------------------------------------------------------- metrics
def test_coverage_counts_cells_on_a_straight_path() -> None:
    arena = Arena(width=4.0, height=2.0, start=(0.31, 1.1, 0.0))
    w = World(arena)
    free = arena.free_cells(w.robot.radius, w.robot.cell)
    for _ in range(100):                         # 2.5 m along y = 1.1 from x = 0.3
        w.step(np.array([[1.0, 0.0, 1.0, 0.0]]))
    # centre visits x in [0.31, 2.81]: cells 1..14 of row 5 (cell 0.2 m)
    assert w.coverage[0] == pytest.approx(14 / free.sum())


def test_free_cells_exclude_obstacles_and_unreachable_space() -> None:
    walled = Arena(width=4.0, height=4.0, start=(0.5, 0.5, 0.0),
                   boxes=[[1.8, 1.8, 2.2, 2.2]], walls=[[2.0, 0.0, 2.0, 4.0]])
    free = walled.free_cells(0.12, 0.2)
    assert free[:, :10].sum() > 0 and free[:, 10:].sum() == 0   # right half is cut off by the wall
    open_ = Arena(width=4.0, height=4.0, start=(0.5, 0.5, 0.0), boxes=[[1.8, 1.8, 2.2, 2.2]])
    f2 = open_.free_cells(0.12, 0.2)
    assert not f2[9:11, 9:11].any()              # cells inside the box
    assert not f2[0, 0]                          # cell centre (0.1, 0.1) is 0.1 m < r from the walls
    assert f2[5, 5]


# ----------------------------------------------------------------------------- determinism
class _Wiggle:
    """A controller that uses the random input (so seeds matter)."""

    def reset(self, seed: int) -> None:
        pass

    def act(self, sensors: np.ndarray) -> np.ndarray:
        r = sensors[8]
        return np.array([1.0, 0.0, r, 0.0])


def test_episodes_are_deterministic_and_seeded() -> None:
    arena = random_arena(3)
    a = run_episode(_Wiggle(), arena, steps=300, seed=1)
    b = run_episode(_Wiggle(), arena, steps=300, seed=1)
    c = run_episode(_Wiggle(), arena, steps=300, seed=2)
    assert np.array_equal(a.trajectory, b.trajectory)
    assert not np.array_equal(a.trajectory, c.trajectory)
    assert a.summary() == b.summary()


def test_a_robot_does_not_depend_on_its_batch() -> None:
    arenas = [random_arena(k) for k in range(3)]
    alone = World(arenas[2], 9, record=True)
    batch = World(arenas, [4, 5, 9], record=True)
    rng = np.random.default_rng(0)
    for t in range(300):   # crosses a random-input block boundary (256 steps)
        m = rng.random((3, 4))
        assert np.array_equal(batch.sensors()[2], alone.sensors()[0]), t
        batch.step(m)
        alone.step(m[2:3])
    assert np.array_equal(batch.episodes()[2].trajectory, alone.episodes()[0].trajectory)
    assert batch.coverage[2] == alone.coverage[0] and batch.collisions[2] == alone.collisions[0]


def test_reset_restarts_everything() -> None:
    w = World(random_arena(5), 3)
    s0 = w.sensors()
    for _ in range(20):
        w.step(np.array([[1.0, 0.0, 0.5, 0.0]]))
    w.reset()
    assert np.array_equal(w.sensors(), s0) and w.distance[0] == 0 and w.t == 0


# ----------------------------------------------------------------------------- arenas
def test_random_arena_is_seeded_and_starts_clear() -> None:
    for k in range(20):
        a = random_arena(k)
        assert a.to_dict() == random_arena(k).to_dict()
        assert a.clearance(np.array([a.start[:2]]))[0] > 2 * 0.12
        assert len(a.circles) + len(a.boxes) == 8
    assert random_arena(1).to_dict() != random_arena(2).to_dict()
    assert random_arena((1, 2)).to_dict() != random_arena((2, 1)).to_dict()
    with pytest.raises(ArenaError, match="seed = -1 is out of range"):
        random_arena(-1)
    with pytest.raises(ValueError, match="seed = -3 is out of range"):
        World(random_arena(0), -3)
    stuck = Arena(width=4.0, height=4.0, start=(1.0, 1.0, 0.0), circles=[[1.05, 1.0, 0.1]], name="stuck")
    with pytest.raises(ValueError, match="arena 'stuck': the start \\[1.0, 1.0\\] is -0.050 m from an obstacle"):
        World(stuck)


def test_arena_file_round_trip_and_shipped(tmp_path) -> None:
    assert {"two-rooms", "pillars", "corridor"} <= set(arena_names())
    for name in arena_names():
        a = load_arena(name)
        assert a.name == name and a.free_cells(0.12).sum() > 100
        p = tmp_path / f"{name}.json"
        save_arena(a, p)
        b = load_arena(p)
        assert b.to_dict() == a.to_dict()


@pytest.mark.parametrize(("patch", "needle"), [
    ({"format": "x"}, "field 'format' = 'x'"),
    ({"version": 2}, "field 'version' = 2"),
    ({"size": [0.1, 4]}, "width = 0.1 is out of range"),
    ({"start": [9, 1, 0]}, "field 'start' = [9.0, 1.0] is outside the arena"),
    ({"boxes": [[2, 2, 1, 3]]}, "boxes[0] = [2.0, 2.0, 1.0, 3.0] must have x0 < x1"),
    ({"circles": [[1, 1]]}, "'circles[0]' = [1, 1]; expected 3 numbers"),
    ({"circles": [[1, 1, -1]]}, "circles[0] radius = -1.0 is out of range"),
    ({"doors": []}, "unknown field 'doors'"),
])
def test_bad_arena_files_name_the_field(tmp_path, patch, needle) -> None:
    doc = {"format": "spikeforge.arena", "version": 1, "size": [4, 4], "start": [1, 1, 0]}
    doc.update(patch)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ArenaError) as e:
        load_arena(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_missing_arena_lists_the_shipped_ones() -> None:
    with pytest.raises(ArenaError, match="shipped arenas: corridor"):
        load_arena("no-such-arena")


# ----------------------------------------------------------------------------- plots
def test_trajectory_png_and_gif(tmp_path) -> None:
    from spikeforge.toolchain.robot.plot import save_animation, save_trajectory

    arena = Arena(width=2.0, height=2.0, start=(1.75, 1.0, 0.0), circles=[[0.5, 0.5, 0.2]])
    ep = run_episode(_Wiggle(), arena, steps=40, seed=0)
    assert ep.collisions >= 1                       # it drives into the right wall
    png = tmp_path / "t.png"
    save_trajectory(ep, png, "wiggle")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    gif = tmp_path / "t.gif"
    n = save_animation(ep, gif, "wiggle", max_frames=8)
    assert n == 8 and gif.read_bytes()[:6] == b"GIF89a"
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 8
    no_traj = run_episode(_Wiggle(), arena, steps=5, record=False)
    with pytest.raises(ValueError, match="record=True"):
        save_trajectory(no_traj, tmp_path / "x.png")
