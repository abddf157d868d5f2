"""Diffusion Explorer's Gradio app: widgets and views over `core`; no diffusion maths here."""
