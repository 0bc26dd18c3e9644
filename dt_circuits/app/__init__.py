"""The interactive app (``dt-circuits app``): play, edit, inspect and claim, in a Streamlit page.

Modules, one job each: ``view`` (what the page shows, as URL query parameters), ``episode`` (stepping the real
env), ``images`` (pictures of observations and grids), ``compute`` (every number, from the library's own
functions), ``claims`` (the claims panel's JSON, run through the CLI) and ``writer`` (a claim file from what is on
screen), ``page`` (Streamlit rendering) and ``main`` (the script Streamlit runs). Nothing in the package imports
this one.
"""
