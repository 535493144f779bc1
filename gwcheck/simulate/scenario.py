"""What a simulated GWLB deployment looks like: endpoints, GWLB nodes, appliances, traffic and how it is captured."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

LINKS = ("ethernet", "vlan", "sll2")
FORMATS = ("pcap", "pcap-ns", "pcapng")
APPLIANCE_MODES = ("bridge", "route")  # route: the appliance decrements the inner TTL/hop limit
PROTOCOLS = ("tcp", "udp", "quic", "icmp")
MAX_APPLIANCES = 100  # appliances are 10.0.x.100 to 10.0.x.199
MAX_GWLB_NODES = 90  # GWLB nodes are 10.0.x.10 to 10.0.x.99
MAX_VLAN_ID = 4094  # IEEE 802.1Q: 4095 is reserved
# Faults given as a number of flows; a flow has at most one.
FLOW_FAULTS = ("asymmetric", "one_sided", "moved", "stale_cookie", "modified_options", "idle_gap", "over_mtu", "outer_fragments", "gso")


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
    health_check_interval_s: float = 10.0  # TCP/HTTP probes from every GWLB node to every appliance; 0: none
    health_check_port: int = 80
    # Faults (shared/docs/gwlb.md, "What goes wrong"): counts of flows, or rates.
    asymmetric: int = 0  # the reverse direction enters by another endpoint, GWLB node and appliance
    one_sided: int = 0  # the reverse direction never reaches an appliance
    moved: int = 0  # the flow changes appliance part way (failover, rebalance)
    not_returned_rate: float = 0.0  # share of ingress packets the appliance never sends back
    not_returned_endpoint: int | None = None  # restrict those drops to one endpoint (by index)
    stale_cookie: int = 0  # a new flow reuses an old flow's 5-tuple; the appliance answers with the old options
    modified_options: int = 0  # the appliance returns another attachment ID
    originated: int = 0  # flows the appliance sends into GWLB that never came from it
    idle_gap: int = 0  # a silence past the idle timeout, then a new cookie (and maybe another appliance)
    over_mtu: int = 0  # jumbo flows: MSS 8961, inner packets over GWLB's 8,500 bytes
    outer_fragments: int = 0  # the appliance's MTU is 1,500: its larger return legs leave as outer IP fragments
    gso: int = 0  # flows seen as GSO/GRO super-packets (a capture artefact, not a fault)
    health_check_unanswered: float = 0.0  # share of probes an appliance leaves unanswered
    failing_appliance: int | None = None  # an appliance that answers no probe at all (by index)
    tcp_idle_timeout_s: float = 350.0  # GWLB's TCP idle timeout
    udp_idle_timeout_s: float = 120.0  # and for other protocols

    def validate(self) -> None:
        """Raise ConfigError for settings that cannot describe a deployment."""
        if self.flows < 0 or self.appliances < 1 or self.gwlb_nodes < 1 or self.endpoints < 1:
            raise ConfigError("flows must be >= 0 and appliances, GWLB nodes and endpoints >= 1")
        if self.appliances > MAX_APPLIANCES or self.gwlb_nodes > MAX_GWLB_NODES:
            raise ConfigError(f"at most {MAX_APPLIANCES} appliances and {MAX_GWLB_NODES} GWLB nodes")
        if self.duration_s <= 0:
            raise ConfigError(f"duration must be positive, got {self.duration_s} s")
        if self.weights is not None and (len(self.weights) != self.appliances or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ConfigError(f"weights need one non-negative value per appliance ({self.appliances}), not all 0")
        if len(self.latency_median_us) not in (1, self.appliances) or min(self.latency_median_us) <= 0:
            raise ConfigError(f"latency needs one positive value or one per appliance ({self.appliances})")
        if self.clock_offsets_ms and len(self.clock_offsets_ms) != self.appliances:
            raise ConfigError(f"clock offsets need one value per appliance ({self.appliances})")
        for name in ("latency_sigma", "endpoint_setup_ms", "health_check_interval_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 0")
        if self.tcp_idle_timeout_s <= 0 or self.udp_idle_timeout_s <= 0:
            raise ConfigError("idle timeouts must be positive")
        if not 0 <= self.vlan_id <= MAX_VLAN_ID:
            raise ConfigError(f"VLAN ID must be within 0..{MAX_VLAN_ID}, got {self.vlan_id}")
        if not 0 < self.health_check_port <= 0xFFFF:
            raise ConfigError(f"health check port must be within 1..65535, got {self.health_check_port}")
        for name, value, choices in (("link", self.link, LINKS), ("format", self.format, FORMATS), ("appliance mode", self.appliance_mode, APPLIANCE_MODES)):
            if value not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        counts = [getattr(self, name) for name in FLOW_FAULTS]
        if min(counts + [self.originated]) < 0:
            raise ConfigError("fault counts must be >= 0")
        if sum(counts) > self.flows:
            raise ConfigError(f"{sum(counts)} faulty flows asked for but only {self.flows} flows")
        if (self.asymmetric or self.moved) and self.appliances < 2:
            raise ConfigError("asymmetric and moved flows need at least 2 appliances")
        if self.asymmetric and self.endpoints < 2:
            raise ConfigError("asymmetric flows need at least 2 endpoints (the reverse direction enters by another)")
        for name in ("ipv6_share", "not_returned_rate", "health_check_unanswered"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name.replace('_', ' ')} must be within 0..1, got {getattr(self, name)}")
        if self.failing_appliance is not None and not 0 <= self.failing_appliance < self.appliances:
            raise ConfigError(f"failing appliance must be 0..{self.appliances - 1}")
        if self.not_returned_endpoint is not None and not 0 <= self.not_returned_endpoint < self.endpoints:
            raise ConfigError(f"not-returned endpoint must be 0..{self.endpoints - 1}")
        unknown = set(self.protocol_mix) - set(PROTOCOLS)
        if unknown or min(self.protocol_mix.values(), default=0) < 0 or sum(self.protocol_mix.values()) <= 0:
            raise ConfigError(f"protocol mix takes {', '.join(PROTOCOLS)} with non-negative shares, not all 0; got {self.protocol_mix}")


def appliance_ip(index: int) -> str:
    return f"10.0.{index % 3}.{100 + index}"


def gwlb_node_ip(index: int) -> str:
    return f"10.0.{index % 3}.{10 + index}"
