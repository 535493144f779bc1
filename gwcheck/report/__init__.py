"""Findings in, text out: renderers take a stream and return nothing; plots return matplotlib Figures."""
