"""The graph compiler: any IR network → core images, provably unchanged.

Entry points::

    from spikeforge.toolchain.compiler import design_rule_check, quantize_network, compile_network
    report = design_rule_check(net, config)          # DrcReport: .ok, .violations, .raise_if_failed()
    qnet, qreport = quantize_network(net, config)    # float -> the core's integer widths
    result = compile_network(net, config, max_cores=1, verify_steps=0)   # CompileResult
    chosen = fit(net, [tiny, small, up5k])           # FitResult: as-is, compiled, smallest core

Passes live one per module (:mod:`.prune`, :mod:`.quantize`, :mod:`.delays`, :mod:`.fanout`,
:mod:`.placement`, :mod:`.partition`), the infrastructure in :mod:`.passes`, lowering and the
deployment simulator in :mod:`.lower`.
"""

from .drc import DrcReport, Violation, design_rule_check
from .fit import (
    DEPLOYMENT_FORMAT,
    FitResult,
    NotBakeableError,
    deployment_document,
    fit,
    write_compiled,
)
from .lower import CompileResult, Route, compile_network, default_flow, simulate_deployment
from .passes import CompileContext, CompileError, EquivalenceError, Flow, Pass, PassManager
from .quantize import QuantizeReport, quantize_network

__all__ = [
    "DEPLOYMENT_FORMAT",
    "FitResult",
    "NotBakeableError",
    "deployment_document",
    "fit",
    "write_compiled",
    "CompileContext",
    "CompileError",
    "CompileResult",
    "DrcReport",
    "EquivalenceError",
    "Flow",
    "Pass",
    "PassManager",
    "QuantizeReport",
    "Route",
    "Violation",
    "compile_network",
    "default_flow",
    "design_rule_check",
    "quantize_network",
    "simulate_deployment",
]
