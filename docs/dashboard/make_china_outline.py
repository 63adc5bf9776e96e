"""Rebuild the dashboard's China outline (`service/dashboard/static/map/china.json`).

Input: `countries-50m.json` of the npm package world-atlas 2.0.2 (ISC licence; TopoJSON made
from Natural Earth's 1:50m admin-0 countries, public domain), e.g. from `npm pack world-atlas@2.0.2`.
The mainland (ISO 3166 numeric 156) and Taiwan (158) are decoded from TopoJSON, simplified
(Douglas-Peucker, 0.08 degrees), islands under 0.05 square degrees dropped, and written as
rings of [lon, lat] with two decimals: about 10 KB.

    python docs/dashboard/make_china_outline.py package/countries-50m.json \
        src/suanli/service/dashboard/static/map/china.json
"""

from __future__ import annotations

import json
import sys

TOLERANCE_DEG = 0.08
MIN_AREA_DEG2 = 0.05
IDS = {"156", "158"}


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(indices: list[int], arcs: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i in indices:
        pts = arcs[i] if i >= 0 else arcs[~i][::-1]
        out.extend(pts[1:] if out else pts)
    return out


def simplify(pts: list[tuple[float, float]], tol: float) -> list[tuple[float, float]]:
    """Douglas-Peucker, iterative."""
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = pts[a], pts[b]
        dx, dy = x2 - x1, y2 - y1
        norm = (dx * dx + dy * dy) ** 0.5 or 1e-12
        best, idx = 0.0, -1
        for i in range(a + 1, b):
            x, y = pts[i]
            d = abs(dy * (x - x1) - dx * (y - y1)) / norm
            if d > best:
                best, idx = d, i
        if best > tol:
            keep[idx] = True
            stack += [(a, idx), (idx, b)]
    return [p for p, k in zip(pts, keep, strict=True) if k]


def area(pts: list[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1],
                                                                      strict=True))) / 2


def main(src: str, dst: str) -> None:
    topo = json.load(open(src))
    arcs = decode_arcs(topo)
    rings = []
    for g in topo["objects"]["countries"]["geometries"]:
        if str(g.get("id")) not in IDS:
            continue
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        for poly in polys:
            outer = ring(poly[0], arcs)  # holes dropped: none matter at this scale
            if area(outer) < MIN_AREA_DEG2:
                continue
            far = max(range(len(outer)), key=lambda i: (outer[i][0] - outer[0][0]) ** 2
                      + (outer[i][1] - outer[0][1]) ** 2)  # a closed ring: split it in two
            pts = simplify(outer[:far + 1], TOLERANCE_DEG) + simplify(outer[far:],
                                                                      TOLERANCE_DEG)[1:]
            rings.append([[round(x, 2), round(y, 2)] for x, y in pts])
    out = {"source": "Natural Earth 1:50m admin-0 (public domain) via world-atlas 2.0.2 (ISC)",
           "rings": rings}
    with open(dst, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
