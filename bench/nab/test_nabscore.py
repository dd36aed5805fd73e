"""Unit tests of the NAB scorer on hand-made windows with known scores.
Run: /usr/bin/python3 bench/nab/test_nabscore.py (also part of `make test`)."""
import math
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nabscore  # noqa: E402

# 100 rows: probation is rows 0..14; one window, rows 40..59 (width 20)
ROWS = nabscore.FileRows(100, [(40, 59)])


class Scoring(unittest.TestCase):
    def test_sigma(self):
        self.assertAlmostEqual(nabscore.sigma(0), 0.0)
        self.assertAlmostEqual(nabscore.sigma(-1), 0.9866142981514305)
        self.assertAlmostEqual(nabscore.sigma(1), -0.9866142981514305)

    def test_probation(self):
        self.assertEqual(nabscore.probation(100), 15)
        self.assertEqual(nabscore.probation(1127), 169)
        self.assertEqual(nabscore.probation(22695), 750)

    def test_detection_at_window_start_scores_one(self):
        self.assertAlmostEqual(nabscore.score_file(ROWS, [40], "standard"), 1.0)

    def test_detection_at_window_end_scores_little(self):
        # y = -1/20: sigma(-0.05) / sigma(-1)
        self.assertAlmostEqual(nabscore.score_file(ROWS, [59], "standard"),
                               0.1260401374727592)

    def test_only_the_earliest_detection_in_a_window_counts(self):
        self.assertAlmostEqual(nabscore.score_file(ROWS, [50, 45, 58], "standard"),
                               0.9669890878000605)

    def test_missed_window(self):
        self.assertAlmostEqual(nabscore.score_file(ROWS, [], "standard"), -1.0)
        self.assertAlmostEqual(nabscore.score_file(ROWS, [], "reward_low_FN_rate"), -2.0)

    def test_false_positive_before_any_window_costs_full(self):
        self.assertAlmostEqual(nabscore.score_file(ROWS, [20], "standard"), -1.11)
        self.assertAlmostEqual(nabscore.score_file(ROWS, [20], "reward_low_FP_rate"), -1.22)

    def test_false_positive_just_after_a_window_costs_little(self):
        # y = (60 - 59) / (20 - 1)
        self.assertAlmostEqual(nabscore.score_file(ROWS, [40, 60], "standard"),
                               1.0 + 0.11 * -0.13082482642666593)

    def test_false_positive_far_after_a_window_costs_full(self):
        rows = nabscore.FileRows(200, [(40, 59)])
        # y = (150 - 59) / 19 > 3: -1
        self.assertAlmostEqual(nabscore.score_file(rows, [40, 150], "standard"), 1.0 - 0.11)
        # y = (99 - 59) / 19 = 2.1: sigma(2.1), nearly -1
        self.assertAlmostEqual(nabscore.score_file(rows, [40, 99], "standard"),
                               1.0 + 0.11 * nabscore.sigma(40 / 19))

    def test_probation_detections_ignored(self):
        self.assertAlmostEqual(nabscore.score_file(ROWS, [0, 5, 14], "standard"), -1.0)

    def test_no_window_file(self):
        rows = nabscore.FileRows(100, [])
        self.assertAlmostEqual(nabscore.score_file(rows, [50, 51], "standard"), -0.22)

    def test_normalise(self):
        files = [ROWS, nabscore.FileRows(200, [(100, 119), (150, 169)])]
        self.assertAlmostEqual(nabscore.normalise(3.0, files, "standard"), 100.0)
        self.assertAlmostEqual(nabscore.normalise(-3.0, files, "standard"), 0.0)
        self.assertAlmostEqual(nabscore.normalise(0.0, files, "standard"), 50.0)

    def test_sweep_finds_the_best_threshold(self):
        scores = [0.0] * 100
        scores[40] = 0.8    # true positive at the window start
        scores[20] = 0.6    # false positive
        scores[45] = 0.4    # later in the window: no gain
        scores[90] = 0.3    # false positive
        thr, total = nabscore.sweep([ROWS], [scores], "standard")
        self.assertAlmostEqual(thr, 0.8)
        self.assertAlmostEqual(total, 1.0)
        self.assertAlmostEqual(nabscore.total_at([ROWS], [scores], "standard", 0.5), 0.89)
        # the sweep agrees with scoring at each threshold
        for t in (0.8, 0.6, 0.4, 0.3):
            det = [i for i, s in enumerate(scores) if s >= t]
            self.assertLessEqual(nabscore.score_file(ROWS, det, "standard"), total + 1e-12)

    def test_sweep_prefers_silence_when_everything_is_false(self):
        rows = nabscore.FileRows(100, [])
        thr, total = nabscore.sweep([rows], [[0.9] * 100], "standard")
        self.assertEqual(total, 0.0)
        self.assertGreater(thr, 0.9)


if __name__ == "__main__":
    unittest.main()
