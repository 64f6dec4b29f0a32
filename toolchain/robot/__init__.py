"""spikeforge.toolchain.robot: the robot application in one place.

A differential-drive robot with NeoN's sensors in 2D arenas, driven in closed loop by a
spiking network on any backend (:mod:`spikeforge.toolchain.backends`: the reference model,
the emulated board, the Verilator virtual board, a board at a serial port).

:mod:`.arena`
    Arenas (JSON files; the shipped ones in ``arenas/``) and the coverage grid.
:mod:`.world`
    The robot, its sensors and kinematics; one batched :class:`~.world.World`; episodes.
:mod:`.controllers`
    Baselines (random walk, Braitenberg), the robot's I/O codes and networks (the shipped
    evolved controller in ``robots/``), and the spiking controller on a backend.
:mod:`.task`
    The navigation task for the evolutionary trainer (a population in lockstep).
:mod:`.train`
    The recipe of the shipped evolved controller.
:mod:`.loop`
    The closed loop from a command-line-like spec: controller, arena, timed episode, summary.
:mod:`.bench`
    The robot benchmark's cases (figure dicts).
:mod:`.plot`
    Trajectory plots and animations.
:mod:`.demo`
    The end-to-end demo: train, compile, bitstream, board, drive, compare, plot.
"""
