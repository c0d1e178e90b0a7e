"""Threadline: an OpenAI-compatible Threads & Messages API over the Jan app's data folder."""

__version__ = "0.1.0"
