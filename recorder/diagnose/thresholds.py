"""Every threshold of the diagnosis, declared once, each with the reason for its value.

The README's "Diagnose" section lists the same names; a test checks that every constant here is
named there.  Units: ``factor`` is the alpha where a step's line is lowest (from its measured points)
divided by the accepted alpha (1.0 for a probe of d_k = w_{k+1} - w_k), so factor 1 means the step
landed on the measured minimum.
"""

from __future__ import annotations

# -- step size ---------------------------------------------------------------------------------------------
#: factor at or below which a window's steps are ``too_long`` ("the line's minimum sits well inside the
#: step").  On a parabola a step of length 1 with its minimum at ``v`` gets 1 - ((v - 1) / v)^2 of the
#: line's possible descent; 2/3 and :data:`TOO_SHORT_FACTOR` = 2 both give 75 %, so the two verdicts are
#: symmetric in what the step wastes.
TOO_LONG_FACTOR = 2.0 / 3.0
#: factor at or above which a window's steps are ``too_short`` (75 % of the possible descent, see above).
#: With the default grids (alpha up to 2) it means the lines fall to the end of the interval.
TOO_SHORT_FACTOR = 2.0
#: a window needs this many steps with a readable line (status ok, >= MIN_LINE_POINTS finite points,
#: neither flat nor noisy) for a verdict; fewer: ``cannot_say``.  Ten lines make the median's own
#: scatter smaller than the 1/8 spacing of the standard grid on the runs measured.
MIN_WINDOW_STEPS = 10
#: a window is at least this many iterations long (1 % of a short run would be a handful of steps).
MIN_WINDOW_ITERATIONS = 50
#: windows per run when epochs are coarser ("per epoch or per 1 % of the run, whichever is finer").
WINDOWS_PER_RUN = 100
#: finite points a line needs before its minimum is read (two neighbours around an interior minimum).
MIN_LINE_POINTS = 3
#: a line is flat when (max - min) of its points is at most this share of its scale (max(|phi|));
#: float32 phi of a loss near 1 resolves about 1e-7, mini-batch losses move by 1e-3 and more per step,
#: so 1e-5 separates "nothing measurable happens along the step" from any real descent.
FLAT_REL = 1e-5
#: a line is noisy when its points go up and down more than this many times as far as a one-valley
#: line through the same first, lowest and last points would (total variation over (first - min) +
#: (last - min)); a convex line has exactly 1, a sampled smooth line stays within a few per cent.
NOISY_TV_RATIO = 1.5
#: more than this share of flat or noisy lines in a window makes it ``cannot_say``.
UNCLEAR_SHARE = 0.5
#: at least this share of a window's readable lines must have their minimum at the end of the probed
#: interval for the window's factor to be reported as a lower bound (the median line then is one).
BOUND_SHARE = 0.5

# -- spikes ----------------------------------------------------------------------------------------------------
#: steps before k whose training loss forms the spike baseline (median) and spread (scaled MAD).
SPIKE_BASELINE_STEPS = 32
#: a spike: the training loss rises above the baseline median by more than this many robust standard
#: deviations (1.4826 MAD of the baseline steps) ...  6 is far outside Gaussian noise (about 1e-9 per step),
#: but a MAD from 32 steps scatters by some 20 %, and mini-batch losses have heavier tails, so this alone
#: still flags a few steps per million of a noisy run: the floor below decides those.
SPIKE_MADS = 6.0
#: ... and by more than this share of the baseline: a rise of less than half the loss is within what
#: small mini-batches do (the benchmark's synthetic run at 3e6 steps, 3 % noise, raised one false alarm
#: at 0.25 and none at 0.5); the spikes that matter (a bad batch, an overshooting step) multiply the loss.
SPIKE_MIN_REL = 0.5
#: the previous line "predicted a low loss" when phi_{k-1}(1) lies below baseline + this share of the
#: spike threshold (then the jump of phi_k(0) is the batch's doing).
PREDICTED_LOW_SHARE = 0.5
#: "far above": phi_{k-1}(1) - phi_{k-1}(0) above this share of the spike threshold means the previous
#: step overshot by a spike's worth.
OVERSHOOT_SHARE = 0.5
#: a step is "long" when its norm (or learning rate) is this many times the baseline median: a one-step
#: learning-rate spike; 3 x is outside what schedules do in one step.
LONG_STEP_RATIO = 3.0
#: "bends up sharply": the line's curvature along the unit direction (phi'' / |d|^2) is this many times
#: the baseline median.
SHARP_CURVATURE_RATIO = 10.0
#: spikes reported per run at most (the largest rises); the rest are counted.
MAX_SPIKES = 50

# -- other findings -------------------------------------------------------------------------------------------
#: smoothing (running median, steps) of the training loss for divergence and plateaus.
SMOOTH_STEPS = 9
#: divergence: from its onset to the end of the run the smoothed loss stays above this many times the
#: lowest smoothed loss reached before (or is not finite).  2 x is far outside mini-batch noise of the
#: smoothed curve and early in any blow-up (which grows geometrically).
DIVERGE_RATIO = 2.0
#: ... for at least this many steps (a shorter rise at the end is a spike, not a divergence).
DIVERGE_MIN_STEPS = 8
#: plateau: a window whose steps descend by less than this share of the loss along their own lines
#: (median of (phi(0) - phi(taken)) / |phi(0)|) ...  Steps of a healthy run descend by 1e-3 .. 1e-1 of the
#: loss; the lines are each measured on one batch, so this is free of the batch-to-batch noise that hides
#: a plateau in the loss curve itself.
PLATEAU_DESCENT = 1e-4
#: ... and whose steps together remove less than this share of the loss (sum of the same descents):
#: the steps do not add up to progress either.
PLATEAU_LOSS_CHANGE = 1e-2
#: a learning-rate change: lr moves by more than this share in one step (a schedule's milestone, warm-up's
#: end, a manual change); smooth schedules change by far less per step.
LR_JUMP_REL = 0.2
#: failed / non-finite probe rows closer than this many iterations are one finding.
FAILED_GAP = 16
#: findings of each kind per run at most (the rest are counted in the last one's text).
MAX_FINDINGS_PER_KIND = 20

# -- scale -------------------------------------------------------------------------------------------------------
#: runs with at most this many rows are read row by row (exact medians); longer runs are read from the
#: pyramid (factor: median over the window's level buckets of their mean min_alpha, stated in the output)
#: plus the rows of the buckets that hold a spike candidate.
ROW_PATH_MAX_ROWS = 2_000_000
#: the pyramid path reads the finest level whose buckets number at most this many over the run (all their
#: fields decoded: about 1 KB per bucket, so 50,000 buckets stay near 50 MB).
PYRAMID_MAX_BUCKETS = 50_000
#: the pyramid path reads the rows of at most this many candidate buckets per run.
MAX_CANDIDATE_BUCKETS = 64
#: the pyramid path's spike candidates: buckets whose highest training loss exceeds the median of the
#: previous buckets' means by this many times their typical (median) max - mean excursion (and by
#: SPIKE_MIN_REL of the loss); the rows of those buckets then decide, with the row rules above.
CANDIDATE_SPREAD = 2.0

# -- live ------------------------------------------------------------------------------------------------------
#: the live detector's step-size windows (iterations): it cannot know the run's length, so its windows are
#: fixed; 500 steps hold enough lines for a verdict also when only every 16th step is probed.
LIVE_WINDOW_ITERATIONS = 500
#: the live detector runs after this many new rows (the writer's smallest block) ...
LIVE_EVERY_ROWS = 256
#: ... or after this many seconds with new rows (a slow training still hears of a spike within seconds).
LIVE_EVERY_S = 2.0
#: live, a divergence is reported once the loss has stayed up for this many steps: the live detector cannot
#: see the loss come back, and a one-step learning-rate spike keeps it up for about 10 smoothed steps.
LIVE_DIVERGE_MIN_STEPS = 32
