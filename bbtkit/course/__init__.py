"""The course around the package: plots, widgets, explorers, runners, exercises, the hand-written CMA-ES,
the leaderboard, time estimates and the runs chapters share."""
