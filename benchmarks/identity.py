"""Whether a face track is one person (issue 24), measured on real faces.

    python benchmarks/identity.py --photos [--deepface REPO] [--face-recognition REPO]
    python benchmarks/identity.py --clips CLIP ... --out DIR [--code SRC_DIR]

``--photos``: dlib's face descriptor distance (:mod:`abaw_expr.faces.identity`) between photos
of the same person and of different people, and, per threshold, the share of same-person
pairs under it (joined) and of different-person pairs under it (wrongly joined): what
``SAME_PERSON_DISTANCE`` is chosen from. Each photo's largest face is found by YuNet, its
five points cut the 150 px chip (``face_chip``), one descriptor per photo (cached). Pairs:

- serengil/deepface (MIT), tests/unit/dataset/face-recognition-pivot.csv: labelled pairs
  (``decision`` Yes/No) of tests/unit/dataset/img*.jpg;
- ageitgey/face_recognition (MIT), examples/knn_examples/{train,test}: every pair of photos
  whose person is known by folder (train/<person>/) or by file name (test/obama1.jpg,
  alex_lacamoire1.jpg, johnsnow_test1.jpg = Kit Harington, who plays Jon Snow), with
  examples/{obama,obama2,obama_small,biden}.jpg, alex-lacamoire.png, lin-manuel-miranda.png.
  Photos with two people (obama_and_biden, kit_with_rose, two_people) are left out, and so
  are byte-identical copies and examples/obama-{240,480,720,1080}p.jpg (one photo rescaled).

Files are read from the repositories' git snapshots (``git show HEAD:path``), nothing is
copied. Pass the repositories' git directories; the defaults are this machine's mirrors.

``--clips``: ``track_people`` (default detector) on each clip, with the abaw_expr found in
``--code`` (a ``src`` folder: run the version before issue 24 and the one after, and compare);
per clip it prints the people, the pieces joined, the shot cuts found, the seconds of the
pass and of its identity stage, and writes to ``--out``: ``<clip>.png``, a contact sheet, one
row per person (its name), about 8 of its aligned crops spread over its frames (always the
first and last frame of each raw piece), each labelled with frame number and raw track id;
``<clip>.json``, each person's frames, pieces and how each was joined (distance, reason).
Whether a row holds two people, or a person has two rows, is judged by looking at the sheet.
The clips used for issue 24: face_recognition's examples/short_hamilton_clip.mp4 (a stage
show, 3 shot cuts) and facenet-pytorch's examples/video.mp4 (MIT; a crowd, no cuts).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np

DEEPFACE = "/work/.mirror/serengil+deepface/repo"
FACE_RECOGNITION = "/work/.mirror/ageitgey+face_recognition/repo"
THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
# face_recognition's photos of one person each, by name (knn train folders name the person)
FR_SINGLES = {
    "examples/knn_examples/test/alex_lacamoire1.jpg": "alex_lacamoire",
    "examples/knn_examples/test/johnsnow_test1.jpg": "kit_harington",
    "examples/knn_examples/test/obama1.jpg": "obama",
    "examples/obama.jpg": "obama",
    "examples/obama2.jpg": "obama",
    "examples/obama_small.jpg": "obama",
    "examples/biden.jpg": "biden",
    "examples/alex-lacamoire.png": "alex_lacamoire",
    "examples/lin-manuel-miranda.png": "lin_manuel_miranda",
}


def git_bytes(repo: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True
    ).stdout


def git_commit(repo: str | Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def machine() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    import os

    return f"{model[0] if model else 'unknown'}, {os.cpu_count()} cores"


# --- photos -------------------------------------------------------------------------------


def photo_pairs(deepface: str, face_recognition: str) -> tuple[list, list]:
    """(same, different): pairs of (repo, path) photo keys."""
    same, different = [], []
    text = git_bytes(deepface, "tests/unit/dataset/face-recognition-pivot.csv").decode()
    for row in csv.DictReader(io.StringIO(text)):
        a, b = (
            (deepface, row[k].replace("deepface/tests/dataset/", "tests/unit/dataset/"))
            for k in ("file_x", "file_y")
        )
        (same if row["decision"].strip() == "Yes" else different).append((a, b))
    listing = subprocess.run(
        ["git", "-C", face_recognition, "ls-tree", "-r", "HEAD", "examples/knn_examples/train"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    people: dict[str, str] = {}  # path -> person
    blobs: dict[str, str] = {}  # blob -> first path (byte-identical copies are one photo)
    for line in listing.splitlines():
        meta, path = line.split("\t")
        people[path] = path.split("/")[-2]
        blobs.setdefault(meta.split()[2], path)
    for path, person in FR_SINGLES.items():
        blob = subprocess.run(
            ["git", "-C", face_recognition, "rev-parse", f"HEAD:{path}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if blob in blobs:
            continue
        blobs[blob] = path
        people[path] = person
    kept = sorted(set(blobs.values()))
    for a, b in combinations(kept, 2):
        pair = ((face_recognition, a), (face_recognition, b))
        (same if people[a] == people[b] else different).append(pair)
    return same, different


def dlib_chip(rgb: np.ndarray, box) -> np.ndarray:
    """The chip as dlib cuts it (68 points in the detector's box, ``get_face_chip``)."""
    from abaw_expr.faces.dlib import dlib_model_dir, import_dlib

    dlib = import_dlib()
    global _SHAPE68
    if "_SHAPE68" not in globals():
        _SHAPE68 = dlib.shape_predictor(
            str(dlib_model_dir() / "shape_predictor_68_face_landmarks.dat")
        )
    rect = dlib.rectangle(*(int(round(v)) for v in box))
    return dlib.get_face_chip(rgb, _SHAPE68(rgb, rect), size=150, padding=0.25)


def photo_descriptor(detector, embedder, repo: str, path: str, dlib_chips: bool = False):
    from abaw_expr.faces.identity import contrast, face_chip

    data = np.frombuffer(git_bytes(repo, path), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    faces = detector.detect(rgb, threshold=0.0)
    if not faces:
        return None, None
    face = max(faces, key=lambda f: f.area)
    points = face.points if face.points is not None else detector.landmarks(rgb, face.box)
    chip = dlib_chip(rgb, face.box) if dlib_chips else face_chip(rgb, points)
    return embedder.embed([chip])[0], {"box_width": round(face.box[2] - face.box[0]),
                                       "contrast": round(contrast(chip), 1)}  # fmt: skip


def run_photos(args) -> None:
    from abaw_expr.faces import build_detector
    from abaw_expr.faces.identity import FaceEmbedder, distance

    detector, embedder = build_detector("yunet"), FaceEmbedder()
    same, different = photo_pairs(args.deepface, args.face_recognition)
    cache: dict = {}
    no_face = []

    def descriptor(key):
        if key not in cache:
            cache[key], _ = photo_descriptor(detector, embedder, *key, args.dlib_chips)
            if cache[key] is None:
                no_face.append(key[1])
        return cache[key]

    def distances(pairs):
        out = []
        for a, b in pairs:
            da, db = descriptor(a), descriptor(b)
            if da is not None and db is not None:
                out.append((a[0], distance(da, db), a[1], b[1]))
        return out

    start = time.perf_counter()
    by_source = {"same": distances(same), "different": distances(different)}
    seconds = time.perf_counter() - start
    d_same = np.asarray([d for _, d, *_ in by_source["same"]])
    d_diff = np.asarray([d for _, d, *_ in by_source["different"]])
    print("chips: " + ("dlib's own (68 points, get_face_chip)" if args.dlib_chips
                       else "face_chip from YuNet's five points (what the pass uses)"))  # fmt: skip
    print(f"sources: deepface {args.deepface} @ {git_commit(args.deepface)} (MIT)")
    print(f"         face_recognition {args.face_recognition} "
          f"@ {git_commit(args.face_recognition)} (MIT)")  # fmt: skip
    print(f"photos with a descriptor: {sum(v is not None for v in cache.values())} "
          f"of {len(cache)}; no face found: {no_face or 'none'}")  # fmt: skip
    print(f"same-person pairs {len(d_same)} (of {len(same)}), "
          f"different-person pairs {len(d_diff)} (of {len(different)})")  # fmt: skip
    print(f"{'threshold':>9s}  {'same joined':>16s}  {'different joined':>16s}")
    for t in THRESHOLDS:
        s, d = int((d_same < t).sum()), int((d_diff < t).sum())
        print(f"{t:9.2f}  {s:4d} = {100 * s / len(d_same):5.1f} %  "
              f"{d:4d} = {100 * d / len(d_diff):5.1f} %")  # fmt: skip
    print(f"same-person distance: largest {d_same.max():.3f}, "
          f"median {np.median(d_same):.3f}")  # fmt: skip
    print(f"different-person distance: smallest {d_diff.min():.3f}, "
          f"median {np.median(d_diff):.3f}")  # fmt: skip
    for repo, name in ((args.deepface, "deepface"), (args.face_recognition, "face_recognition")):
        s = np.asarray([d for r, d, *_ in by_source["same"] if r == repo])
        d = np.asarray([d for r, d, *_ in by_source["different"] if r == repo])
        print(f"  {name}: same {len(s)} (largest {s.max():.3f}, under 0.45 "
              f"{100 * (s < 0.45).mean():.1f} %, under 0.6 {100 * (s < 0.6).mean():.1f} %), "
              f"different {len(d)} (smallest {d.min():.3f})")  # fmt: skip
    short = lambda path: path.split("/", 2)[-1]  # noqa: E731
    for label, pairs, far in (
        ("same, farthest", by_source["same"], True),
        ("different, nearest", by_source["different"], False),
    ):
        worst = sorted(pairs, key=lambda p: p[1], reverse=far)[:3]
        print(f"  {label}: " + "; ".join(f"{short(a)} {short(b)} {d:.3f}" for _, d, a, b in worst))
    print(f"seconds (detect + chip + descriptor, {len(cache)} photos): {seconds:.1f}")
    print(f"machine: {machine()}")


# --- clips --------------------------------------------------------------------------------

CROP = 112
LABEL_W = 150
CAPTION_H = 16


def pick_frames(frames: list[int], must: list[int], n: int = 8) -> list[int]:
    """About ``n`` of ``frames`` spread evenly, always with ``must``."""
    chosen = set(must)
    if frames:
        for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int):
            if len(chosen) >= max(n, len(must)):
                break
            chosen.add(frames[i])
    return sorted(chosen)


def contact_sheet(rows: list[tuple[str, list[tuple[int, int, np.ndarray]]]]) -> np.ndarray:
    """rows: (name, [(frame, raw id, crop)]) -> one BGR image."""
    width = LABEL_W + max((len(r[1]) for r in rows), default=1) * CROP
    sheet = np.full((len(rows) * (CROP + CAPTION_H), width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for r, (name, crops) in enumerate(rows):
        y = r * (CROP + CAPTION_H)
        cv2.putText(sheet, name, (4, y + CROP // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(sheet, (0, y), (width, y), (160, 160, 160), 1)
        for c, (frame, tid, crop) in enumerate(crops):
            x = LABEL_W + c * CROP
            sheet[y + 1 : y + CROP, x : x + CROP] = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)[1:]
            cv2.putText(sheet, f"f{frame} t{tid}", (x + 2, y + CROP + 12), font, 0.4,
                        (0, 0, 128), 1, cv2.LINE_AA)  # fmt: skip
    return sheet


def run_clip(path: Path, out: Path, code: str) -> dict:
    from abaw_expr.video.tracks import FaceOptions, track_people

    crops: dict[tuple[int, int], np.ndarray] = {}  # (raw id, frame) -> crop

    def on_face(tid: int, frame: int, crop: np.ndarray) -> None:
        crops[(tid, frame)] = crop

    options = FaceOptions()
    start = time.perf_counter()
    people = track_people(path, options, on_face)
    seconds = time.perf_counter() - start
    frames_of: dict[int, list[int]] = {}
    for tid, frame in sorted(crops):
        frames_of.setdefault(tid, []).append(frame)
    rows, records, joined = [], [], 0
    cuts = getattr(people[0][0], "cuts", None)
    for faces, raw in people:
        if not raw:
            continue
        frames = [int(i) + 1 for i in np.flatnonzero(faces.has_face)]
        pieces = []
        decisions = {t["id"]: t for t in getattr(faces, "tracks", [])}
        # this version's own record of the pieces (a piece cut from a track has an id of its
        # own and its own frames); the version before issue 24 has none: its raw tracks
        for record in decisions.values():
            piece = dict(record)
            for end in ("first", "last"):
                f = piece[f"{end}_frame"]
                if not np.isnan(faces.boxes[f - 1, 0]):
                    piece[f"{end}_box"] = [int(v) for v in faces.boxes[f - 1]]
            pieces.append(piece)
        for tid in raw if not decisions else []:
            own = frames_of.get(tid, [])
            piece = {"id": tid, "first_frame": own[0] if own else None,
                     "last_frame": own[-1] if own else None, "face_frames": len(own)}  # fmt: skip
            for end in ("first", "last"):  # where it is, to find it in the frame
                f = piece[f"{end}_frame"]
                if f is not None and not np.isnan(faces.boxes[f - 1, 0]):
                    piece[f"{end}_box"] = [int(v) for v in faces.boxes[f - 1]]
            piece.update({k: v for k, v in decisions.get(tid, {}).items() if k not in piece})
            pieces.append(piece)
        joined += len(pieces) - 1
        must = [f for p in pieces for f in (p["first_frame"], p["last_frame"]) if f is not None]
        mine = set(frames)
        owner = {f: t for t in raw for f in frames_of.get(t, []) if f in mine}
        chosen = [f for f in pick_frames(frames, must) if f in owner]
        rows.append((faces.name, [(f, owner[f], crops[(owner[f], f)]) for f in chosen]))
        records.append({"name": faces.name, "frames": frames, "face_frames": len(frames),
                        "pieces": pieces, "sheet_frames": chosen})  # fmt: skip
    first = people[0][0]
    result = {
        "clip": str(path),
        "code": code,
        "commit": git_commit(code),
        "detector": options.detector,
        "frames": int(first.num_frames),
        "people": len(records),
        "pieces_joined": joined,
        "shot_cuts": cuts if cuts is not None else "not detected by this version",
        "seconds_pass": round(seconds, 2),
        "seconds_identity": round(first.seconds["identity"], 2)
        if "identity" in first.seconds
        else None,
        "seconds_stages": {k: round(v, 2) for k, v in first.seconds.items()},
        "machine": machine(),
        "persons": records,
    }
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / f"{path.stem}.png"), contact_sheet(rows))
    (out / f"{path.stem}.json").write_text(json.dumps(result, indent=1))
    return result


def run_clips(args) -> None:
    import abaw_expr

    code = str(Path(abaw_expr.__file__).resolve().parents[1])
    for clip in args.clips:
        r = run_clip(Path(clip), Path(args.out), code)
        print(f"clip {clip}: {r['frames']} frames; abaw_expr from {code} @ {r['commit'][:10]}")
        cuts = r["shot_cuts"]
        print(f"  people {r['people']}, pieces joined {r['pieces_joined']}, shot cuts "
              f"{len(cuts) if isinstance(cuts, list) else '-'} {cuts}")  # fmt: skip
        print(f"  seconds: pass {r['seconds_pass']}, identity {r['seconds_identity']}, "
              f"stages {r['seconds_stages']}")  # fmt: skip
        for p in r["persons"]:
            pieces = ", ".join(
                f"t{q['id']} f{q['first_frame']}-{q['last_frame']}"
                + (f" d={q['distance']}" if "distance" in q else "")
                for q in p["pieces"]
            )
            print(f"  {p['name']}: {p['face_frames']} face frames; pieces {pieces}")
        print(f"  machine: {r['machine']}")
        print(f"  sheet: {Path(args.out) / (Path(clip).stem + '.png')}")


def run_template(args) -> None:
    """Where dlib's own chip (get_face_chip, 150 px, padding 0.25, from its 68 points) puts the
    five points (eye centres = the means of points 36-41 and 42-47, nose tip 30, mouth corners
    48 and 54), over every photo of --photos: ``identity.CHIP_TEMPLATE``'s measurement."""
    from abaw_expr.faces import build_detector
    from abaw_expr.faces.dlib import dlib_model_dir, import_dlib

    dlib = import_dlib()
    shape68 = dlib.shape_predictor(str(dlib_model_dir() / "shape_predictor_68_face_landmarks.dat"))
    detector = build_detector("yunet")
    same, different = photo_pairs(args.deepface, args.face_recognition)
    photos = sorted({key for pair in same + different for key in pair})
    placed = []
    for repo, path in photos:
        data = np.frombuffer(git_bytes(repo, path), np.uint8)
        rgb = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        faces = detector.detect(rgb)
        if not faces:
            continue
        box = max(faces, key=lambda f: f.area).box
        shape = shape68(rgb, dlib.rectangle(*(int(round(v)) for v in box)))
        p = np.array([[q.x, q.y] for q in shape.parts()], np.float64)
        five = np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])
        chip = dlib.get_face_chip_details(shape, 150, 0.25)
        centre = np.array([chip.rect.center().x, chip.rect.center().y], np.float64)
        scale, angle = 150 / chip.rect.width(), chip.angle
        turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        placed.append((five - centre) @ (scale * turn).T + 75.0)
    placed = np.asarray(placed)
    print(f"five points in dlib's chip, over {len(placed)} photos (mean, then std):")
    print(np.round(placed.mean(0), 2).tolist())
    print(np.round(placed.std(0), 2).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", action="store_true")
    parser.add_argument("--deepface", default=DEEPFACE, help="serengil/deepface's git dir")
    parser.add_argument("--face-recognition", default=FACE_RECOGNITION,
                        help="ageitgey/face_recognition's git dir")  # fmt: skip
    parser.add_argument("--dlib-chips", action="store_true",
                        help="with --photos: cut chips as dlib does (68 points), to compare")  # fmt: skip
    parser.add_argument("--template", action="store_true",
                        help="where dlib's chip puts the five points (CHIP_TEMPLATE)")  # fmt: skip
    parser.add_argument("--clips", nargs="*", default=[])
    parser.add_argument("--code", help="the src folder whose abaw_expr to run (else PYTHONPATH's)")
    parser.add_argument("--out", default="identity-out")
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
    if not args.photos and not args.clips and not args.template:
        parser.error("nothing to do: --photos, --template and/or --clips CLIP ...")
    if args.template:
        run_template(args)
    if args.photos:
        run_photos(args)
    if args.clips:
        run_clips(args)


if __name__ == "__main__":
    main()
