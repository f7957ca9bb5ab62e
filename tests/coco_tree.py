"""A small COCO-format tree the COCO tests write: JPEGs, polygons, RLE, crowd and multi-object.

The expected mask areas are computed here independently of pycocotools: the
polygons are rasterized with PIL (pixel centres, see :func:`raster`), the RLE
masks are numpy arrays whose pixels are counted, and the uncompressed RLE is
written by this module's own run-length encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as coco_mask

WIDTH, HEIGHT = 80, 60
CATEGORIES = [
    {"id": 1, "name": "bird", "supercategory": "animal"},
    {"id": 2, "name": "kite", "supercategory": "sports"},
    {"id": 3, "name": "person", "supercategory": "person"},
]
TRIANGLE = [10.0, 10.0, 60.0, 12.0, 30.0, 50.0]
#: Two overlapping rectangles of image ``e`` (x0, y0, x1, y1): 900 and 1200 px, 225 shared.
RECT_A, RECT_B = (5, 5, 35, 35), (20, 20, 60, 50)


def raster(polygons: list[list[float]], width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Rasterize polygons with PIL, a pixel in when its centre is (uint8 ``height`` x ``width``).

    PIL fills the pixels whose integer coordinates are inside or on the outline;
    drawn at twice the size, the odd coordinates are the original pixel centres.
    """
    image = Image.new("L", (2 * width, 2 * height), 0)
    draw = ImageDraw.Draw(image)
    for polygon in polygons:
        draw.polygon(
            [(2 * x, 2 * y) for x, y in zip(polygon[::2], polygon[1::2], strict=True)], fill=1
        )
    return np.asarray(image)[1::2, 1::2].copy()


def rect_polygon(rect: tuple[float, float, float, float]) -> list[float]:
    """Return a rectangle ``(x0, y0, x1, y1)`` as a COCO polygon."""
    x0, y0, x1, y1 = rect
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def disk(cx: float, cy: float, radius: float) -> np.ndarray:
    """Return a filled disk as a uint8 ``HEIGHT`` x ``WIDTH`` mask."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return (((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) <= radius**2).astype(np.uint8)


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode ``mask`` as COCO's uncompressed RLE: column-major runs, starting with zeros."""
    flat = mask.flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = int(pixel), 1
    counts.append(run)
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def compressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode ``mask`` as COCO's compressed RLE (``counts`` a string, as the JSON holds it)."""
    rle = coco_mask.encode(np.asfortranarray(mask))
    return {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}


def mask_bbox(mask: np.ndarray) -> list[float]:
    """Return the ``[x, y, width, height]`` box enclosing a mask's pixels."""
    ys, xs = np.nonzero(mask)
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() + 1 - xs.min()),
        float(ys.max() + 1 - ys.min()),
    ]


def write_coco_tree(root: Path) -> dict[str, Any]:
    """Write ``root/images/*.jpg`` and ``root/instances.json``; return paths and expected values.

    Birds (category 1), per image: ``a`` one rectangle polygon; ``b`` one triangle;
    ``c`` one disk as uncompressed RLE; ``d`` one disk as compressed RLE; ``e``
    two overlapping rectangles (multi-object); ``f`` one rectangle and one crowd
    (RLE); ``g`` a crowd only; ``i`` a rectangle whose image file is missing.
    ``h`` holds a kite only; ``j`` one kite of two polygon parts.

    Returns
    -------
    dict
        ``images`` (the folder), ``annotations`` (the JSON), ``expected``:
        ``{image stem: independent mask area}`` for every bird and kite kept
        under ``single``, plus ``e_largest`` and ``e_union``.
    """
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    disk_c, disk_d = disk(40, 30, 17), disk(25, 28, 12.5)
    crowd = np.zeros((HEIGHT, WIDTH), np.uint8)
    crowd[40:58, 50:78] = 1
    parts = [rect_polygon((2, 2, 12, 22)), rect_polygon((50, 30, 70, 40))]
    objects: dict[str, list[tuple[int, Any, list[float], int]]] = {
        "a": [(1, [rect_polygon((10, 10, 50, 40))], [10, 10, 40, 30], 0)],
        "b": [(1, [TRIANGLE], [10, 10, 50, 40], 0)],
        "c": [(1, uncompressed_rle(disk_c), mask_bbox(disk_c), 0)],
        "d": [(1, compressed_rle(disk_d), mask_bbox(disk_d), 0)],
        "e": [
            (1, [rect_polygon(RECT_A)], [5, 5, 30, 30], 0),
            (1, [rect_polygon(RECT_B)], [20, 20, 40, 30], 0),
        ],
        "f": [
            (1, [rect_polygon((4, 4, 24, 14))], [4, 4, 20, 10], 0),
            (1, uncompressed_rle(crowd), mask_bbox(crowd), 1),
        ],
        "g": [(1, compressed_rle(crowd), mask_bbox(crowd), 1)],
        "h": [(2, [rect_polygon((30, 5, 70, 25))], [30, 5, 40, 20], 0)],
        "i": [(1, [rect_polygon((10, 10, 20, 20))], [10, 10, 10, 10], 0)],
        "j": [(2, parts, [2, 2, 68, 38], 0)],
    }
    images, annotations = [], []
    for image_id, (stem, objs) in enumerate(objects.items(), start=1):
        if stem != "i":  # i's file is missing
            pixels = np.full((HEIGHT, WIDTH, 3), (90, 120, 200), np.uint8)
            Image.fromarray(pixels).save(images_dir / f"{stem}.jpg", format="JPEG")
        images.append(
            {"id": image_id, "file_name": f"{stem}.jpg", "width": WIDTH, "height": HEIGHT}
        )
        for category, segmentation, bbox, iscrowd in objs:
            annotations.append(
                {
                    "id": len(annotations) + 100,
                    "image_id": image_id,
                    "category_id": category,
                    "segmentation": segmentation,
                    "bbox": [float(v) for v in bbox],
                    "iscrowd": iscrowd,
                    "area": 0.0,  # the reader computes areas itself
                }
            )
    path = root / "instances.json"
    path.write_text(
        json.dumps(
            {"info": {}, "images": images, "annotations": annotations, "categories": CATEGORIES}
        )
    )
    rect = raster([rect_polygon(RECT_A)]), raster([rect_polygon(RECT_B)])
    expected = {
        "a": int(raster([rect_polygon((10, 10, 50, 40))]).sum()),
        "b": int(raster([TRIANGLE]).sum()),
        "c": int(disk_c.sum()),
        "d": int(disk_d.sum()),
        "f": int(raster([rect_polygon((4, 4, 24, 14))]).sum()),
        "h": int(raster([rect_polygon((30, 5, 70, 25))]).sum()),
        "j": int(raster(parts).sum()),
        "e_largest": int(rect[1].sum()),
        "e_union": int((rect[0] | rect[1]).sum()),
    }
    return {"images": images_dir, "annotations": path, "expected": expected}


def write_coco_run_tree(root: Path, n_per_class: int = 16, size: int = 96) -> dict[str, Path]:
    """Write a COCO tree big enough for a tiny run: ``n_per_class`` birds and kites, one each.

    Each image shows its object (a white rectangle for a bird, as a polygon;
    a grey disk for a kite, as compressed RLE) of a size drawn from a seeded
    generator on a dark background, so box and mask areas vary per image.
    """
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    images, annotations = [], []
    for i in range(2 * n_per_class):
        bird = i % 2 == 0
        half = float(rng.uniform(0.1, 0.4) * size)
        cx, cy = (float(v) for v in rng.uniform(half, size - half, 2))
        pixels = np.full((size, size, 3), 20, np.uint8)
        if bird:
            rect = (round(cx - half), round(cy - half), round(cx + half), round(cy + half))
            segmentation: Any = [rect_polygon(rect)]
            mask = raster(segmentation, size, size)
        else:
            mask = (((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2) <= half**2).astype(np.uint8)
            rle = coco_mask.encode(np.asfortranarray(mask))
            segmentation = {"counts": rle["counts"].decode("ascii"), "size": [size, size]}
        pixels[mask.astype(bool)] = 230 if bird else 150
        stem = f"{i:012d}"
        Image.fromarray(pixels).save(images_dir / f"{stem}.jpg", format="JPEG")
        images.append({"id": i, "file_name": f"{stem}.jpg", "width": size, "height": size})
        bbox = mask_bbox(mask)
        annotations.append(
            {
                "id": 1000 + i,
                "image_id": i,
                "category_id": 1 if bird else 2,
                "iscrowd": 0,
                "bbox": bbox,
                "segmentation": segmentation,
            }
        )
    path = root / "instances.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES})
    )
    return {"images": images_dir, "annotations": path}
