"""Top-down plots of robot episodes: a trajectory PNG and an animated GIF.

Only figure objects are used (Agg canvas, no ``pyplot`` state), as in
:mod:`spikeforge.toolchain.plot`, so plotting never opens a window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from .arena import Arena
from .world import Episode

__all__ = ["draw_arena", "save_animation", "save_trajectory", "trajectory_figure"]

log = logging.getLogger(__name__)


def draw_arena(ax: Axes, arena: Arena) -> None:
    """Walls, boxes and circles of ``arena`` on ``ax`` (equal aspect, metres)."""
    ax.add_patch(Rectangle((0, 0), arena.width, arena.height, fill=False, lw=2.5, ec="black"))
    for x0, y0, x1, y1 in arena.boxes:
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fc="0.45", ec="black"))
    for x, y, r in arena.circles:
        ax.add_patch(Circle((x, y), r, fc="0.45", ec="black"))
    for x0, y0, x1, y1 in arena.walls:
        ax.plot([x0, x1], [y0, y1], color="black", lw=2.5)
    pad = 0.05 * max(arena.width, arena.height)
    ax.set_xlim(-pad, arena.width + pad)
    ax.set_ylim(-pad, arena.height + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _figure(arena: Arena) -> tuple[Figure, Axes]:
    aspect = arena.height / arena.width
    fig = Figure(figsize=(7, max(3.0, min(9.0, 6 * aspect + 1))), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _title(ep: Episode, label: str | None) -> str:
    head = f"{label} in " if label else ""
    return (f"{head}{ep.arena.name}\n{ep.steps} steps: coverage {ep.coverage:.1%}, "
            f"{ep.collisions} collisions, {ep.distance:.1f} m")


def trajectory_figure(episode: Episode, label: str | None = None, radius: float = 0.12) -> Figure:
    """Arena, path coloured by time (colour bar in control steps), start/end robot, collisions.

    Parameters
    ----------
    episode
        A recorded episode (``run_episode(..., record=True)``).
    label
        Controller name for the title.
    radius
        Robot radius for the start and end discs.
    """
    if len(episode.trajectory) == 0:
        raise ValueError("episode has no trajectory; run it with record=True")
    fig, ax = _figure(episode.arena)
    draw_arena(ax, episode.arena)
    xy = episode.trajectory[:, :2]
    if len(xy) > 1:
        segs = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(segs, cmap="viridis", lw=1.8)
        lc.set_array(np.arange(len(segs)))
        ax.add_collection(lc)
        fig.colorbar(lc, ax=ax, label="control step", fraction=0.04, pad=0.02)
    onsets = np.flatnonzero(episode.blocked & ~np.concatenate([[False], episode.blocked[:-1]]))
    if len(onsets):
        p = episode.trajectory[onsets + 1]
        ax.scatter(p[:, 0], p[:, 1], marker="x", s=50, color="red", zorder=5,
                   label=f"collision ({len(onsets)})")
    for pose, color, name in ((episode.trajectory[0], "tab:green", "start"),
                              (episode.trajectory[-1], "tab:blue", "end")):
        ax.add_patch(Circle(pose[:2], radius, fill=False, ec=color, lw=2, label=name))
        ax.plot([pose[0], pose[0] + radius * np.cos(pose[2])], [pose[1], pose[1] + radius * np.sin(pose[2])],
                color=color, lw=2)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(_title(episode, label), fontsize=10)
    fig.tight_layout()
    return fig


def save_trajectory(episode: Episode, path: str | Path, label: str | None = None, radius: float = 0.12) -> None:
    """Write :func:`trajectory_figure` to ``path`` (PNG, or any format matplotlib infers)."""
    fig = trajectory_figure(episode, label, radius)
    fig.savefig(str(path))
    log.info("wrote trajectory plot to %s", path)


def save_animation(episode: Episode, path: str | Path, label: str | None = None, radius: float = 0.12,
                   fps: int = 15, max_frames: int = 150,
                   progress: Callable[[int, int], None] | None = None) -> int:
    """Write an animated GIF of the episode (Pillow writer); return the number of frames.

    Frames are spread evenly over the episode (at most ``max_frames``); each shows the path so
    far, the robot disc with its heading, and the collisions so far.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    traj = episode.trajectory
    if len(traj) == 0:
        raise ValueError("episode has no trajectory; run it with record=True")
    if max_frames < 1 or fps < 1:
        raise ValueError(f"max_frames = {max_frames}, fps = {fps}; both must be >= 1")
    frames = np.unique(np.linspace(0, len(traj) - 1, min(max_frames, len(traj))).astype(int))
    fig, ax = _figure(episode.arena)
    draw_arena(ax, episode.arena)
    (path_line,) = ax.plot([], [], color="tab:blue", lw=1.5)
    body = Circle(traj[0, :2], radius, fc="tab:orange", ec="black", zorder=4)
    ax.add_patch(body)
    (nose,) = ax.plot([], [], color="black", lw=2, zorder=5)
    hits = ax.scatter([], [], marker="x", s=40, color="red", zorder=5)
    blocked = np.concatenate([[False], episode.blocked])
    onset = blocked & ~np.concatenate([[False], blocked[:-1]])
    fig.tight_layout()

    def update(k: int) -> tuple:
        path_line.set_data(traj[: k + 1, 0], traj[: k + 1, 1])
        x, y, th = traj[k]
        body.center = (x, y)
        nose.set_data([x, x + radius * np.cos(th)], [y, y + radius * np.sin(th)])
        hit = traj[: k + 1][onset[: k + 1]]
        hits.set_offsets(hit[:, :2] if len(hit) else np.zeros((0, 2)))
        ax.set_title(f"{label + ': ' if label else ''}{episode.arena.name}, step {k}, "
                     f"{int(onset[: k + 1].sum())} collisions", fontsize=10)
        return path_line, body, nose, hits

    anim = FuncAnimation(fig, update, frames=frames, blit=False)
    cb = (lambda i, n: progress(i + 1, n)) if progress else None
    anim.save(str(path), writer=PillowWriter(fps=fps), progress_callback=cb)
    log.info("wrote %d-frame animation to %s", len(frames), path)
    return len(frames)
