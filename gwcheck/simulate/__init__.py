"""GWLB traffic with known truth: ``simulate(Scenario(...), "out.pcap")`` writes captures and returns their truth."""

from .scenario import Scenario
from .simulator import simulate

__all__ = ["Scenario", "simulate"]
