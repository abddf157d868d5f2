"""Diffusion Explorer's Gradio app: widgets and views over `core`; no diffusion maths here."""
from explorer.gradio_fixes import install as _skip_gradio_stub_writer

_skip_gradio_stub_writer()  # before anything here imports gradio (see explorer.gradio_fixes)
