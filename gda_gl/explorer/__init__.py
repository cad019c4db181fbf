"""The interactive explorer: overview first, zoom and filter, details on demand, live runs, comparing runs.

Layers, one way: :mod:`.controller` (interaction logic on a ViewState, no GL,
no toolkit), :mod:`.canvas` (a VisPy canvas drawing through the engine and
forwarding events), :mod:`.app` (the Qt window with panels), :mod:`.stacked`
(runs stacked in linked views sharing the x axis).
"""
