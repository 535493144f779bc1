"""What a simulated GWLB deployment looks like: endpoints, GWLB nodes, appliances, traffic and how it is captured."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

LINKS = ("ethernet", "vlan", "sll2")
FORMATS = ("pcap", "pcap-ns", "pcapng")
APPLIANCE_MODES = ("bridge", "route")  # route: the appliance decrements the inner TTL/hop limit


@dataclass
class Scenario:
    """A deployment and its traffic; every random choice follows from ``seed``."""

    seed: int = 1
    flows: int = 40
    duration_s: float = 5.0
    start_ns: int = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
    appliances: int = 3
    gwlb_nodes: int = 2
    endpoints: int = 2
    weights: list[float] | None = None  # relative share of flows per appliance; None: even
    ipv6_share: float = 0.3
    protocol_mix: dict[str, float] = field(default_factory=lambda: {"tcp": 0.6, "udp": 0.3, "icmp": 0.1})
    latency_median_us: list[float] = field(default_factory=lambda: [80.0])  # one value, or one per appliance
    latency_sigma: float = 0.5  # lognormal shape
    endpoint_setup_ms: float = 20.0  # extra dwell of an appliance's first packet from each endpoint
    appliance_mode: str = "bridge"
    link: str = "ethernet"
    vlan_id: int = 100
    format: str = "pcap"
    split: bool = False  # one capture per appliance instead of one merged capture
    clock_offsets_ms: list[float] = field(default_factory=list)  # per appliance, when split

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot describe a deployment."""
        if self.flows < 0 or self.appliances < 1 or self.gwlb_nodes < 1 or self.endpoints < 1:
            raise ConfigError("flows must be >= 0 and appliances, GWLB nodes and endpoints >= 1")
        if self.duration_s <= 0:
            raise ConfigError(f"duration must be positive, got {self.duration_s} s")
        if self.weights is not None and (len(self.weights) != self.appliances or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ConfigError(f"weights need one non-negative value per appliance ({self.appliances}), not all 0")
        if len(self.latency_median_us) not in (1, self.appliances):
            raise ConfigError(f"latency needs one value or one per appliance ({self.appliances})")
        if self.clock_offsets_ms and len(self.clock_offsets_ms) != self.appliances:
            raise ConfigError(f"clock offsets need one value per appliance ({self.appliances})")
        if not 0.0 <= self.ipv6_share <= 1.0:
            raise ConfigError(f"IPv6 share must be within 0..1, got {self.ipv6_share}")
        if self.link not in LINKS:
            raise ConfigError(f"link must be one of {', '.join(LINKS)}, got {self.link!r}")
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.appliance_mode not in APPLIANCE_MODES:
            raise ConfigError(f"appliance mode must be one of {', '.join(APPLIANCE_MODES)}")
        unknown = set(self.protocol_mix) - {"tcp", "udp", "quic", "icmp"}
        if unknown or sum(self.protocol_mix.values()) <= 0:
            raise ConfigError(f"protocol mix takes tcp, udp, quic, icmp with positive total; got {self.protocol_mix}")


def appliance_ip(index: int) -> str:
    return f"10.0.{index % 3}.{100 + index}"


def gwlb_node_ip(index: int) -> str:
    return f"10.0.{index % 3}.{10 + index}"
