"""Calibration maths: interpolated and perspective floor lines, floors at the boundaries, columns, JSON."""

from __future__ import annotations

import copy

import pytest

from linli.vision.calibration import Calibration, CalibrationError


def simple() -> Calibration:
    """A 1080p camera, 20 floors between rows 1000 (ground) and 100 (roof), 4 columns."""
    return Calibration.from_simple(
        width=1920,
        height=1080,
        top_line=((400, 100), (1500, 100)),
        bottom_line=((300, 1000), (1600, 1000)),
        floors=20,
        columns=[300, 625, 950, 1275, 1600],
    )


def perspective() -> Calibration:
    """Floor lines as a camera looking up sees them: slanting, closer together towards the roof."""
    ys = [1000, 880, 775, 683, 603, 533]  # floors get shorter higher up
    lines = [((200.0, y + 0.02 * (1000 - y)), (1700.0, y - 0.02 * (1000 - y))) for y in ys]
    return Calibration(width=1920, height=1080, floor_lines=lines, columns=[200, 950, 1700])


def test_from_simple_interpolates_the_lines() -> None:
    cal = simple()
    assert cal.floors == 20 and len(cal.floor_lines) == 21
    assert cal.floor_lines[0] == ((300, 1000), (1600, 1000))
    assert cal.floor_lines[10] == ((350, 550), (1550, 550))
    assert cal.floor_height_px(950, 500) == pytest.approx(45)
    assert cal.pixels_per_metre(950, 500) == pytest.approx(15)


def test_from_simple_with_a_column_count_spreads_them_evenly() -> None:
    cal = Calibration.from_simple(
        width=1920, height=1080, top_line=((400, 100), (1500, 100)), bottom_line=((300, 1000), (1600, 1000)),
        floors=3, columns=4,
    )  # fmt: skip
    assert cal.columns == [300, 625, 950, 1275, 1600]


@pytest.mark.parametrize(
    ("y", "floor"),
    [(999.0, 1), (1000.0, 1), (955.1, 1), (955.0, 2), (954.9, 2), (550.0, 11), (100.0, 20), (120.0, 20)],
)
def test_floor_at_boundaries(y: float, floor: int) -> None:
    assert simple().floor_at(950, y)[0] == floor


@pytest.mark.parametrize("y", [1000.5, 1070.0, 99.5, 5.0])
def test_outside_the_facade_is_no_floor(y: float) -> None:
    assert simple().floor_at(950, y)[0] is None


def test_uncertainty_is_the_pixel_error_in_floors() -> None:
    cal = simple()
    assert cal.floor_at(950, 500, 9.0)[1] == pytest.approx(0.2)
    assert cal.floor_at(950, 500)[1] == pytest.approx(1 / 45)
    # Higher up in a perspective view a floor is fewer pixels, so the same error is more floors.
    p = perspective()
    low, high = p.floor_at(950, 950, 10)[1], p.floor_at(950, 560, 10)[1]
    assert high > low


def test_perspective_lines_are_read_along_their_slant() -> None:
    p = perspective()
    # Line 1 runs from (200, 882.4) to (1700, 877.6): just above it on the left is floor 2, just below is 1.
    y_left = p.line_y(1, 200)
    assert p.floor_at(200, y_left - 1)[0] == 2
    assert p.floor_at(200, y_left + 1)[0] == 1
    y_right = p.line_y(1, 1700)
    assert y_right < y_left
    assert p.floor_at(1700, y_left - 1)[0] == 1  # the same row is still floor 1 on the right
    assert p.floor_position(950, p.line_y(3, 950)) == pytest.approx(3.0)
    assert p.floor_height_px(950, 650) < p.floor_height_px(950, 950)


@pytest.mark.parametrize(
    ("x", "column"), [(300, 1), (624.9, 1), (625, 1), (625.1, 2), (1600, 4), (299, None), (1601, None)]
)
def test_column_at(x: float, column: int | None) -> None:
    assert simple().column_at(x) == column


def test_json_round_trip() -> None:
    cal = Calibration(
        width=1280,
        height=720,
        floor_lines=[((0, 700), (1280, 690)), ((0, 100), (1280, 110))],
        columns=[10, 600, 1200],
        ignore=[[(0, 0), (100, 0), (100, 50)]],
        zone=[(0, 0), (1280, 0), (1280, 720)],
        sensitivity=0.8,
    )
    data = cal.to_json()
    assert data["floor_lines"][0] == [[0, 700], [1280, 690]]
    back = Calibration.from_json(copy.deepcopy(data))
    assert back.to_json() == data
    assert back.floor_at(640, 400)[0] == 1


def good_json() -> dict:
    return simple().to_json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("floor_lines"), "floor_lines"),
        (lambda d: d.update(width="1920"), "width"),
        (lambda d: d.update(height=0), "height"),
        (lambda d: d["floor_lines"].__setitem__(3, [[1, 2]]), "floor_lines[3]"),
        (lambda d: d["floor_lines"].__setitem__(3, [[500, 900], [500.5, 850]]), "floor_lines[3]"),
        (lambda d: d["floor_lines"].__setitem__(2, [[300, "x"], [1600, 900]]), "floor_lines[2][0][1]"),
        (lambda d: d["floor_lines"].reverse(), "floor_lines[1]"),
        (lambda d: d["floor_lines"].__setitem__(5, [[300, 100], [1600, 1000]]), "floor_lines[5]"),
        (lambda d: d.update(floor_lines=d["floor_lines"][:1]), "floor_lines"),
        (lambda d: d.update(columns=[300, 200, 900]), "columns[1]"),
        (lambda d: d.update(columns=[300]), "columns"),
        (lambda d: d.update(columns=[300, float("nan")]), "columns[1]"),
        (lambda d: d.update(ignore=[[[0, 0], [1, 1]]]), "ignore[0]"),
        (lambda d: d.update(zone=[[0, 0], [1, 1], [2, None]]), "zone[2][1]"),
        (lambda d: d.update(sensitivity=1.5), "sensitivity"),
        (lambda d: d.update(sensitivity=True), "sensitivity"),
    ],
)
def test_from_json_rejects_bad_input_naming_the_field(change, field: str) -> None:
    data = good_json()
    change(data)
    with pytest.raises(CalibrationError) as err:
        Calibration.from_json(data)
    assert err.value.field == field
    assert field in err.value.message and err.value.reason


def test_from_json_rejects_a_non_object() -> None:
    with pytest.raises(CalibrationError) as err:
        Calibration.from_json([1, 2])
    assert err.value.field == "calibration"


def test_from_simple_rejects_a_bad_floor_count() -> None:
    with pytest.raises(CalibrationError) as err:
        Calibration.from_simple(
            width=100,
            height=100,
            top_line=((0, 10), (90, 10)),
            bottom_line=((0, 90), (90, 90)),
            floors=0,
            columns=2,
        )
    assert err.value.field == "floors"
