"""The tuning layer, the seam every method plugs into: spaces, projections, objectives, calibration, the one
loop, checkpoints, progress and results."""
