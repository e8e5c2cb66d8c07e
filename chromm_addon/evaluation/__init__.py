"""Evaluation: synthetic scenes with ground truth, simulated views files, and metrics.

    from chromm_addon.evaluation.synthetic import make_scene
    from chromm_addon.evaluation.simulate import simulate_views, SimulationNoise, PRESETS
    from chromm_addon.evaluation.evaluate import evaluate_take, evaluate_single_views

numpy only (scipy is imported lazily for the Hungarian matching in `metrics`). See
docs/evaluation.md.
"""
