"""Helpers of the MSDA Lab app: image loading, example images, widgets built from msda's method info, cached
mixing, plotly figures and the method cards. Widgets, caching and display only; the maths lives in msda."""
