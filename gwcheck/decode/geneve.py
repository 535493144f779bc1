"""Geneve (RFC 8926) and the AWS Gateway Load Balancer options of class 0x0108 (AWS GWLB guide; shared/docs/gwlb.md).

The parsing is C (``geneve.h``, compiled into ``_decode``); this module keeps the constants for Python code,
``vpce_id`` and ``walk_options``.  ``tests/test_native_decode.py`` checks that the constants agree.
"""

from __future__ import annotations

import numpy as np

from . import _decode

GENEVE_PORT = 6081  # IANA, RFC 8926 3.3
GENEVE_HEADER_BYTES = 8  # RFC 8926 3.4, before the options
GENEVE_VERSION = 0
GENEVE_OPT_LEN_MASK = 0x3F  # option length in 4-byte words, low 6 bits of byte 0
GENEVE_FLAG_OAM = 0x80  # byte 1
GENEVE_FLAG_CRITICAL = 0x40  # byte 1
GENEVE_PROTOCOL = 2
GENEVE_VNI = 4
OPTION_HEADER_BYTES = 4  # class (16), type (8), 3 reserved bits + length in words (5)
OPTION_TYPE_CRITICAL = 0x80
OPTION_LENGTH_MASK = 0x1F

PROTOCOL_IPV4 = 0x0800
PROTOCOL_IPV6 = 0x86DD
PROTOCOL_ETHERNET = 0x6558  # transparent Ethernet bridging: other clouds' Geneve

AWS_OPTION_CLASS = 0x0108  # GWLB metadata (AWS ELB guide, "Gateway Load Balancers")
AWS_OPTION_ENDPOINT_ID = 1  # 8 bytes: the VPC endpoint the flow entered by
AWS_OPTION_ATTACHMENT_ID = 2  # 8 bytes
AWS_OPTION_FLOW_COOKIE = 3  # 4 bytes: GWLB's identifier of the flow
AWS_OPTION_BYTES = (0, 8, 8, 4)  # data length by type
GWLB_OPTION_LENGTH_BYTES = 32  # the three options with their headers
GWLB_VNI = 0

# schema.GwlbShape, as plain ints as in the C code.
SHAPE_MISSING_ENDPOINT = 0x0001
SHAPE_MISSING_ATTACHMENT = 0x0002
SHAPE_MISSING_COOKIE = 0x0004
SHAPE_DUPLICATE_OPTION = 0x0008
SHAPE_UNKNOWN_AWS_OPTION = 0x0010
SHAPE_OTHER_CLASS = 0x0020
SHAPE_OPTION_LENGTH = 0x0040
SHAPE_ORDER = 0x0080
SHAPE_CRITICAL_OPTION = 0x0100
SHAPE_HEADER = 0x0200
SHAPE_OUTER_IPV6 = 0x0400

# Outcomes, mapped to DecodeStatus by the kernel.
GENEVE_OK = 0
GENEVE_TRUNCATED = 1
GENEVE_BAD_VERSION = 2
GENEVE_OPTIONS_TRUNCATED = 3
GENEVE_BAD_OPTIONS = 4


def vpce_id(endpoint_id: int) -> str:
    """Render an endpoint ID the way AWS names the endpoint: ``vpce-`` and 17 lowercase hex digits."""
    return f"vpce-{int(endpoint_id):017x}"


def walk_options(
    buf: np.ndarray,
    option_starts: np.ndarray,
    counts: np.ndarray,
    option_class: np.ndarray,
    option_type: np.ndarray,
    length: np.ndarray,
    data_start: np.ndarray,
) -> None:
    """Fill one row per option of each packet: ``counts[i]`` options from ``option_starts[i]`` (RFC 8926 3.5).

    The counts come from the decoder, which has already checked that these options lie inside the packet;
    the C walk checks again that each option header lies inside ``buf`` (ValueError if not).  ``buf`` is
    uint8, ``option_starts``, ``counts`` and ``data_start`` int64, ``option_class`` and ``length`` uint16,
    ``option_type`` uint8 (TypeError for any other dtype).
    """
    _decode.walk_options(buf, option_starts, counts, option_class, option_type, length, data_start)
