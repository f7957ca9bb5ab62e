"""Property tests (hypothesis) for the scale ratio and the annotation round trips."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.data.annotations import (
    AnnotatedObject,
    Annotation,
    parse_voc_xml,
    read_loc_csv,
    write_voc_xml,
)
from src.data.boxes import Box, scale_ratio, select_box

FILE_SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[int, int, Box]:
    """An image size and a non-degenerate box fully inside it (integer pixels)."""
    width = draw(st.integers(1, 5000))
    height = draw(st.integers(1, 5000))
    x0, x1 = sorted(draw(st.lists(st.integers(0, width), min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(st.integers(0, height), min_size=2, max_size=2, unique=True)))
    return width, height, Box(x0, y0, x1, y1)


WNIDS = st.from_regex(r"n[0-9]{8}", fullmatch=True)
finite = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    """A box with ordered, non-negative float coordinates (possibly zero area)."""
    x0, x1 = sorted((draw(finite), draw(finite)))
    y0, y1 = sorted((draw(finite), draw(finite)))
    return Box(x0, y0, x1, y1)


# Printable text XML can store and that parsing does not strip or normalise.
text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
)
annotated_objects = st.builds(
    AnnotatedObject, name=text, box=boxes(), difficult=st.booleans(), truncated=st.booleans()
)
annotations = st.builds(
    Annotation,
    filename=text,
    width=st.integers(1, 100_000),
    height=st.integers(1, 100_000),
    objects=st.lists(annotated_objects, max_size=5).map(tuple),
)


@given(image_and_box())
def test_ratio_in_unit_interval_for_boxes_inside(case: tuple[int, int, Box]) -> None:
    width, height, box = case
    r = scale_ratio(box, width, height)
    assert 0 < r <= 1
    assert r == pytest.approx(math.sqrt(box.area / (width * height)))


@given(image_and_box(), st.integers(2, 50))
def test_ratio_invariant_under_joint_scaling(case: tuple[int, int, Box], k: int) -> None:
    width, height, box = case
    scaled = Box(box.xmin * k, box.ymin * k, box.xmax * k, box.ymax * k)
    assert scale_ratio(scaled, width * k, height * k) == pytest.approx(
        scale_ratio(box, width, height), rel=1e-12
    )


@given(image_and_box(), st.floats(0.1, 10), st.floats(0.1, 10))
def test_ratio_invariant_under_anisotropic_resize(
    case: tuple[int, int, Box], sx: float, sy: float
) -> None:
    # Stretching the whole image (resize_square) scales box and image per axis alike.
    width, height, box = case
    scaled = Box(box.xmin * sx, box.ymin * sy, box.xmax * sx, box.ymax * sy)
    assert scale_ratio(scaled, width * sx, height * sy) == pytest.approx(
        scale_ratio(box, width, height), rel=1e-9
    )


@given(st.lists(boxes(), min_size=1, max_size=6))
def test_union_encloses_and_largest_is_largest(items: list[Box]) -> None:
    union = select_box(items, "union")
    largest = select_box(items, "largest")
    assert union is not None
    assert largest in items
    for box in items:
        assert union.xmin <= box.xmin
        assert union.ymin <= box.ymin
        assert union.xmax >= box.xmax
        assert union.ymax >= box.ymax
        assert largest.area >= box.area
    assert (select_box(items, "single") is None) == (len(items) > 1)


@FILE_SETTINGS
@given(annotations)
def test_voc_xml_round_trip(tmp_path_factory: pytest.TempPathFactory, ann: Annotation) -> None:
    path = tmp_path_factory.mktemp("xml") / "a.xml"
    write_voc_xml(path, ann)
    assert parse_voc_xml(path) == ann


@FILE_SETTINGS
@given(
    st.dictionaries(
        st.from_regex(r"n[0-9]{8}_[0-9]{1,6}", fullmatch=True),
        st.lists(
            st.builds(
                AnnotatedObject, name=st.from_regex(r"n[0-9]{8}", fullmatch=True), box=boxes()
            ),
            max_size=4,
        ),
        max_size=8,
    )
)
def test_loc_csv_round_trip(
    tmp_path_factory: pytest.TempPathFactory, table: dict[str, list[AnnotatedObject]]
) -> None:
    lines = ["ImageId,PredictionString"]
    for image_id, objects in table.items():
        tokens = [
            f"{o.name} {o.box.xmin!r} {o.box.ymin!r} {o.box.xmax!r} {o.box.ymax!r}" for o in objects
        ]
        lines.append(f"{image_id},{' '.join(tokens)}")
    path = tmp_path_factory.mktemp("csv") / "loc.csv"
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_loc_csv(path) == table
