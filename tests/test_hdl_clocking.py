"""PLL divider math (iCE40 SB_PLL40, ECP5 EHXPLLL) and the PLL bench-top elaboration."""

from __future__ import annotations

import pytest

from spikeforge.hdl.clocking import PLLError, ecp5_pll, ice40_pll


@pytest.mark.parametrize("f_out", [16, 24, 30, 36, 40, 42, 48, 50, 60, 66, 72, 80, 100, 120, 200, 275])
def test_ice40_pll_obeys_the_sysclock_rules(f_out):
    s = ice40_pll(12.0, f_out)
    assert 0 <= s.divr <= 15 and 0 <= s.divf <= 127 and 1 <= s.divq <= 6
    assert 10 <= s.f_pfd <= 133
    assert 533 <= s.f_vco <= 1066
    assert abs(s.f_out - f_out) <= 0.01 * f_out
    assert s.f_out == pytest.approx(12.0 / (s.divr + 1) * (s.divf + 1) / 2**s.divq)
    assert 1 <= s.filter_range <= 6


def test_ice40_pll_known_settings():
    # 12 -> 48 MHz: PFD 12, VCO 768 = 12 * 64, /16 (as icepll gives)
    s = ice40_pll(12.0, 48.0)
    assert (s.divr, s.divf, s.divq, s.filter_range) == (0, 63, 4, 1)
    s = ice40_pll(12.0, 36.0)
    assert (s.divr, s.divf, s.divq, s.filter_range) == (0, 47, 4, 1)
    assert s.f_out == 36.0
    # FILTER_RANGE follows the PFD frequency
    assert ice40_pll(30.0, 60.0).filter_range == 3
    assert ice40_pll(100.0, 100.0).filter_range in (5, 6)


def test_ice40_pll_refuses_impossible_targets():
    with pytest.raises(PLLError, match="16..275"):
        ice40_pll(12.0, 10.0)
    with pytest.raises(PLLError, match="input"):
        ice40_pll(5.0, 48.0)
    # 12 MHz cannot make 49.999 MHz within 1e-5
    with pytest.raises(PLLError, match="closest"):
        ice40_pll(12.0, 49.999, tolerance=1e-5)


@pytest.mark.parametrize("f_out", [25, 40, 50, 62.5, 75, 80, 90, 100, 125, 150, 200])
def test_ecp5_pll_obeys_the_vco_rules(f_out):
    s = ecp5_pll(25.0, f_out)
    assert 1 <= s.clki_div <= 128 and 1 <= s.clkfb_div <= 80 and 1 <= s.clkop_div <= 128
    assert 400 <= s.f_vco <= 800
    assert s.clkop_cphase == s.clkop_div - 1
    assert abs(s.f_out - f_out) <= 0.01 * f_out
    assert s.f_out == pytest.approx(25.0 / s.clki_div * s.clkfb_div)


def test_ecp5_pll_known_settings():
    s = ecp5_pll(25.0, 100.0)
    assert (s.clki_div, s.clkfb_div) == (1, 4) and s.f_vco == 800.0 and s.clkop_div == 8
    s = ecp5_pll(25.0, 65.0)  # needs a reference divider: 25 / 5 * 13
    assert (s.clki_div, s.clkfb_div) == (5, 13) and s.f_out == pytest.approx(65.0)
    # 48 MHz is not reachable from 25 MHz (the PFD would be below 3.125 MHz): closest is 46.875
    with pytest.raises(PLLError, match="closest 46.88"):
        ecp5_pll(25.0, 48.0)
    assert ecp5_pll(25.0, 48.0, tolerance=0.05).f_out == pytest.approx(46.875)
    with pytest.raises(PLLError):
        ecp5_pll(25.0, 1000.0)


@pytest.mark.parametrize("board,mhz,cell", [("icebreaker", 48.0, "SB_PLL40_PAD"), ("ulx3s-85f", 100.0, "EHXPLLL")])
def test_bench_top_clocks_the_core_from_a_constrained_pll(board, mhz, cell):
    from spikeforge.firmware.build import get_platform
    from spikeforge.hdl.bench_top import CoreBenchTop
    from spikeforge.hdl.config import PRESETS

    top = CoreBenchTop(PRESETS["tiny"])
    plan = get_platform(board).build(top, name="t", do_build=False)
    il = plan.files["t.il"]
    assert cell in il
    constraints = "".join(v for k, v in plan.files.items() if k.endswith((".pcf", ".lpf")))
    assert "sync_pll_clk" in constraints
    assert top.pll is not None and top.pll.setting is not None
    assert top.pll.setting.f_out == pytest.approx(mhz)
