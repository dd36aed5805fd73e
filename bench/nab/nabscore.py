"""NAB scoring (the Numenta Anomaly Benchmark's rules, restated in
../../../shared/data/nab/README.md and docs/predict.md), standard library only.

A file is a list of rows with an anomaly score each; its windows are given as
(first_row, last_row) index pairs. score_file() gives the raw score of one
file at one threshold; sweep() finds the threshold that maximises the total
over all files at once, and normalise() turns a total into NAB's 0..100 scale.
"""
import math

PROFILES = {
    "standard": {"tp": 1.0, "fn": 1.0, "fp": 0.11},
    "reward_low_FP_rate": {"tp": 1.0, "fn": 1.0, "fp": 0.22},
    "reward_low_FN_rate": {"tp": 1.0, "fn": 2.0, "fp": 0.11},
}


def sigma(y):
    """NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1."""
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation(n_rows):
    """Rows at the start of a file whose detections are not scored."""
    return min(int(math.floor(0.15 * n_rows)), 750)


class FileRows:
    """Precomputed scoring weights of one file's rows (independent of the
    threshold and the profile): window of each row, or the unweighted FP
    cost relative to the preceding window."""

    def __init__(self, n_rows, windows):
        self.n = n_rows
        self.windows = sorted(windows)
        self.prob = probation(n_rows)
        self.window_of = [-1] * n_rows
        self.tp_weight = [0.0] * n_rows   # sigma(y) / sigma(-1) in a window
        self.fp_weight = [0.0] * n_rows   # sigma(y) (negative) outside
        prev = None  # (right, width) of the last window ending before a row
        w = 0
        for i in range(n_rows):
            while w < len(self.windows) and self.windows[w][1] < i:
                left, right = self.windows[w]
                prev = (right, right - left + 1)
                w += 1
            if w < len(self.windows) and self.windows[w][0] <= i <= self.windows[w][1]:
                left, right = self.windows[w]
                width = right - left + 1
                y = -(right - i + 1) / width
                self.window_of[i] = w
                self.tp_weight[i] = sigma(y) / sigma(-1.0)
            else:
                if prev is None:
                    self.fp_weight[i] = -1.0
                else:
                    right, width = prev
                    y = (i - right) / (width - 1) if width > 1 else math.inf
                    self.fp_weight[i] = -1.0 if y > 3 else sigma(y)


def score_file(rows, detected, profile):
    """Raw score of one file: detected is an iterable of row indices."""
    p = PROFILES[profile] if isinstance(profile, str) else profile
    first = {}
    fp = 0.0
    for i in sorted(detected):
        if i < rows.prob:
            continue
        w = rows.window_of[i]
        if w < 0:
            fp += p["fp"] * rows.fp_weight[i]
        elif w not in first:
            first[w] = i
    tp = sum(p["tp"] * rows.tp_weight[i] for i in first.values())
    fn = -p["fn"] * (len(rows.windows) - len(first))
    return tp + fn + fp


def bounds(files, profile):
    """(S_null, S_perfect) of a corpus: never fire / fire at each window's start."""
    p = PROFILES[profile]
    k = sum(len(f.windows) for f in files)
    return -p["fn"] * k, p["tp"] * k


def normalise(total, files, profile):
    null, perfect = bounds(files, profile)
    if perfect == null:
        return 100.0 if total >= 0 else 0.0
    return 100.0 * (total - null) / (perfect - null)


def sweep(files, scores, profile):
    """Best threshold over the corpus at once (NAB's sweep): every distinct
    score is tried, from the highest down, adding its rows one at a time.
    Returns (threshold, raw total). Also the threshold above every score
    (no detection) is a candidate."""
    p = PROFILES[profile]
    events = []
    for fi, (rows, sc) in enumerate(zip(files, scores)):
        for i, s in enumerate(sc):
            if i >= rows.prob and s > 0:
                events.append((s, fi, i))
    events.sort(key=lambda e: -e[0])
    total = sum(-p["fn"] * len(f.windows) for f in files)
    first = [dict() for _ in files]
    best = (1.1, total)
    j = 0
    while j < len(events):
        thr = events[j][0]
        while j < len(events) and events[j][0] == thr:
            _, fi, i = events[j]
            rows = files[fi]
            w = rows.window_of[i]
            if w < 0:
                total += p["fp"] * rows.fp_weight[i]
            else:
                old = first[fi].get(w)
                if old is None:
                    total += p["fn"] + p["tp"] * rows.tp_weight[i]
                    first[fi][w] = i
                elif i < old:
                    total += p["tp"] * (rows.tp_weight[i] - rows.tp_weight[old])
                    first[fi][w] = i
            j += 1
        if total > best[1]:
            best = (thr, total)
    return best


def total_at(files, scores, profile, threshold):
    return sum(score_file(rows, [i for i, s in enumerate(sc) if s >= threshold], profile)
               for rows, sc in zip(files, scores))
