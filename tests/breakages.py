"""Deliberate breakages, and whether the tests named for each one catch it.

    python tests/breakages.py            # every entry (about 10 minutes on 2 cores)
    python tests/breakages.py --only shard-salted-hash --only clash-judged-per-shard
    python tests/breakages.py --list

Each entry breaks one promise of the README or the guide (docs/) on purpose: a few exact text
replacements in the source. For each, the repository's files (tracked, and untracked but not
ignored) are copied to a scratch folder, the replacements applied there (each text must occur
exactly once, so an entry that no longer fits the code says so instead of silently testing
nothing), and the tests named for it run in that copy. A breakage is *caught* when pytest
reports failed tests; it *survives* when they pass, and the script then exits 1. ``--baseline``
first runs each entry's tests on the unbroken copy, which must pass.

Not collected by pytest (its name does not start with ``test_``) and not part of ``make
test``: the suite itself stays the one check. A new promise gets an entry here, with the test
that fails on it. The first entries are the five of issue 25.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Breakage:
    name: str
    promise: str
    edits: tuple[tuple[str, str, str], ...]  # (file, exact old text, new text)
    tests: tuple[str, ...]  # pytest node ids, relative to the repository


BREAKAGES = (
    Breakage(
        "ddp-confusion-not-synced",
        "under DDP every validation frame counts once and val/macro_f1 is the single-process figure",
        (
            (
                "src/abaw_expr/training/module.py",
                "            validate_args=False,  # its checks read the device\n",
                "            validate_args=False,  # its checks read the device\n"
                "            sync_on_compute=False,\n",
            ),
        ),
        ("tests/test_training.py::test_ddp_two_cpu_processes_agree",),
    ),
    Breakage(
        "ddp-validation-window-repeated",
        "under DDP every validation frame counts once (no window repeated to even the shares)",
        (
            (
                "src/abaw_expr/data/datamodule.py",
                "        return len(range(self.rank, self.length, self.world_size))\n",
                "        return len(range(self.rank, self.length, self.world_size)) + (self.rank == 1)\n",
            ),
            (
                "src/abaw_expr/data/datamodule.py",
                "        return iter(range(self.rank, self.length, self.world_size))\n",
                "        return iter([*range(self.rank, self.length, self.world_size)]"
                " + [1] * (self.rank == 1))\n",
            ),
        ),
        ("tests/test_training.py::test_ddp_two_cpu_processes_agree",),
    ),
    Breakage(
        "nan-guard-keeps-the-latest",
        "the NaN guard names the first epoch and step whose loss was not finite",
        (
            (
                "src/abaw_expr/training/module.py",
                "first = ~torch.isfinite(value) & (self._bad[0] < 0)",
                "first = ~torch.isfinite(value)",
            ),
        ),
        (
            "tests/test_robustness.py::"
            "test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint",
        ),
    ),
    Breakage(
        "attention-branch-per-frame",
        "the attention branch attends across the window's frames",
        (
            (
                "src/abaw_expr/model/temporal.py",
                "parts.append(self.attention(features, mask))",
                "parts.append(self.attention(features.flatten(0, 1)[:, None])[:, 0]"
                ".unflatten(0, features.shape[:2]))",
            ),
        ),
        ("tests/test_context.py::test_each_branch_on_its_own_reads_the_other_frames",),
    ),
    Breakage(
        "encoder-attention-per-frame",
        "the encoder branch attends across the window's frames",
        (
            (
                "src/abaw_expr/model/temporal.py",
                "x = x + self.attn(self.norm1(x), mask)",
                "x = x + self.attn(self.norm1(x).flatten(0, 1)[:, None])[:, 0]"
                ".unflatten(0, x.shape[:2])",
            ),
        ),
        ("tests/test_context.py::test_each_branch_on_its_own_reads_the_other_frames",),
    ),
    Breakage(
        "shard-salted-hash",
        "N tasks that each list the folder on their own cover every video exactly once",
        (
            (
                "src/abaw_expr/video/batch.py",
                'return 1 + int.from_bytes(digest[:8], "big") % count',
                "return 1 + hash(video.name) % count",
            ),
        ),
        (
            "tests/test_video.py::test_shards_cover_every_video_exactly_once_and_stay_put",
            "tests/test_video.py::"
            "test_shards_made_by_separate_processes_cover_every_video_exactly_once",
        ),
    ),
    Breakage(
        "clash-judged-per-shard",
        "a_left.mp4 beside a.mp4 is refused whichever shard either falls in",
        (
            (
                "src/abaw_expr/video/batch.py",
                "clashes = name_clashes(listing, faces)",
                "clashes = name_clashes(select_shard(listing, shard), faces)",
            ),
            (
                "src/abaw_expr/video/preprocess.py",
                "clashes = name_clashes(listing, options.faces)",
                "clashes = name_clashes(select_shard(listing, shard), options.faces)",
            ),
        ),
        (
            "tests/test_video.py::"
            "test_a_clash_is_refused_when_the_two_videos_fall_in_different_shards",
        ),
    ),
    Breakage(
        "inputs-checked-late",
        "a missing input is one line naming it, in under a second, before anything is written",
        (("src/abaw_expr/cli/__init__.py", "        check_inputs(args)\n", ""),),
        (
            "tests/test_cli.py::test_a_missing_input_is_named_before_anything_is_written",
            "tests/test_cli.py::test_a_missing_input_fails_without_importing_torch",
        ),
    ),
    Breakage(
        "centerface-box-misplaced",
        "CenterFace finds a face turned 50 degrees, where it is",
        (
            (
                "src/abaw_expr/faces/centerface.py",
                "Detection(tuple(map(float, box)),",
                "Detection(tuple(float(v) / 2 for v in box),",
            ),
        ),
        (
            "tests/test_cnn_detectors.py::test_it_finds_the_face_turned_50_degrees_where_it_is[centerface]",
        ),
    ),
    Breakage(
        "yunet-box-misplaced",
        "YuNet, the default detector, finds a face turned 50 degrees, where it is",
        (
            (
                "src/abaw_expr/faces/yunet.py",
                "(float(v) / zoom for v in row[1:5])",
                "(float(v) / zoom / 2 for v in row[1:5])",
            ),
        ),
        (
            "tests/test_cnn_detectors.py::test_it_finds_the_face_turned_50_degrees_where_it_is[yunet]",
        ),
    ),
    Breakage(
        "cuts-ignored",
        "a shot cut ends every track: the same place in a new shot is another person",
        (
            (
                "src/abaw_expr/video/tracks.py",
                "        cut = shots(frame.rgb)\n",
                "        cut = False\n",
            ),
        ),
        (
            "tests/test_identity.py::test_after_a_cut_another_person_in_the_same_place_is_another_person",
        ),
    ),
    Breakage(
        "joined-by-place",
        "tracks are joined only when the faces look alike",
        (
            (
                "src/abaw_expr/video/people.py",
                "        joinable = [o for o in options if o[0] or o[1] < o[2]]",
                "        joinable = options",
            ),
        ),
        (
            "tests/test_identity.py::test_a_person_who_returns_after_a_cut_gets_their_track_back",
            "tests/test_identity.py::test_tracks_join_only_a_person_out_of_view_who_looks_alike_the_nearest_first",
        ),
    ),
    Breakage(
        "no-matching-cascade",
        "a track hidden behind another does not take its face",
        (
            (
                "src/abaw_expr/faces/tracking.py",
                "(missed.get(tid, 0), -iou(f.box, box), n, tid)",
                "(0, -iou(f.box, box), n, tid)",
            ),
        ),
        (
            "tests/test_identity.py::test_a_track_hidden_behind_another_does_not_take_its_face_when_it_jumps",
        ),
    ),
    Breakage(
        "va-loss-valence-alone",
        "a VA frame is annotated only where neither value is -5: the loss leaves out one -5",
        (
            (
                "src/abaw_expr/training/losses.py",
                "keep = mask & VA.annotated(truth)",
                "keep = mask & (truth[..., 0] != -5)",
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_the_va_loss_leaves_out_a_frame_with_a_single_minus_five",
        ),
    ),
    Breakage(
        "va-index-valence-alone",
        "a VA frame is annotated only where neither value is -5: the frame index leaves out one -5",
        (
            (
                "src/abaw_expr/data/frame_index.py",
                "        return TASKS[task].annotated(values)\n",
                '        return values[..., 0] != -5 if task == "va" else TASKS[task].annotated(values)\n',
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_the_index_and_its_stats_leave_out_a_va_frame_with_a_single_minus_five",
        ),
    ),
    Breakage(
        "va-stats-valence-alone",
        "the VA means of `stats` are over annotated frames: neither value -5",
        (
            (
                "src/abaw_expr/data/task_index.py",
                '[v.va[v.annotated_for("va") & v.has_image] for v in index]',
                "[v.va[(v.va[:, 0] != -5) & v.has_image] for v in index]",
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_the_index_and_its_stats_leave_out_a_va_frame_with_a_single_minus_five",
        ),
    ),
    Breakage(
        "va-validation-valence-alone",
        "val/ccc is over VA-annotated frames: neither value -5",
        (
            (
                "src/abaw_expr/training/module.py",
                'keep = mask & VA.annotated(batch["va"])',
                'keep = mask & (batch["va"][..., 0] != -5)',
            ),
        ),
        ("tests/test_va_au_frames.py::test_val_ccc_is_the_population_ccc_of_the_annotated_frames",),
    ),
    Breakage(
        "training-ccc-sample-moments",
        "the training CCC uses population moments (divided by N), as ABAW's metric",
        (
            (
                "src/abaw_expr/training/losses.py",
                "    covariance = (dx * dy).sum(0) / n\n"
                "    denominator = (dx * dx).sum(0) / n + (dy * dy).sum(0) / n + (mx - my) ** 2\n",
                "    covariance = (dx * dy).sum(0) / (n - 1)\n"
                "    denominator = (dx * dx).sum(0) / (n - 1) + (dy * dy).sum(0) / (n - 1)"
                " + (mx - my) ** 2\n",
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_the_training_ccc_uses_population_moments_on_a_few_frames",
        ),
    ),
    Breakage(
        "val-au-on-above-half-a-logit",
        "val/au_f1 switches an AU on at a probability of 0.5 or more, as evaluate predicts",
        (
            (
                "src/abaw_expr/training/module.py",
                '(parts["au"] >= 0)',
                '(parts["au"] > 0.5)',
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_val_au_f1_is_the_f1_of_annotated_rows_with_an_au_on_from_a_logit_of_zero",
        ),
    ),
    Breakage(
        "val-au-off-at-half",
        "val/au_f1 switches an AU on at a probability of 0.5 or more: exactly 0.5 (logit 0) is on",
        (
            (
                "src/abaw_expr/training/module.py",
                '(parts["au"] >= 0)',
                '(parts["au"] > 0)',
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_val_au_f1_is_the_f1_of_annotated_rows_with_an_au_on_from_a_logit_of_zero",
        ),
    ),
    Breakage(
        "val-au-unannotated-as-negatives",
        "val/au_f1 is over AU-annotated rows: a row of -1 is no negative",
        (
            (
                "src/abaw_expr/training/module.py",
                'torch.where(mask[..., None], batch["au"], -1.0)',
                'torch.where(mask[..., None], batch["au"].clamp(min=0), -1.0)',
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_val_au_f1_is_the_f1_of_annotated_rows_with_an_au_on_from_a_logit_of_zero",
        ),
    ),
    Breakage(
        "va-mse-not-a-mean",
        "loss.va_mse_weight weighs the mean squared error of the annotated VA values",
        (
            (
                "src/abaw_expr/training/losses.py",
                "(error**2).sum() / (2 * keep.sum().clamp(min=1))",
                "(error**2).sum() / keep.sum().clamp(min=1)",
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_the_va_squared_error_term_is_the_mean_over_annotated_values",
        ),
    ),
    Breakage(
        "au-only-frames-not-usable",
        "a frame annotated for any chosen task (AU alone included) is trained on",
        (
            (
                "src/abaw_expr/data/frame_index.py",
                ' | self.annotated_for("au")',
                "",
            ),
        ),
        (
            "tests/test_va_au_frames.py::test_a_frame_annotated_for_any_one_task_is_annotated_and_usable",
        ),
    ),
    Breakage(
        "join-at-dlibs-0.6",
        "away from where a person was lost, or after a cut, a join needs a distance under 0.4",
        (
            (
                "src/abaw_expr/faces/identity.py",
                "SAME_PERSON_DISTANCE = 0.4\n",
                "SAME_PERSON_DISTANCE = 0.6\n",
            ),
        ),
        (
            "tests/test_identity.py::test_elsewhere_or_after_a_cut_a_join_needs_a_distance_under_0_4",
        ),
    ),
    Breakage(
        "lenient-join-with-somebody-near",
        "the lenient join where a face comes back needs nobody else's face near",
        (
            (
                "src/abaw_expr/video/people.py",
                "            and not _anybody_near(seen[lost], there, 2 * width, (last,))\n"
                "            and not _anybody_near(seen[start], here, 2 * width, (tid,))\n",
                "",
            ),
        ),
        (
            "tests/test_identity.py::test_the_lenient_join_where_a_face_comes_back_needs_nobody_else_near",
        ),
    ),
    Breakage(
        "lenient-join-window-20-seconds",
        "the lenient join where a face comes back holds for 2 seconds at the video's frame rate",
        (
            (
                "src/abaw_expr/video/people.py",
                "    soon = max(round(2 * (fps or 25.0)), 1)  # two seconds\n",
                "    soon = max(round(20 * (fps or 25.0)), 1)  # two seconds\n",
            ),
        ),
        (
            "tests/test_identity.py::"
            "test_a_face_that_comes_back_within_two_seconds_at_the_videos_rate_needs_less_likeness",
        ),
    ),
    Breakage(
        "lenient-join-window-at-25-fps",
        "the face pass weighs a return by 2 seconds of the video's own frame rate",
        (
            (
                "src/abaw_expr/video/tracks.py",
                "cuts, options.min_track, info.fps)",
                "cuts, options.min_track, None)",
            ),
        ),
        (
            "tests/test_identity.py::test_the_face_pass_weighs_a_return_by_the_videos_own_frame_rate",
        ),
    ),
    Breakage(
        "compare-seed-group-pools-every-run",
        "compare's mean ± std over seeds is each group's own: the runs that differ only in the seed",
        (
            (
                "src/abaw_expr/report/compare.py",
                '[_mean_std([r.expr_metrics["macro_f1"] for r in m if r.expr_metrics]) for m in members]',
                '[_mean_std([r.expr_metrics["macro_f1"] for r in runs if r.expr_metrics]) for m in members]',
            ),
            (
                "src/abaw_expr/report/compare.py",
                "_mean_std([by_run[id(r)] for r in m if by_run[id(r)] is not None], scale=scale)",
                "_mean_std([by_run[id(r)] for r in runs if by_run[id(r)] is not None], scale=scale)",
            ),
        ),
        (
            "tests/test_report.py::test_compare_gives_each_seed_group_the_mean_and_sample_std_of_its_own_runs",
        ),
    ),
    Breakage(
        "compare-population-std",
        "compare's spread over seeds is the sample standard deviation (ddof=1), as the ablation's",
        (("src/abaw_expr/report/compare.py", "a.std(ddof=1)", "a.std(ddof=0)"),),
        (
            "tests/test_report.py::test_compare_gives_each_seed_group_the_mean_and_sample_std_of_its_own_runs",
        ),
    ),
    Breakage(
        "ablation-va-stats-one-seed",
        "the ablation's and the demo's valence and arousal CCC are mean ± std over every seed's evaluation",
        (
            (
                "src/abaw_expr/training/ablation.py",
                'entry[key] = mean_std([r["tracks"][task][key] for r in results])',
                'entry[key] = mean_std([results[0]["tracks"][task][key] for r in results])',
            ),
        ),
        (
            "tests/test_demo.py::test_each_tasks_spread_over_seeds_is_that_of_the_seeds_own_evaluations",
        ),
    ),
    Breakage(
        "video-ignores-au-thresholds",
        "predict --video calls each AU at the thresholds evaluate --fit-au-thresholds left beside "
        "the checkpoint",
        (
            (
                "src/abaw_expr/video/predict.py",
                "model.au_thresholds = load_au_thresholds(checkpoint)",
                "model.au_thresholds = None",
            ),
        ),
        (
            "tests/test_video_tasks.py::"
            "test_predict_video_writes_the_checkpoints_tasks_as_its_head_gives_them[va+au]",
        ),
    ),
    Breakage(
        "serve-ignores-au-thresholds",
        "serve calls each AU at the thresholds evaluate --fit-au-thresholds left beside the "
        "checkpoint",
        (
            (
                "src/abaw_expr/serve/jobs.py",
                "self.model.au_thresholds = load_au_thresholds(checkpoint)",
                "self.model.au_thresholds = None",
            ),
        ),
        ("tests/test_video_tasks.py::test_serve_result_carries_valence_arousal_and_aus",),
    ),
    Breakage(
        "au-logits-not-probabilities",
        "the CSV's AU*_prob columns are the head's sigmoid outputs, in [0, 1]",
        (
            (
                "src/abaw_expr/inference/probabilities.py",
                '"au": torch.sigmoid}',
                '"au": lambda x: x}',
            ),
        ),
        (
            "tests/test_video_tasks.py::"
            "test_predict_video_writes_the_checkpoints_tasks_as_its_head_gives_them[va+au]",
        ),
    ),
    Breakage(
        "faceless-valence-half",
        "a video with no face gets valence and arousal 0 in every row",
        (
            (
                "src/abaw_expr/inference/probabilities.py",
                '"va": np.zeros(2)}',
                '"va": np.full(2, 0.5)}',
            ),
        ),
        (
            "tests/test_video_tasks.py::"
            "test_a_video_without_a_face_gets_the_documented_prior_for_every_task",
        ),
    ),
    Breakage(
        "faceless-aus-on",
        "a video with no face gets no AU in any row",
        (
            (
                "src/abaw_expr/inference/probabilities.py",
                "prior.get(t, np.zeros(TASK_WIDTHS[t]))",
                "prior.get(t, np.ones(TASK_WIDTHS[t]))",
            ),
        ),
        (
            "tests/test_video_tasks.py::"
            "test_a_video_without_a_face_gets_the_documented_prior_for_every_task",
        ),
    ),
    Breakage(
        "person-features-of-every-track-frame",
        "a track cut in two serves two people: each person is predicted from their own frames only",
        (
            (
                "src/abaw_expr/video/predict.py",
                "    order = order[faces.has_face[frames[order]]]\n",
                "",
            ),
        ),
        (
            "tests/test_video.py::test_a_persons_features_are_their_own_frames_of_their_tracks_in_frame_order",
        ),
    ),
    Breakage(
        "expr-recognition-folder-dropped",
        "ABAW5's EXPR_Recognition_Challenge is read as the expression task",
        (
            (
                "src/abaw_expr/tasks.py",
                '("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge"),',
                '("EXPR_Classification_Challenge",),',
            ),
        ),
        ("tests/test_mtl.py::test_renamed_expression_folder_is_read_and_an_unknown_folder_named",),
    ),
    Breakage(
        "unknown-task-folder-silent",
        "a folder under the annotations root that is no task's is named in a warning",
        (
            (
                "src/abaw_expr/data/task_index.py",
                'log.warning("%s: ignored (%s; task folders are %s)"',
                'log.debug("%s: ignored (%s; task folders are %s)"',
            ),
        ),
        ("tests/test_mtl.py::test_renamed_expression_folder_is_read_and_an_unknown_folder_named",),
    ),
    Breakage(
        "mtl-au-term-dropped",
        "P_MTL is the sum of the VA, expression and AU terms",
        (
            (
                "src/abaw_expr/evaluation/metrics.py",
                '"score": va["score"] + expr["macro_f1"] + au["score"],',
                '"score": va["score"] + expr["macro_f1"],',
            ),
        ),
        ("tests/test_mtl.py::test_score_matches_an_independent_p_mtl",),
    ),
    Breakage(
        "mtl-va-marker-refused",
        "-5 in an MTL row marks valence-arousal as not annotated (as in the VA files)",
        (
            (
                "src/abaw_expr/data/mtl.py",
                "if not (-1.0 <= value <= 1.0 or value == VA_UNANNOTATED):",
                "if not (-1.0 <= value <= 1.0):",
            ),
        ),
        ("tests/test_mtl.py::test_markers_and_sparse_rows_become_frame_arrays",),
    ),
    Breakage(
        "compound-rule-one-class",
        "a compound's score is the mean of its two classes' probabilities (the pair, not one)",
        (
            (
                "src/abaw_expr/inference/compound.py",
                "    return probabilities[..., COMPONENT_INDEX].mean(-1)\n",
                "    return probabilities[..., COMPONENT_INDEX].max(-1)\n",
            ),
        ),
        (
            "tests/test_compound.py::test_the_rule_picks_the_compound_whose_two_classes_are_likeliest",
        ),
    ),
    Breakage(
        "compound-classes-out-of-order",
        "the compound classes are numbered 0..6 in C-EXPR-DB's order",
        (
            (
                "src/abaw_expr/inference/compound.py",
                '    "Sadly Fearful",\n    "Sadly Angry",\n)',
                '    "Sadly Angry",\n    "Sadly Fearful",\n)',
            ),
        ),
        ("tests/test_compound.py::test_the_challenges_header_and_class_order",),
    ),
    Breakage(
        "compound-f1-over-present-classes",
        "the compound score is the macro F1 over all 7 classes (an absent class counts 0)",
        (
            (
                "src/abaw_expr/evaluation/compound_file.py",
                '        "score": float(f1.mean()),\n',
                '        "score": float(f1[cm.sum(1) > 0].mean()),\n',
            ),
        ),
        ("tests/test_compound.py::test_score_is_scikit_learns_macro_f1_over_the_seven_classes",),
    ),
    Breakage(
        "compound-duplicate-row-kept",
        "a second row for a frame in a compound file is refused, naming its line",
        (
            (
                "src/abaw_expr/evaluation/compound_file.py",
                "        if frame in frames:\n",
                "        if frame in frames and False:\n",
            ),
        ),
        ("tests/test_compound.py::test_a_bad_compound_file_exits_2_naming_the_file_and_line",),
    ),
    Breakage(
        "compound-csv-from-the-expression",
        "predict --compound's CSV and files give each frame the rule's compound class",
        (
            (
                "src/abaw_expr/video/prediction.py",
                "            None if not self.compound or probabilities is None else compound_classes(probabilities)\n",
                "            None if not self.compound or probabilities is None else probabilities.argmax(1) % 7\n",
            ),
        ),
        (
            "tests/test_compound.py::test_predict_a_video_adds_compound_columns_and_the_submission_file",
        ),
    ),
    Breakage(
        "test-list-trusts-the-container",
        "test-list counts a video's frames by decoding them, not as its container declares",
        (
            (
                "src/abaw_expr/video/frame_counts.py",
                "        while capture.grab():\n            count += 1\n",
                "        count = info.declared_frames or sum(1 for _ in iter(capture.grab, False))\n",
            ),
        ),
        ("tests/test_frame_counts.py::test_every_video_gets_its_decoded_frame_count",),
    ),
    Breakage(
        "test-list-sides-unknown",
        "test-list gives <name>_left and <name>_right the frame count of <name>'s video",
        (
            (
                "src/abaw_expr/video/frame_counts.py",
                "    for side in SIDES:\n",
                "    for side in ():\n",
            ),
        ),
        ("tests/test_frame_counts.py::test_abaws_names_take_left_and_right_from_the_pairs_video",),
    ),
    Breakage(
        "checkpoint-without-provenance",
        "every checkpoint records where its model comes from, with its validation scores",
        (
            (
                "src/abaw_expr/training/module.py",
                '        record = getattr(self, "provenance", None)\n',
                "        record = None\n",
            ),
        ),
        (
            "tests/test_provenance.py::"
            "test_a_trained_checkpoint_records_its_data_backbone_tasks_code_and_scores",
        ),
    ),
    Breakage(
        "sample-not-recognised",
        "a model trained on the synthetic sample is known as one (its sample.json)",
        (
            (
                "src/abaw_expr/inference/provenance.py",
                "    for folder in [path, *path.parents][:4]:\n",
                "    for folder in [path, *path.parents][:0]:\n",
            ),
        ),
        (
            "tests/test_provenance.py::"
            "test_data_from_outside_the_sample_is_the_users_annotations_with_a_hash_of_its_files",
        ),
    ),
    Breakage(
        "toy-model-not-warned",
        "predict --images, predict --video and serve warn once of a model that never saw a real face",
        (
            (
                "src/abaw_expr/inference/provenance.py",
                '        log.warning("%s", warning)\n',
                '        log.info("%s", warning)\n',
            ),
        ),
        (
            "tests/test_provenance.py::test_predict_from_images_warns_once_of_a_toy",
            "tests/test_provenance.py::test_predict_from_video_warns_once_and_records_it",
        ),
    ),
    Breakage(
        "toy-model-no-banner",
        "serve's page shows a toy model's warning as a banner, and result.json carries it",
        (
            (
                "src/abaw_expr/serve/app.py",
                '    page = page.replace("{{MODEL_WARNING}}", banner)\n',
                '    page = page.replace("{{MODEL_WARNING}}", "")\n',
            ),
        ),
        (
            "tests/test_provenance.py::test_serve_shows_a_toys_warning_as_a_banner_and_in_result_json",
        ),
    ),
    Breakage(
        "annotated-video-in-expression-colours",
        "--annotated-video: one video per input, every person's box in their own colour",
        (
            (
                "src/abaw_expr/video/outputs.py",
                '            _draw_person(bgr, prediction, i, person_colour(k), f"{name}: ")\n',
                '            _draw_person(bgr, prediction, i, None, f"{name}: ")\n',
            ),
        ),
        (
            "tests/test_annotated_video.py::"
            "test_one_annotated_video_holds_every_persons_box_in_their_colour",
        ),
    ),
    Breakage(
        "option-without-help",
        "every option of every command has a help line",
        (
            (
                "src/abaw_expr/cli/videos.py",
                '    p.add_argument("--opset", type=int, default=18, help="the ONNX opset (default 18)")\n',
                '    p.add_argument("--opset", type=int, default=18)\n',
            ),
        ),
        ("tests/test_cli.py::test_every_option_of_every_command_has_a_help_line",),
    ),
    Breakage(
        "serve-people-unsorted",
        "serve's page lists people by time in view, the longest first",
        (
            (
                "src/abaw_expr/serve/page.html",
                "  people = result.people.slice().sort((a, b) => inView(b) - inView(a));",
                "  people = result.people.slice();",
            ),
        ),
        (
            "tests/test_serve_people.py::"
            "test_people_by_time_in_view_the_brief_folded_and_one_picked",
        ),
    ),
    Breakage(
        "serve-brief-people-not-folded",
        "serve's page folds the people in view for under a second",
        (
            (
                "src/abaw_expr/serve/page.html",
                "const BRIEF_S = 1.0;",
                "const BRIEF_S = 0.0;",
            ),
        ),
        (
            "tests/test_serve_people.py::"
            "test_people_by_time_in_view_the_brief_folded_and_one_picked",
        ),
    ),
    Breakage(
        "serve-picked-box-not-highlighted",
        "serve's page draws the picked person's box bold and the others' faint",
        (
            (
                "src/abaw_expr/serve/page.html",
                "    ctx.globalAlpha = faint ? 0.35 : 1;\n",
                "    ctx.globalAlpha = 1;\n",
            ),
        ),
        (
            "tests/test_serve_people.py::"
            "test_people_by_time_in_view_the_brief_folded_and_one_picked",
        ),
    ),
    Breakage(
        "backbone-none-unseeded",
        "--backbone-weights none draws the backbone from the run's seed: two runs, one backbone",
        (
            (
                "src/abaw_expr/model/backbones.py",
                "            torch.manual_seed(seed)\n",
                "            torch.seed()\n",
            ),
        ),
        (
            "tests/test_backbones.py::test_none_is_drawn_from_the_seed_and_leaves_the_global_generator_alone",
            "tests/test_backbones.py::test_random_extraction_is_reproducible_resumes_consistently_and_refuses_another_backbone",
        ),
    ),
    Breakage(
        "feature-cache-mixes-backbones",
        "a feature cache made by another backbone or other weights is refused, never resumed",
        (
            (
                "src/abaw_expr/data/feature_cache.py",
                "            if old_backbone != backbone_id or old_dim != feature_dim:\n",
                "            if old_dim != feature_dim:\n",
            ),
        ),
        (
            "tests/test_backbones.py::test_random_extraction_is_reproducible_resumes_consistently_and_refuses_another_backbone",
        ),
    ),
    Breakage(
        "head-only-training-on-another-backbone",
        "head-only training refuses a cache that another backbone (or other weights) made",
        (
            (
                "src/abaw_expr/training/cache_check.py",
                "    if identity != cache.backbone:\n",
                "    if identity.split()[0] != cache.backbone.split()[0]:\n",
            ),
        ),
        (
            "tests/test_backbones.py::test_head_only_training_evaluate_and_predict_video_with_a_timm_backbone",
        ),
    ),
    Breakage(
        "backbone-file-mismatch-loaded",
        "a weights file that does not fit the timm architecture is refused, naming the first key",
        (
            (
                "src/abaw_expr/model/timm_backbone.py",
                "    if problems:\n        raise InputError(\n",
                "    if problems and False:\n        raise InputError(\n",
            ),
            (
                "src/abaw_expr/model/timm_backbone.py",
                "    model.net.load_state_dict(state)\n",
                "    model.net.load_state_dict(state, strict=False)\n",
            ),
        ),
        (
            "tests/test_backbones.py::test_a_state_dict_file_of_the_architecture_loads_and_a_regnet_one_is_refused",
        ),
    ),
    Breakage(
        "demo-lets-lightning-talk",
        "the demo prints its stage lines and bars, nothing from the libraries beneath unless -v",
        (
            (
                "src/abaw_expr/synthetic/demo.py",
                "            logging.getLogger(name).setLevel(logging.ERROR)\n",
                "            logging.getLogger(name).setLevel(logging.INFO)\n",
            ),
        ),
        (
            "tests/test_demo.py::test_the_demo_says_its_stages_and_nothing_from_the_libraries_beneath",
        ),
    ),
    Breakage(
        "docs-figure-copy-disagrees",
        "each figure the docs quote is RESULTS.md's, with its machine and date; a copy agrees",
        (
            (
                "docs/development.md",
                "`make test` runs `ruff` and `pytest` (the 1035 tests took 11 min 16 s",
                "`make test` runs `ruff` and `pytest` (the 925 tests took 7 min 6 s",
            ),
        ),
        ("tests/test_docs.py::test_every_figure_the_pages_quote_is_the_recorded_one",),
    ),
    Breakage(
        "backbone-batches-unbounded",
        "predict --video runs in constant memory: a face pass ahead of the backbone waits, its "
        "crops do not pile up in the backbone's queue",
        (
            (
                "src/abaw_expr/video/predict.py",
                "        while len(self._running) >= self.IN_FLIGHT:\n",
                "        while len(self._running) >= 10**9:\n",
            ),
        ),
        (
            "tests/test_memory.py::"
            "test_a_face_pass_ahead_of_the_backbone_waits_instead_of_piling_up_crops",
        ),
    ),
    Breakage(
        "yunet-wrapper-leak",
        "predict --video runs in constant memory: the YuNet face search does not grow by the call",
        (
            (
                "src/abaw_expr/faces/yunet.py",
                "self._detect = _library_detect(yuface) or yuface.c_detect",
                "self._detect = yuface.c_detect",
            ),
        ),
        ("tests/test_memory.py::test_the_yunet_detector_does_not_grow_by_the_call",),
    ),
    Breakage(
        "live-window-sees-the-future",
        "live: a frame's values come from the person's faces up to it, never a later one",
        (
            (
                "src/abaw_expr/inference/causal.py",
                "    ends = np.arange(count)\n",
                "    ends = np.minimum(np.arange(count) + 1, max(count - 1, 0))\n",
            ),
        ),
        ("tests/test_causal.py::test_a_face_sees_only_its_own_window_and_no_later_frame",),
    ),
    Breakage(
        "live-rows-buffered",
        "live: rows are flushed as they are written; a stopped run keeps every row",
        (
            (
                "src/abaw_expr/video/live/predictor.py",
                "        for file, _ in self.files.values():\n            file.flush()\n",
                "",
            ),
        ),
        ("tests/test_live.py::test_a_live_row_holds_the_causal_values_of_its_persons_faces",),
    ),
    Breakage(
        "live-source-queues",
        "live: frames a slow pipeline cannot take are dropped and counted, never queued",
        (
            (
                "src/abaw_expr/video/live/source.py",
                '        self.drops = realtime or self.kind != "file"\n',
                "        self.drops = False\n",
            ),
        ),
        (
            "tests/test_live.py::test_a_slow_pipeline_drops_frames_of_a_realtime_file_and_counts_them",
        ),
    ),
    Breakage(
        "live-forgets-people-who-return",
        "live: a person who comes back after a cut gets their track (and CSV) back",
        (
            (
                "src/abaw_expr/video/live/people.py",
                "        person = linker.place(tid, self.people, record)\n",
                "        person = linker.place(tid, [], record)\n        self.people.append(person)\n",
            ),
        ),
        ("tests/test_live.py::test_live_finds_the_people_predict_finds_and_values_are_causal",),
    ),
    Breakage(
        "live-sigterm-loses-the-record",
        "live: SIGTERM leaves every row already written, plus live.json",
        (
            (
                "src/abaw_expr/video/live/run.py",
                "    before = signal.signal(signal.SIGTERM, on_sigterm)\n",
                "    before = signal.getsignal(signal.SIGTERM)\n",
            ),
        ),
        ("tests/test_live.py::test_sigterm_keeps_every_row_written_and_writes_the_record",),
    ),
    Breakage(
        "camera-rate-one-frame-over",
        "serve's camera mode refuses a client's frames above its frames/s limit (429)",
        (
            (
                "src/abaw_expr/serve/live.py",
                "if len(session.arrivals) >= limits.max_fps:",
                "if len(session.arrivals) > limits.max_fps:",
            ),
        ),
        ("tests/test_serve_camera.py::test_frames_per_second_are_limited_per_client",),
    ),
    Breakage(
        "camera-frames-kept",
        "serve's camera frames stay on the machine and are not kept: only a test hook keeps them",
        (("src/abaw_expr/serve/live.py", "{} if keep_frames else None", "{}"),),
        (
            "tests/test_serve_camera.py::"
            "test_a_real_face_is_answered_as_the_live_predictor_predicts_and_nothing_is_kept",
        ),
    ),
    Breakage(
        "causal-head-encoder-looks-ahead",
        "a causal head (model.causal, train --causal) never lets a later frame change a frame's "
        "output, in both branches",
        (
            (
                "src/abaw_expr/model/temporal.py",
                "        self.attn = SelfAttention(dim, heads, head_dim, attn_dropout, positional, causal)\n",
                "        self.attn = SelfAttention(dim, heads, head_dim, attn_dropout, positional)\n",
            ),
        ),
        ("tests/test_causal.py::test_a_causal_heads_output_never_depends_on_a_later_frame",),
    ),
)


def copy_repository(target: Path) -> None:
    """The files git would see: tracked ones, and untracked ones that are not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def apply(breakage: Breakage, copy: Path) -> None:
    for name, old, new in breakage.edits:
        path = copy / name
        text = path.read_text()
        if text.count(old) != 1:
            raise ValueError(
                f"{breakage.name}: {name} holds the text to replace {text.count(old)} times, "
                f"not once; update the entry to the code: {old!r}"
            )
        path.write_text(text.replace(old, new))


def run_tests(copy: Path, tests: tuple[str, ...], log: Path) -> int:
    """pytest's exit code: 0 all passed, 1 some failed, other: could not run them."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "src"), str(copy)])}
    with open(log, "w") as out:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT,
        ).returncode  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="this entry (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the entries and stop")
    parser.add_argument("--baseline", action="store_true", help="first run the tests unbroken")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies and logs")
    args = parser.parse_args(argv)
    if args.list:
        for b in BREAKAGES:
            print(f"{b.name}: {b.promise}\n    tests: {' '.join(b.tests)}")
        return 0
    names = {b.name for b in BREAKAGES}
    unknown = sorted(set(args.only or []) - names)
    if unknown:
        parser.error(f"no such entry: {', '.join(unknown)} (see --list)")
    chosen = [b for b in BREAKAGES if not args.only or b.name in args.only]
    scratch = Path(tempfile.mkdtemp(prefix="breakages-"))
    pristine = scratch / "pristine"
    copy_repository(pristine)
    survived = []
    try:
        for b in chosen:
            copy = scratch / b.name
            shutil.copytree(pristine, copy)
            if args.baseline:
                code = run_tests(copy, b.tests, scratch / f"{b.name}.baseline.log")
                if code != 0:
                    print(f"{b.name}: its tests fail unbroken (pytest {code}), see the log")
                    survived.append(b.name)
                    continue
            started = time.time()
            apply(b, copy)
            code = run_tests(copy, b.tests, scratch / f"{b.name}.log")
            verdict = {0: "SURVIVES", 1: "caught"}.get(code, f"error (pytest {code})")
            print(f"{b.name}: {verdict} in {time.time() - started:.0f} s  [{b.promise}]")
            if code != 1:
                survived.append(b.name)
            if not args.keep:
                shutil.rmtree(copy)
    finally:
        if not args.keep and not survived:
            shutil.rmtree(scratch)
    if survived:
        print(f"not caught: {', '.join(survived)}; logs in {scratch}")
        return 1
    print(f"all {len(chosen)} breakages caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
