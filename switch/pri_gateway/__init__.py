"""Trunks to PRI media gateways: Q.850 <-> SIP causes and the Reason header, number
normalisation for China, caller-ID presentation and privacy."""

from switch.pri_gateway.numbers import (
    CallerIdentity,
    NormalizedNumber,
    NumberError,
    NumberKind,
    normalize,
    to_dialable,
)
from switch.pri_gateway.q850 import (
    CAUSE_NAMES,
    CauseClass,
    ReasonHeaderError,
    ReasonValue,
    cause_class,
    cause_name,
    format_reason,
    parse_reason,
    q850_cause_for_status,
    q850_cause_from_reason,
    sip_status_for_cause,
)

__all__ = [
    "CAUSE_NAMES",
    "CallerIdentity",
    "CauseClass",
    "NormalizedNumber",
    "NumberError",
    "NumberKind",
    "ReasonHeaderError",
    "ReasonValue",
    "cause_class",
    "cause_name",
    "format_reason",
    "normalize",
    "parse_reason",
    "q850_cause_for_status",
    "q850_cause_from_reason",
    "sip_status_for_cause",
    "to_dialable",
]
