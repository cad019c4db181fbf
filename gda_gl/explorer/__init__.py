"""The interactive explorer: overview first, zoom and filter, details on demand, live runs, comparing runs.

Layers, one way (no GL or toolkit above :mod:`.canvas`):

- :mod:`.animation`: the flight of the x range (van Wijk path, landing exactly);
- :mod:`.navigation`: the view (target and drawn), bounds, zoom and pan;
- :mod:`.picking`: the drawn arc nearest a pixel and the hover readout;
- :mod:`.filters`: the highlight filter's matches and counts;
- :mod:`.inputmap`: the one table of keys and mouse gestures (also the help);
- :mod:`.controller`: the view state, selection, filters, keys (on :mod:`.navigation`);
- :mod:`.export`: the view as PNG, the visible rows as CSV;
- :mod:`.frame_draw`: one frame of the controller's view, drawn (shared with the notebook);
- :mod:`.axischoice`, :mod:`.serieslist`: the x-axis choice and the series list of the panel;
- :mod:`.canvas` (a VisPy canvas drawing through the engine and forwarding
  events), :mod:`.panel` (the Qt control panel), :mod:`.app` (the Qt window).

Live runs are followed by :mod:`gda_gl.session.follow` (owned by the window, shared with the notebook); the
figures are composed by :mod:`gda_gl.compose` and drawn by :mod:`gda_gl.gl`.
"""
