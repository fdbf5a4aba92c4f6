"""Tests of the book: sections, parameters, figures, every notebook, the HTML."""
