"""Named unit conversions for mappings: linear units by dimension, temperatures by formula."""

from __future__ import annotations

from collections.abc import Callable

from linli.devices.adapters.mapping.spec import MappingError

# unit → (dimension, factor to the dimension's base unit)
LINEAR: dict[str, tuple[str, float]] = {
    "Pa": ("pressure", 1.0),
    "hPa": ("pressure", 100.0),
    "kPa": ("pressure", 1e3),
    "MPa": ("pressure", 1e6),
    "mbar": ("pressure", 100.0),
    "bar": ("pressure", 1e5),
    "psi": ("pressure", 6894.757293168),
    "mmHg": ("pressure", 133.322387415),
    "mm": ("length", 1e-3),
    "cm": ("length", 1e-2),
    "m": ("length", 1.0),
    "km": ("length", 1e3),
    "mL": ("volume", 1e-6),
    "L": ("volume", 1e-3),
    "m3": ("volume", 1.0),
    "m³": ("volume", 1.0),
    "Wh": ("energy", 1.0),
    "kWh": ("energy", 1e3),
    "MWh": ("energy", 1e6),
    "W": ("power", 1.0),
    "kW": ("power", 1e3),
    "mA": ("current", 1e-3),
    "A": ("current", 1.0),
    "mV": ("voltage", 1e-3),
    "V": ("voltage", 1.0),
    "%": ("ratio", 1e-2),
    "‰": ("ratio", 1e-3),
    "ratio": ("ratio", 1.0),
    "ms": ("time", 1e-3),
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
}

_TO_CELSIUS: dict[str, Callable[[float], float]] = {
    "°C": lambda v: v,
    "°F": lambda v: (v - 32) * 5 / 9,
    "K": lambda v: v - 273.15,
}
_FROM_CELSIUS: dict[str, Callable[[float], float]] = {
    "°C": lambda v: v,
    "°F": lambda v: v * 9 / 5 + 32,
    "K": lambda v: v + 273.15,
}
_ALIASES = {"℃": "°C", "C": "°C", "degC": "°C", "℉": "°F", "F": "°F", "degF": "°F", "m^3": "m3"}


def canonical_unit(unit: str) -> str:
    """A unit's canonical spelling (℃ → °C, F → °F)."""
    unit = unit.strip()
    return _ALIASES.get(unit, unit)


def converter(source: str, target: str, *, where: str) -> Callable[[float], float]:
    """The function converting `source` to `target` (MappingError for an unknown or mismatched pair)."""
    src, dst = canonical_unit(source), canonical_unit(target)
    if src in _TO_CELSIUS and dst in _FROM_CELSIUS:
        to_c, from_c = _TO_CELSIUS[src], _FROM_CELSIUS[dst]
        return lambda value: from_c(to_c(value))
    if src in LINEAR and dst in LINEAR and LINEAR[src][0] == LINEAR[dst][0]:
        ratio = LINEAR[src][1] / LINEAR[dst][1]
        return lambda value: value * ratio
    raise MappingError(f"{where}: 不支持的单位换算 {source} → {target}")
