"""The GPU run: one time-boxed script for a machine with an NVIDIA GPU (``bash benchmarks/gpu/run.sh``).

``python -m benchmarks.gpu`` runs the stages (each in its own subprocess, each failure recorded and the
rest run) and writes ``$OUT/gpu.json``; :mod:`benchmarks.gpu.stages` holds the environment, EGL and
render stages, :mod:`benchmarks.gpu_probe` the probe, slowdown and Cockpit stages.
"""
